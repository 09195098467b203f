/**
 * `gorb status --watch` against a real gorb API on a loopback port: it follows GET /events and reads the status
 * again when an event says something changed, instead of polling.
 *
 * The test publishes the events on the API's bus itself, next to the change it makes: that is core's job, and
 * here the watch is under test.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createApp } from "../../../src/api/app.ts";
import { makeGorb } from "../core/fakes.ts";
import { type CliRun, type TestServer, runGorb, startServer } from "./_harness.ts";

const CLEAR = "\u001b[H\u001b[2J";
let server: TestServer;
let env: Record<string, string>;

beforeEach(() => {
  server = startServer();
  env = { GORB_SERVER: server.url };
});

afterEach(async () => {
  await server.stop();
});

async function ok(args: string[]): Promise<void> {
  const run = await runGorb(args, env);
  expect(run.code).toBe(0);
}

/** A running `gorb status --watch ...`: each stdout write is one frame. */
interface Watch {
  readonly frames: string[];
  /** The n-th frame (1-based), once printed; fails if the command ends first. */
  frame(n: number): Promise<string>;
  /** Ctrl-C, and the command's result. */
  stop(): Promise<CliRun>;
}

function watch(args: string[], watchEnv: Record<string, string> = env): Watch {
  const controller = new AbortController();
  const frames: string[] = [];
  let wake: () => void = () => {};
  const run = runGorb(args, watchEnv, {
    signal: controller.signal,
    onStdout: (text) => {
      frames.push(text);
      wake();
    },
  });
  const ended = run.then((result) => {
    throw new Error(`the command ended: ${JSON.stringify(result)}`);
  });
  ended.catch(() => {});
  return {
    frames,
    async frame(n) {
      while (frames.length < n) await Promise.race([new Promise<void>((resolve) => (wake = resolve)), ended]);
      return frames[n - 1] ?? "";
    },
    async stop() {
      controller.abort();
      return await run;
    },
  };
}

const reads = () => server.requests.filter((r) => r.startsWith("GET /service")).length;

