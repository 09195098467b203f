/** `gorb backend drain`, `undrain`, `--maintenance` and how `gorb status` shows them, against a real local API. */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { backendSummary } from "../../../src/cli/views.ts";
import { statusBackend } from "../../../src/render/status.ts";
import { type TestServer, runGorb, startServer } from "./_harness.ts";

let server: TestServer;
let env: Record<string, string>;

beforeEach(async () => {
  server = startServer();
  env = { GORB_SERVER: server.url };
  await server.stack.gorb.createService("web", { host: "10.0.0.1", port: 80 });
  await server.stack.gorb.createBackend("web", "b1", { host: "10.1.0.1" });
  await server.stack.gorb.createBackend("web", "b2", { host: "10.1.0.2" });
});

afterEach(async () => {
  await server.stop();
});

/** Resolves at the next `backend.drain` event of `phase` for b1. */
function drainPhase(phase: string): Promise<void> {
  return new Promise((resolve) => {
    const sub = server.stack.gorb.events.subscribe((e) => {
      if (e.type === "backend.drain" && e.data.backend === "b1" && e.data.phase === phase) {
        sub.unsubscribe();
        resolve();
      }
    });
  });
}

describe("gorb backend drain and undrain", () => {
  test("--no-wait starts the drain and returns; status and show display it; undrain cancels it", async () => {
    const drained = drainPhase("drained");
    const run = await runGorb(["backend", "drain", "web", "b1", "--timeout", "10m", "--then", "keep", "--no-wait"], env);
    expect(run).toEqual({ code: 0, stdout: "", stderr: "backend web/b1 is draining\n" });
    expect(server.requests).toContain("POST /service/web/b1/drain");
    // No connections in the in-memory kernel: the drain ends at once and, with then keep, holds the weight at 0.
    await drained;
    await server.stack.gorb.idle();
    const status = await runGorb(["status"], env);
    expect(status.stdout).toMatch(/b1 .* 0 .*unknown drained/);
    const show = await runGorb(["backend", "show", "web", "b1"], env);
    expect(show.stdout).toMatch(/drain\s+drained since the drain ended; held at weight 0/);
    expect(await runGorb(["backend", "undrain", "web", "b1"], env)).toEqual({ code: 0, stdout: "", stderr: "backend web/b1 is no longer drained\n" });
    expect((await server.stack.gorb.getBackend("web", "b1")).drain).toBeNull();
  });

  test("waiting: a backend with no connection is drained and removed, and the command says so", async () => {
    const run = await runGorb(["backend", "drain", "web", "b1"], env);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain("backend web/b1 drained and removed");
    expect(await server.stack.gorb.getService("web")).toMatchObject({ backends: ["b2"] });
  });

  test("undrain of a backend that is not drained says there was nothing to cancel", async () => {
    expect(await runGorb(["backend", "undrain", "web", "b2"], env)).toEqual({ code: 0, stdout: "", stderr: "backend web/b2 was not drained: nothing to cancel\n" });
  });

  test("waiting with --then keep ends once it is held at weight 0", async () => {
    const run = await runGorb(["backend", "drain", "web", "b2", "--then", "keep"], env);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain("backend web/b2 drained; kept at weight 0");
  });

  test("a backend gone while its drain was to keep it was deleted by someone else: not reported as drained and removed", async () => {
    // A daemon whose drain answers with its `then`, and whose backend is then gone (deleted meanwhile).
    let then = "keep";
    const fake = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (request) =>
        request.method === "POST"
          ? Response.json({ state: "draining", started: "2026-12-05T08:00:00.000Z", deadline: "2026-12-05T08:05:00.000Z", then, seconds_left: 300, node: null })
          : Response.json({ error: 'backend "b1" of service "web" not found', code: "NOT_FOUND" }, { status: 404 }),
    });
    try {
      const kept = await runGorb(["backend", "drain", "web", "b1", "--then", "keep"], { GORB_SERVER: `http://127.0.0.1:${fake.port}` });
      expect([kept.code, kept.stderr]).toEqual([
        4,
        'error: backend web/b1 was deleted while it drained, not by its drain (it was to keep it): backend "b1" of service "web" not found\n',
      ]);
      then = "remove";
      const removed = await runGorb(["backend", "drain", "web", "b1"], { GORB_SERVER: `http://127.0.0.1:${fake.port}` });
      expect([removed.code, removed.stderr]).toEqual([0, expect.stringContaining("backend web/b1 drained and removed")]);
    } finally {
      fake.stop(true);
    }
  });

  test("in a fleet, the progress line says what the other nodes still hold once this node's connections have ended", async () => {
    // A starting node's answers: its own count 0, the others' 2 active, then a node that has not said, then removed.
    const drain = { state: "draining", started: "2026-12-05T08:00:00.000Z", deadline: "2026-12-05T08:05:00.000Z", then: "remove", seconds_left: 300, node: "lb1" };
    const answers = [{ others: { active: 2, inactive: 1 } }, { others: null }];
    const fake = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (request) => {
        if (request.method === "POST") return Response.json(drain);
        const next = answers.shift();
        if (next === undefined) return Response.json({ error: 'backend "b1" of service "web" not found', code: "NOT_FOUND" }, { status: 404 });
        return Response.json({ options: {}, metrics: {}, effective_weight: 0, stats: null, active_conns: 0, inactive_conns: 0, drain: { ...drain, ...next } });
      },
    });
    // The command's signal (Ctrl-C): a wait between two reads must not leave its listener on it (a drain watched
    // for days read once a second).
    const ctrlC = new AbortController();
    let listening = 0;
    const add = ctrlC.signal.addEventListener.bind(ctrlC.signal);
    const remove = ctrlC.signal.removeEventListener.bind(ctrlC.signal);
    ctrlC.signal.addEventListener = (...args: Parameters<typeof add>) => ((listening += args[0] === "abort" ? 1 : 0), add(...args));
    ctrlC.signal.removeEventListener = (...args: Parameters<typeof remove>) => ((listening -= args[0] === "abort" ? 1 : 0), remove(...args));
    try {
      const run = await runGorb(["backend", "drain", "web", "b1"], { GORB_SERVER: `http://127.0.0.1:${fake.port}` }, { signal: ctrlC.signal });
      expect(listening).toBe(0);
      expect(run.code).toBe(0);
      expect(run.stderr.split("\n").filter((l) => l.startsWith("web/b1"))).toEqual([
        "web/b1: draining, 0 active, 0 inactive connection(s) left (other nodes: 2 active, 1 inactive), 5:00 to the deadline, then remove",
        "web/b1: draining, 0 active, 0 inactive connection(s) left (other nodes: not all have said yet), 5:00 to the deadline, then remove",
      ]);
      expect(run.stderr).toContain("backend web/b1 drained and removed");
    } finally {
      fake.stop(true);
    }
  });

  test("bad flags are usage errors; the daemon's refusals keep their exit codes", async () => {
    expect((await runGorb(["backend", "drain", "web", "b1", "--then", "explode"], env)).code).toBe(2);
    const bad = await runGorb(["backend", "drain", "web", "b1", "--timeout", "5"], env);
    expect([bad.code, bad.stderr]).toEqual([6, expect.stringContaining("timeout: must be a duration")]);
    expect((await runGorb(["backend", "drain", "web", "nope", "--no-wait"], env)).code).toBe(4);
  });
});

