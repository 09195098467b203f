/** `gorb apply`, `gorb diff` and `gorb reconcile` against a real API over loopback. */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestServer, runGorb, startServer } from "./_harness.ts";

let server: TestServer;
let dir: string;

beforeEach(() => {
  server = startServer();
  dir = mkdtempSync(join(tmpdir(), "gorb-apply-"));
});

afterEach(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const YAML = `services:
  web:
    host: 10.0.0.1
    port: 80
    backends:
      b1: { host: 10.1.0.1, weight: 5 }
`;

describe("gorb diff and gorb apply", () => {
  test("a JSON set that names a service twice is refused with the line (exit 2), not applied with the last one", async () => {
    const path = file("set.json", '{"services": {\n  "web": {"host": "10.0.0.1", "port": 80},\n  "web": {"host": "10.0.0.2", "port": 80}\n}}\n');
    expect(await runGorb(["diff", "-f", path, "--server", server.url])).toEqual({
      code: 2,
      stdout: "",
      stderr: `error: ${path}:3:3: JSON syntax error: duplicate key "web" (first on line 2)\n`,
    });
    expect(server.requests).toEqual([]);
  });

  test("a YAML set that names a backend twice is refused with both lines (exit 2), not applied with the last one", async () => {
    const path = file("set.yaml", `${YAML}      b2: { host: 10.1.0.2 }\n      b1: { host: 10.1.0.3 }\n`);
    expect(await runGorb(["apply", "-f", path, "--server", server.url])).toEqual({
      code: 2,
      stdout: "",
      stderr: `error: ${path}:8:7: YAML syntax error: duplicate key "b1" (first on line 6)\n`,
    });
    expect(server.requests).toEqual([]);
  });

  test("a YAML service id written as a sequence is refused with its line and path (exit 2), not sent as the service \"a,b\"", async () => {
    const path = file("set.yaml", YAML.replace("  web:", "  [a, b]:"));
    expect(await runGorb(["apply", "-f", path, "--server", server.url])).toEqual({
      code: 2,
      stdout: "",
      stderr: `error: ${path}:2:3: services: YAML syntax error: the key [a, b] is a sequence: a key must be a name\n`,
    });
    expect(server.requests).toEqual([]);
  });

  test("a file that is not a regular file (a FIFO, a device) is refused without being read or sent", async () => {
    const fifo = join(dir, "set.yaml");
    expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
    for (const [path, what] of [[fifo, "a FIFO"], ["/dev/null", "a character device"]] as const) {
      expect(await runGorb(["apply", "-f", path, "--server", server.url])).toEqual({
        code: 2,
        stdout: "",
        stderr: `error: ${path}: cannot read the configuration file: is not a regular file (${what})\n`,
      });
    }
    expect(server.requests).toEqual([]);
  });

  test("diff shows the plan and changes nothing; apply makes it; a second diff finds nothing", async () => {
    const path = file("services.yaml", YAML);
    const diff = await runGorb(["diff", "-f", path, "--server", server.url]);
    expect(diff).toEqual({
      code: 0,
      stdout:
        "ACTION  TARGET  DETAILS\n" +
        "create  web     tcp 10.0.0.1:80, wrr, 1 backend\n" +
        "create  web/b1  10.1.0.1:80, nat, weight 5\n" +
        "\n2 changes to apply (nothing was changed)\n",
      stderr: "",
    });
    expect(server.stack.driver.peek()).toEqual([]);
    expect(server.requests).toEqual(["POST /apply?dry_run=true"]);

    const apply = await runGorb(["apply", "-f", path, "--server", server.url]);
    expect(apply.code).toBe(0);
    expect(apply.stdout).toContain("create  web     tcp 10.0.0.1:80, wrr, 1 backend  done\n");
    expect(apply.stdout).toEndWith("\n2 changes applied\n");
    expect(server.stack.gorb.listServices()).toEqual(["web"]);

    expect(await runGorb(["diff", "-f", path, "--server", server.url])).toEqual({
      code: 0,
      stdout: `no changes: gorb already matches ${path}\n`,
      stderr: "",
    });
  });

  test("--json prints the daemon's report", async () => {
    const path = file("services.json", JSON.stringify({ services: { web: { host: "10.0.0.1", port: 80 } } }));
    const run = await runGorb(["apply", "-f", path, "--dry-run", "--json", "--server", server.url]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({
      dry_run: true,
      ok: true,
      changes: [{ action: "create", service: "web", backend: null, details: ["tcp 10.0.0.1:80, wrr, 0 backends"], status: "planned" }],
    });
  });

  test("a file that does not parse, or whose settings are wrong, is refused locally with its location (exit 2): nothing is sent", async () => {
    const broken = file("services.toml", "[services.web]\nport = = 80\n");
    const syntax = await runGorb(["apply", "-f", broken, "--server", server.url]);
    expect([syntax.code, syntax.stderr.startsWith(`error: ${broken}:2: `)]).toEqual([2, true]);
    const setting = file("settings.yaml", "listen: 5\nservices: {}\n");
    expect(await runGorb(["apply", "-f", setting, "--server", server.url])).toEqual({
      code: 2,
      stdout: "",
      stderr: `error: ${setting}:1: listen: must be a string, got 5\n`,
    });
    const noServices = file("no-services.yaml", "listen: :4672\n");
    const run = await runGorb(["diff", "-f", noServices, "--server", server.url]);
    expect([run.code, run.stderr.split("\n")[0]]).toEqual([2, `error: ${noServices} declares no services (no "services" key); an empty set is "services: {}"`]);
    // A value JSON cannot carry (YAML's .nan would arrive as null: "not given") is checked here, not sent.
    const nan = file("nan.yaml", "services:\n  web:\n    host: 10.0.0.1\n    port: .nan\n");
    const refused = await runGorb(["apply", "-f", nan, "--server", server.url]);
    expect(refused).toEqual({ code: 2, stdout: "", stderr: `error: ${nan}:4: services.web.port: must be an integer 1-65535, got NaN\n` });
    expect(server.requests).toEqual([]);
  });

  test("a bad field of a service is refused by the daemon before any change, traced to its line (exit 6)", async () => {
    const path = file("services.toml", "[services.web]\nport = 80\n[services.web.backends.b1]\nhost = \"10.1.0.1\"\n[services.db]\nport = 5432\nweight = 3\n");
    expect(await runGorb(["apply", "-f", path, "--server", server.url])).toEqual({
      code: 6,
      stdout: "",
      stderr: `error: ${path}:7: services.db.weight: unknown field; known: host, port, protocol, method, flags, persistent, persistence_timeout, persistence_netmask, fwmark, family, pe, one_packet, panic_threshold, announce_min_healthy, hash_fallback, sorry_server, quorum, hysteresis, quorum_up, quorum_down, backends\n`,
    });
    expect(server.requests).toEqual(["POST /apply"]);
    expect(server.stack.gorb.listServices()).toEqual([]);
    expect(server.stack.driver.peek()).toEqual([]);
  });

  test("what the daemon refuses (a name it cannot resolve) is traced back to the line of the file (exit 6)", async () => {
    const path = file("services.yaml", "services:\n  web:\n    port: 80\n    host: nowhere.example\n");
    expect(await runGorb(["apply", "-f", path, "--server", server.url])).toEqual({
      code: 6,
      stdout: "",
      stderr: `error: ${path}:4: services.web.host: cannot resolve "nowhere.example": getaddrinfo ENOTFOUND nowhere.example\n`,
    });
  });

  test("an address used twice in the file (a 409) is traced to the line of the second (exit 5), nothing changes", async () => {
    const path = file(
      "services.yaml",
      'services:\n  web:\n    host: 10.0.0.1\n    port: 80\n    backends:\n      b1: { host: 10.1.0.1 }\n      "b.2": { host: 10.1.0.1 }\n',
    );
    expect(await runGorb(["apply", "-f", path, "--server", server.url])).toEqual({
      code: 5,
      stdout: "",
      stderr: `error: ${path}:7: services.web.backends["b.2"]: 10.1.0.1:80 is also the address of services.web.backends.b1\n`,
    });
    expect(server.stack.driver.peek()).toEqual([]);
  });

  test("a change the kernel refuses is shown as FAILED and the exit code is 7", async () => {
    const path = file("services.yaml", YAML);
    server.stack.driver.failNext("add-destination", "ENOMEM");
    const run = await runGorb(["apply", "-f", path, "--server", server.url]);
    expect(run.code).toBe(7);
    expect(run.stdout).toContain(
      "create  web/b1  10.1.0.1:80, nat, weight 5       FAILED: add-destination destination 10.1.0.1:80 in service tcp 10.0.0.1:80 failed: out of memory (ENOMEM)\n",
    );
    expect(run.stdout).toEndWith("\n1 change applied, 1 failed\n");
  });
});

describe("gorb reconcile", () => {
  test("prints what it repaired, or that nothing needed it", async () => {
    await server.stack.gorb.createService("web", { host: "10.0.0.1", port: 80 });
    expect(await runGorb(["reconcile", "--server", server.url])).toEqual({
      code: 0,
      stdout: "nothing to repair: the kernel matches gorb's state\n",
      stderr: "",
    });
    await server.stack.driver.flush();
    expect(await runGorb(["reconcile", "--server", server.url])).toEqual({
      code: 0,
      stdout: "TARGET  DIFFERENCE                            RESULT\nweb     tcp 10.0.0.1:80 is missing from IPVS  repaired\n",
      stderr: "",
    });
    expect(server.stack.driver.peek()).toHaveLength(1);
  });
});
