/**
 * Shared probes (counted at a real backend), check errors that change nothing, and slots held until a probe's
 * socket is really closed.
 */
import { afterAll, describe, expect, test } from "bun:test";
import type { CancelProbe, CheckResult, Checker } from "../../../src/health/checker.ts";
import { HealthMonitor } from "../../../src/health/monitor.ts";
import type { HealthUpdate } from "../../../src/health/target-state.ts";
import { type ProbeTarget, parsePulseOptions } from "../../../src/health/options.ts";
import { ManualClock } from "./_manual-clock.ts";

describe("shared probes, counted at the backend", () => {
  let connections = 0;
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open() { connections++; }, data() {} } });
  afterAll(() => server.stop(true));
  const backend = { host: "127.0.0.1", port: server.port };

  test("three services with the same backend and pulse run one probe; each gets every result", async () => {
    const updates: HealthUpdate[] = [];
    const monitor = new HealthMonitor({ onUpdate: (u) => updates.push(u) });
    const pulse = parsePulseOptions({ type: "tcp", interval: "100ms" });
    const start = connections;
    for (const id of ["web/b1", "api/b1", "admin/b1"]) monitor.add(id, backend, pulse);
    // A fourth target with another interval is another probe.
    monitor.add("slow/b1", backend, parsePulseOptions({ type: "tcp", interval: "10s" }));
    expect(monitor.stats()).toMatchObject({ targets: 4, probes: 2 });
    expect(monitor.snapshot("web/b1")?.sharedBy).toBe(3);
    while (updates.filter((u) => u.id === "web/b1").length < 5) await Bun.sleep(10);
    const fast = updates.filter((u) => u.id !== "slow/b1");
    monitor.stop();
    const probed = connections - start;
    const slowChecks = updates.filter((u) => u.id === "slow/b1").length;
    // One connection per check of the shared probe (plus the slow probe's), three updates per check.
    expect(fast.length % 3).toBe(0);
    expect(probed).toBe(fast.length / 3 + slowChecks);
    for (const id of ["web/b1", "api/b1", "admin/b1"]) expect(fast.filter((u) => u.id === id).length).toBe(fast.length / 3);
  });

  test("a target that joins a running probe sees its state at once; the last one out stops the probe", async () => {
    const updates: HealthUpdate[] = [];
    const clock = new ManualClock();
    const monitor = new HealthMonitor({ onUpdate: (u) => updates.push(u), clock });
    const pulse = parsePulseOptions({ type: "tcp", interval: "100ms" });
    monitor.add("a", backend, pulse);
    await clock.advance(100); // the first check is due within one interval; it connects for real
    while (updates.length < 1) await Bun.sleep(5);
    monitor.add("b", backend, pulse);
    expect(monitor.snapshot("b")?.status).toBe("up");
    monitor.remove("a");
    expect(monitor.stats()).toMatchObject({ targets: 1, probes: 1 });
    monitor.remove("b");
    expect(monitor.stats()).toMatchObject({ targets: 0, probes: 0 });
    // Stopped means no timer left to fire: ten intervals later not one more connection was opened.
    expect(clock.pending).toBe(0);
    const before = connections;
    await clock.advance(1_000);
    expect(connections).toBe(before);
    monitor.stop();
  });

  test("changing one sharer's pulse moves it to its own probe and keeps its history when only timing changed", async () => {
    const updates: HealthUpdate[] = [];
    const monitor = new HealthMonitor({ onUpdate: (u) => updates.push(u) });
    const pulse = parsePulseOptions({ type: "tcp", interval: "100ms" });
    monitor.add("a", backend, pulse);
    monitor.add("b", backend, pulse);
    while (updates.filter((u) => u.id === "b").length < 2) await Bun.sleep(5);
    monitor.update("b", backend, parsePulseOptions({ type: "tcp", interval: "200ms" }));
    expect(monitor.stats().probes).toBe(2);
    expect(monitor.snapshot("b")).toMatchObject({ status: "up", sharedBy: 1 });
    expect(monitor.snapshot("b")?.samples).toBeGreaterThanOrEqual(2);
    expect(monitor.snapshot("a")?.sharedBy).toBe(1);
    monitor.stop();
  });
});

/** A checker driven by the test: each run waits for the test to finish or release it. */
function scripted() {
  const runs: { target: ProbeTarget; done: (r: CheckResult) => void; released: () => void; cancelled: boolean }[] = [];
  const checker: Checker = {
    check: () => Promise.reject(new Error("not used")),
    run(target, done, released): CancelProbe {
      const r = { target, done, released, cancelled: false };
      runs.push(r);
      return () => {
        r.cancelled = true;
      };
    },
  };
  return { runs, checker };
}