describe("gorb backend set --maintenance", () => {
  test("on and off, shown by status and show", async () => {
    expect((await runGorb(["backend", "set", "web", "b1", "--maintenance"], env)).code).toBe(0);
    expect(server.bodies.at(-1)).toEqual({ maintenance: true });
    expect((await runGorb(["status"], env)).stdout).toMatch(/b1 .* maint/);
    expect((await runGorb(["backend", "show", "web", "b1"], env)).stdout).toMatch(/maintenance\s+on/);
    expect((await runGorb(["backend", "set", "web", "b1", "--no-maintenance"], env)).code).toBe(0);
    expect(server.bodies.at(-1)).toEqual({ maintenance: false });
    expect((await server.stack.gorb.getBackend("web", "b1")).effective_weight).toBe(100);
  });
});

describe("how status and show word a drain", () => {
  test("a running drain: seconds left and what follows", () => {
    const info = {
      options: { host: "10.1.0.1", port: 80, weight: 100, method: "nat", pulse: { type: "tcp" as const, interval: "1m", args: null }, vsid: "web",
        upper_threshold: 0, lower_threshold: 0, tunnel_type: "", tunnel_port: 0, tunnel_checksum: "", address: "10.1.0.1", maintenance: true, slow_start: "" },
      metrics: { status: 0 as const, state: "up" as const, health: 1, uptime: 5, last_check_ms: 1, message: "" },
      effective_weight: 0,
      stats: null,
      active_conns: 3,
      inactive_conns: 7,
      persistent_conns: 0,
      drain: { state: "draining" as const, started: "2026-12-02T12:00:00.000Z", deadline: "2026-12-02T12:05:00.000Z", then: "remove" as const, seconds_left: 241, node: null },
    };
    expect(statusBackend("b1", info).state).toBe("up maint draining 241s>remove");
    expect(backendSummary("web", "b1", info)).toMatch(/drain\s+draining since 2026-12-02T12:00:00.000Z, deadline 2026-12-02T12:05:00.000Z \(241s left\), then remove/);
  });
});
