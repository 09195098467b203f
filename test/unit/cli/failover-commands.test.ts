/**
 * The failover flags of the client commands against a real REST API (createApp over the in-memory core): what
 * they send, what `service show` and `status` print.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { type TestServer, runGorb, startServer } from "./_harness.ts";

let server: TestServer;
let env: Record<string, string>;

beforeEach(() => {
  server = startServer();
  env = { GORB_SERVER: server.url };
});

afterEach(async () => {
  await server.stop();
});

async function ok(args: string[]): Promise<string> {
  const run = await runGorb(args, env);
  expect({ code: run.code, stderr: run.code === 0 ? "" : run.stderr }).toEqual({ code: 0, stderr: "" });
  return run.stdout;
}

describe("failover flags", () => {
  test("service and backend flags map to the wire fields; show and status print the state", async () => {
    await ok([
      "service", "add", "web", "--host", "10.0.0.1", "--port", "80", "--quorum", "2", "--hysteresis", "1",
      "--sorry-server", "10.9.0.1:80", "--sorry-method", "dr", "--quorum-down", "/etc/gorb/hooks/page",
    ]);
    await ok(["backend", "add", "web", "b1", "--host", "10.1.0.1", "--slow-start", "30s"]);
    expect(server.bodies.slice(0, 2)).toEqual([
      {
        host: "10.0.0.1",
        port: 80,
        quorum: 2,
        hysteresis: 1,
        sorry_server: { host: "10.9.0.1", port: 80, method: "dr" },
        quorum_down: "/etc/gorb/hooks/page",
      },
      { host: "10.1.0.1", slow_start: "30s" },
    ]);
    const show = await ok(["service", "show", "web"]);
    expect(show).toContain("quorum");
    expect(show).toMatch(/sorry server\s+10\.9\.0\.1:80 \(dr\): SERVING/);
    expect(await ok(["status"])).toContain("SORRY 10.9.0.1:80");
    await ok(["service", "set", "web", "--sorry-server", "none"]);
    expect(server.bodies.at(-1)).toEqual({ sorry_server: null });
    expect(await ok(["status"])).toContain("NO QUORUM");
  });

  test("service show's table marks the service's line as status does: NO QUORUM", async () => {
    await ok(["service", "add", "web", "--host", "10.0.0.1", "--port", "80", "--quorum", "2"]);
    await ok(["backend", "add", "web", "b1", "--host", "10.1.0.1", "--pulse", "none"]);
    const line = (text: string) => text.split("\n").find((l) => l.startsWith("web "));
    expect(line(await ok(["status"]))).toContain("1/1 up, NO QUORUM");
    expect(line(await ok(["service", "show", "web"]))).toContain("1/1 up, NO QUORUM");
  });

  test("none turns off what a set gave: --flags, --slow-start, --quorum-up, --quorum-down (as --sorry-server none does)", async () => {
    await ok([
      "service", "add", "web", "--host", "10.0.0.1", "--port", "80", "--method", "sh", "--flags", "sh-port",
      "--quorum-up", "/etc/gorb/hooks/up", "--quorum-down", "/etc/gorb/hooks/down",
    ]);
    await ok(["backend", "add", "web", "b1", "--host", "10.1.0.1", "--pulse", "none", "--slow-start", "30s"]);
    await ok(["service", "set", "web", "--flags", "none", "--quorum-up", "None", "--quorum-down=none"]);
    await ok(["backend", "set", "web", "b1", "--slow-start", "none"]);
    expect(server.bodies.slice(-2)).toEqual([{ flags: null, quorum_up: null, quorum_down: null }, { slow_start: null }]);
    const service = (await server.stack.gorb.getService("web")).options;
    expect([service.flags, service.quorum_up, service.quorum_down]).toEqual(["", "", ""]);
    expect((await server.stack.gorb.getBackend("web", "b1")).options.slow_start).toBe("");
  });

  test("--sorry-method needs --sorry-server; a bad port is refused before anything is sent", async () => {
    const run = await runGorb(["service", "add", "web", "--host", "10.0.0.1", "--port", "80", "--sorry-method", "dr"], env);
    expect([run.code, run.stderr]).toEqual([2, expect.stringContaining("--sorry-method needs --sorry-server")]);
    const port = await runGorb(["service", "add", "web", "--host", "10.0.0.1", "--port", "80", "--sorry-server", "10.9.0.1:0"], env);
    expect([port.code, port.stderr]).toEqual([2, expect.stringContaining("--sorry-server: port must be 1-65535, got 0")]);
    expect(server.bodies).toEqual([]);
  });
});