describe("a target that joins a probe with a status is told it without waiting for the next check", () => {
  /** A monitor on a hand-driven clock and a scripted checker, and one address probed every minute. */
  const joinSetup = () => {
    const clock = new ManualClock();
    const { runs, checker } = scripted();
    const updates: HealthUpdate[] = [];
    const monitor = new HealthMonitor({ onUpdate: (u) => updates.push(u), clock, random: () => 0, checkerFor: () => checker });
    return { clock, runs, updates, monitor, pulse: parsePulseOptions({ interval: "1m" }), target: { host: "10.0.0.1", port: 80 } };
  };

  test("added, or moved onto it by update(): one update each, from unknown, within the caller's turn", async () => {
    const { clock, runs, updates, monitor, pulse, target } = joinSetup();
    monitor.add("web/b1", target, pulse);
    await clock.advance(0);
    runs[0]?.done({ ok: false, durationMs: 1, message: "connect to 10.0.0.1:80 failed: ECONNREFUSED", kind: "fail" });
    runs[0]?.released();
    expect(updates.map((u) => [u.id, u.status])).toEqual([["web/b1", "down"]]);
    // Another service's backend on the same address and pulse shares the probe: it is down now, not in a minute.
    monitor.add("api/b1", target, pulse);
    monitor.add("admin/b1", { host: "10.0.0.9", port: 80 }, pulse);
    expect(updates).toHaveLength(1); // not from within add()
    await Promise.resolve();
    expect(updates.slice(1).map((u) => [u.id, u.status, u.previousStatus, u.consecutiveFail])).toEqual([["api/b1", "down", "unknown", 1]]);
    // One moved onto the probe by update() is told too.
    monitor.update("admin/b1", target, pulse);
    await Promise.resolve();
    expect(updates.slice(2).map((u) => [u.id, u.status, u.previousStatus])).toEqual([["admin/b1", "down", "unknown"]]);
    expect(monitor.stats()).toMatchObject({ targets: 3, probes: 1 });
    expect(runs).toHaveLength(1); // nothing was probed for the joins
    monitor.stop();
  });

  test("a target removed before its turn, or joining a probe without a status yet, gets nothing", async () => {
    const { clock, runs, updates, monitor, pulse, target } = joinSetup();
    monitor.add("a", target, pulse);
    monitor.add("b", target, pulse); // the probe has no result yet
    await clock.advance(0);
    runs[0]?.done({ ok: true, durationMs: 1, message: "connected", kind: "pass" });
    expect(updates.map((u) => u.id)).toEqual(["a", "b"]);
    monitor.add("c", target, pulse);
    monitor.remove("c");
    await Promise.resolve();
    expect(updates.map((u) => u.id)).toEqual(["a", "b"]);
    monitor.stop();
  });
});

describe("check errors (local errors) change nothing", () => {
  test("EMFILE while Up: no update, status and counters unchanged, reported in the snapshot and stats", async () => {
    const clock = new ManualClock();
    const { runs, checker } = scripted();
    const updates: HealthUpdate[] = [];
    const errors: [string, CheckResult][] = [];
    const monitor = new HealthMonitor({ onUpdate: (u) => updates.push(u), onCheckError: (id, r) => errors.push([id, r]), clock, random: () => 0, checkerFor: () => checker });
    monitor.add("a", { host: "10.0.0.1", port: 80 }, parsePulseOptions({ interval: "1s" }));
    await clock.advance(0);
    runs[0]?.done({ ok: true, durationMs: 1, message: "connected", kind: "pass" });
    runs[0]?.released();
    await clock.advance(1_000);
    const local: CheckResult = { ok: false, durationMs: 0, message: "check error: connect to 10.0.0.1:80 failed: EMFILE", kind: "local-error", code: "EMFILE" };
    runs[1]?.done(local);
    runs[1]?.released();
    expect(updates).toHaveLength(1);
    expect(errors).toEqual([["a", local]]);
    expect(monitor.snapshot("a")).toMatchObject({ status: "up", samples: 1, samplesOk: 1, consecutiveOk: 1, consecutiveFail: 0, lastCheck: { kind: "local-error", code: "EMFILE" } });
    expect(monitor.stats().checkErrors).toBe(1);
    // The schedule goes on: the next check is due one interval later, and a pass counts as usual.
    await clock.advance(1_000);
    runs[2]?.done({ ok: true, durationMs: 1, message: "connected", kind: "pass" });
    expect(updates.at(-1)).toMatchObject({ status: "up", consecutiveOk: 2, samples: 2 });
    monitor.stop();
  });

  test("a check error before the first result leaves the target unknown", async () => {
    const clock = new ManualClock();
    const { runs, checker } = scripted();
    const updates: HealthUpdate[] = [];
    const monitor = new HealthMonitor({ onUpdate: (u) => updates.push(u), clock, random: () => 0, checkerFor: () => checker });
    monitor.add("a", { host: "10.0.0.1", port: 80 }, parsePulseOptions({ interval: "1s" }));
    await clock.advance(0);
    runs[0]?.done({ ok: false, durationMs: 0, message: "check error", kind: "local-error", code: "ENFILE" });
    expect(updates).toHaveLength(0);
    expect(monitor.snapshot("a")?.status).toBe("unknown");
    monitor.stop();
  });
});

describe("a probe's slot is held until its socket is closed", () => {
  test("a timed-out probe whose socket is not closed yet still counts against maxInFlight", async () => {
    const clock = new ManualClock();
    const { runs, checker } = scripted();
    let n = 0;
    const monitor = new HealthMonitor({ onUpdate: () => {}, clock, random: () => (n++ === 0 ? 0 : 0.5), maxInFlight: 1, checkerFor: () => checker });
    const pulse = parsePulseOptions({ interval: "1s", args: { timeout: "100ms" } });
    monitor.add("a", { host: "10.0.0.1", port: 80 }, pulse);
    monitor.add("b", { host: "10.0.0.2", port: 80 }, pulse);
    await clock.advance(100);
    // a timed out and was cancelled, but its socket is not closed: b (due at 500ms) must wait.
    expect(runs[0]?.cancelled).toBe(true);
    expect(monitor.stats()).toMatchObject({ inFlight: 1, timedOut: 1 });
    await clock.advance(500);
    expect(runs).toHaveLength(1);
    expect(monitor.stats().queued).toBe(1);
    runs[0]?.released();
    expect(runs).toHaveLength(2);
    expect(runs[1]?.target.host).toBe("10.0.0.2");
    monitor.stop();
  });
});