describe("gorb status --watch", () => {
  test("prints the status once, then again after each change an event announces; no polling", async () => {
    await ok(["service", "add", "web", "--host", "10.0.0.1", "--port", "80"]);
    const w = watch(["status", "--watch"]);
    const first = await w.frame(1);
    expect(first).toStartWith(`${CLEAR}gorb status: ${server.url}, following events, `);
    expect(first).toContain("(Ctrl-C to stop)\n\n");
    expect(first).toContain("web   tcp 10.0.0.1:80");
    expect(first).not.toContain("b1");
    expect(server.requests.slice(-2)).toEqual(["GET /events", "GET /service?detail=true"]);

    await ok(["backend", "add", "web", "b1", "--host", "10.1.0.1", "--port", "8080"]);
    expect(w.frames).toHaveLength(1); // a change without its event is not seen: nothing polls
    server.bus.publish("backend.created", { service: "web", backend: "b1", source: "api", health: "unknown" });
    expect(await w.frame(2)).toContain("b1");

    const run = await w.stop();
    expect([run.code, run.stderr]).toEqual([0, ""]);
    expect(w.frames).toHaveLength(2);
    expect(reads()).toBe(2);
  });

  test("a burst of events is read in fewer reads than events, and the last frame shows the end state", async () => {
    const w = watch(["status", "--watch"]);
    expect(await w.frame(1)).toContain("no services");
    const before = reads();
    const names = Array.from({ length: 40 }, (_, i) => `s${String(i).padStart(2, "0")}`);
    for (const [i, name] of names.entries()) await server.stack.gorb.createService(name, { host: `10.0.0.${i + 1}`, port: 80 });
    // The events of a bulk change come out together (as from one apply).
    for (const name of names) server.bus.publish("service.created", { service: name, source: "api" });
    while (!(w.frames.at(-1) ?? "").includes("s39")) await w.frame(w.frames.length + 1);
    await w.stop();
    expect(reads() - before).toBeGreaterThan(0);
    expect(reads() - before).toBeLessThan(names.length);
  });

  test("with a SERVICE, events about other services do not redraw; a resync does", async () => {
    await ok(["service", "add", "web", "--host", "10.0.0.1", "--port", "80"]);
    await ok(["service", "add", "api", "--host", "10.0.0.2", "--port", "80"]);
    const w = watch(["status", "web", "--watch"]);
    await w.frame(1);
    server.bus.publish("service.changed", { service: "api" });
    server.bus.publish("service.changed", { service: "web" });
    await w.frame(2);
    server.bus.publish("backend.deleted", { service: "api", backend: "b9" });
    server.bus.publish("resync", { reason: "events were missed" });
    const third = await w.frame(3);
    await w.stop();
    expect(w.frames).toHaveLength(3);
    expect(third).toContain("web   tcp 10.0.0.1:80");
    expect(third).not.toContain("api");
  });

  test("--watch SERVICE (no number) takes the service; --json prints one JSON line per redraw", async () => {
    await ok(["service", "add", "web", "--host", "10.0.0.1", "--port", "80"]);
    await ok(["service", "add", "api", "--host", "10.0.0.2", "--port", "80"]);
    const w = watch(["status", "--json", "--watch", "web"]);
    await w.frame(1);
    server.bus.publish("service.changed", { service: "web" });
    await w.frame(2);
    const run = await w.stop();
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    for (const line of lines) expect((JSON.parse(line) as { id: string }[]).map((s) => s.id)).toEqual(["web"]);
  });

  test("the value of --watch is optional: bare at the end, or before another flag (-w too); help shows it so", async () => {
    const w = watch(["status", "-w", "--json"]);
    expect(JSON.parse(await w.frame(1))).toEqual([]);
    expect((await w.stop()).code).toBe(0);
    const help = await runGorb(["status", "--help"]);
    expect(help.stdout).toContain("  -w, --watch [seconds]  ");
    const bad = await runGorb(["status", "--watch", "soon", "web"], env);
    expect([bad.code, bad.stderr.split("\n")[0]]).toEqual([2, 'error: --watch: expected seconds, got "soon"']);
  });

  test("--watch with a SERVICE that does not exist ends at once as without --watch (exit 4); one deleted while watched does not", async () => {
    const once = await runGorb(["status", "nope"], env);
    expect(once).toEqual({ code: 4, stdout: "", stderr: 'error: service "nope" not found\n' });
    for (const args of [["status", "--watch", "nope"], ["status", "nope", "--watch", "5"], ["status", "--json", "-w", "nope"]]) {
      expect(await runGorb(args, env)).toEqual(once);
    }
    await ok(["service", "add", "web", "--host", "10.0.0.1", "--port", "80"]);
    const w = watch(["status", "web", "--watch"]);
    await w.frame(1);
    await ok(["service", "rm", "web"]);
    server.bus.publish("service.deleted", { service: "web" });
    expect(await w.frame(2)).toContain('error: service "web" not found');
    expect((await w.stop()).code).toBe(0);
  });

  test("a negative --watch is its value, refused as a usage error naming --watch (not an unknown option)", async () => {
    for (const [args, got] of [
      [["status", "--watch", "-1"], "-1"],
      [["status", "-w", "-0.5", "web"], "-0.5"],
      [["status", "--watch=-2"], "-2"],
      [["status", "--watch", "-5s"], '"-5s"'],
    ] as const) {
      const run = await runGorb([...args], env);
      expect([run.code, run.stdout, run.stderr.split("\n")[0]]).toEqual([2, "", `error: --watch: must be 0.5-3600 seconds, got ${got}`]);
    }
  });

  test("--watch N also re-reads every N seconds (connections and rates change without events)", async () => {
    await ok(["service", "add", "web", "--host", "10.0.0.1", "--port", "80"]);
    const w = watch(["status", "--watch", "0.5"]);
    for (const n of [1, 2]) {
      const frame = await w.frame(n);
      expect(frame).toStartWith(`${CLEAR}gorb status: ${server.url}, following events, counters every 0.5s, `);
      expect(frame).toContain("web   tcp 10.0.0.1:80");
    }
    expect((await w.stop()).code).toBe(0);
  });

  test("the token goes with the event stream; without it the watch ends with exit 6", async () => {
    const secured = startServer({ token: "s3cret" });
    try {
      const w = watch(["status", "--watch", "--token", "s3cret"], { GORB_SERVER: secured.url });
      expect(await w.frame(1)).toContain("no services");
      expect(secured.bus.followers).toBe(1);
      await w.stop();
      const refused = await runGorb(["status", "--watch"], { GORB_SERVER: secured.url });
      expect(refused).toEqual({
        code: 6,
        stdout: "",
        stderr: "error: GET /events: authorization: a bearer token is required (pass --token or set GORB_TOKEN)\n",
      });
    } finally {
      await secured.stop();
    }
  });

  test("Ctrl-C ends the watch and its subscription", async () => {
    const w = watch(["status", "--watch"]);
    await w.frame(1);
    expect(server.bus.followers).toBe(1);
    expect((await w.stop()).code).toBe(0);
    for (let i = 0; i < 2000 && server.bus.followers > 0; i++) await Bun.sleep(1);
    expect(server.bus.followers).toBe(0);
  });

  test("a daemon without GET /events: exit 4, saying so", async () => {
    const stack = makeGorb();
    const app = createApp({ gorb: stack.gorb, logger: stack.logger });
    app.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const run = await runGorb(["status", "--watch"], { GORB_SERVER: `http://127.0.0.1:${app.server?.port ?? 0}` });
      expect(run).toEqual({ code: 4, stdout: "", stderr: "error: GET /events: no route for GET /events\n" });
    } finally {
      await app.stop(true);
    }
  });
});
