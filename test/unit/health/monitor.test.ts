import { describe, expect, test } from "bun:test";
import type { CheckResult, Checker } from "../../../src/health/checker.ts";
import { HealthMonitor, type MonitorOptions } from "../../../src/health/monitor.ts";
import type { HealthUpdate } from "../../../src/health/target-state.ts";
import { type ProbeTarget, parsePulseOptions } from "../../../src/health/options.ts";
import { ManualClock, settle } from "./_manual-clock.ts";
import { NO_CHECK_MESSAGE } from "../../../src/health/checkers/none.ts";
import { mulberry32 } from "../../helpers/random.ts";

const BACKEND: ProbeTarget = { host: "10.0.0.1", port: 80 };

interface Call {
  readonly at: number;
  readonly target: ProbeTarget;
  readonly signal: AbortSignal;
}

/**
 * A test rig: manual clock, a scripted checker (outcome per call, by default from `plan`), and the recorded
 * calls and updates. `plan(n)` gives the n-th check's (0-based, across targets) outcome, or "hang".
 */
function rig(plan: (n: number, target: ProbeTarget) => boolean | "hang" = () => true, extra: Partial<MonitorOptions> = {}) {
  const clock = new ManualClock();
  const calls: Call[] = [];
  const updates: HealthUpdate[] = [];
  const checker: Checker = {
    check(target, signal): Promise<CheckResult> {
      const n = calls.length;
      calls.push({ at: clock.now(), target, signal });
      const outcome = plan(n, target);
      if (outcome === "hang") return new Promise(() => {});
      return Promise.resolve({ ok: outcome, durationMs: 1, message: outcome ? "fine" : "broken" });
    },
  };
  // Many of these tests add several ids for one backend to exercise per-target scheduling: no probe sharing here
  // (the "shared probes" tests turn it on).
  const monitor = new HealthMonitor({
    onUpdate: (u) => updates.push(u),
    clock,
    random: () => 0,
    checkerFor: () => checker,
    shareProbes: false,
    // Exact start times: no batching of nearby starts (the "batching" test turns it on).
    batchMs: 1,
    ...extra,
  });
  return { clock, calls, updates, monitor };
}

const opts = (pulse: unknown) => parsePulseOptions(pulse);
const starts = (calls: Call[]) => calls.map((c) => c.at);

describe("scheduling", () => {
  test("the first check waits random() x interval, later ones start one interval after the previous start", async () => {
    const { clock, calls, monitor } = rig(() => true, { random: () => 0.25 });
    monitor.add("a", BACKEND, opts({ interval: "1s" }));
    await clock.advance(249);
    expect(calls).toHaveLength(0);
    await clock.advance(3_001);
    expect(starts(calls)).toEqual([250, 1_250, 2_250, 3_250]);
    monitor.stop();
  });

  test("a `none` probe settles at once and is not checked again, until its timing changes", async () => {
    const { clock, calls, updates, monitor } = rig(() => true, { random: () => 0.5 });
    const unchecked: ProbeTarget = { host: "10.0.0.2", port: 80 };
    monitor.add("n", unchecked, opts({ type: "none", interval: "1s" }));
    monitor.add("t", BACKEND, opts({ type: "tcp", interval: "1s" }));
    await clock.advance(10_000);
    const of = (host: string) => starts(calls.filter((c) => c.target.host === host));
    expect(of("10.0.0.2")).toEqual([0]); // at once: nothing to spread
    expect(of("10.0.0.1")).toHaveLength(10); // the tcp probe beside it keeps its schedule
    expect(updates.filter((u) => u.id === "n").map((u) => u.status)).toEqual(["up"]);
    expect(monitor.snapshot("n")).toMatchObject({ status: "up", checks: 1, checking: false });
    // A new interval re-times it: one more check, then it rests again.
    monitor.update("n", unchecked, opts({ type: "none", interval: "2s" }));
    await clock.advance(10_000);
    expect(of("10.0.0.2")).toEqual([0, 10_000]);
    monitor.stop();
  });

  test("a `none` probe with the real checker is up within add: no timer, no turn of the event loop, no update, one clock reading", () => {
    const clock = new ManualClock();
    let readings = 0;
    const counted = { now: () => (readings++, clock.now()), setTimer: clock.setTimer.bind(clock), clearTimer: clock.clearTimer.bind(clock) };
    const updates: HealthUpdate[] = [];
    const monitor = new HealthMonitor({ onUpdate: (u) => updates.push(u), clock: counted, random: () => 0.5 });
    for (let i = 0; i < 100; i++) monitor.add(`n${i}`, { host: `10.0.1.${i}`, port: 80 }, opts({ type: "none" }));
    expect(readings).toBe(100);
    expect(clock.pending).toBe(0);
    expect(monitor.snapshot("n42")).toMatchObject({ status: "up", health: 1, checks: 1, checking: false, lastCheck: { ok: true, message: NO_CHECK_MESSAGE } });
    expect(monitor.stats()).toMatchObject({ targets: 100, started: 100, finished: 100, inFlight: 0 });
    expect(updates).toEqual([]);
    // A probe added beside them is scheduled as usual.
    monitor.add("t", BACKEND, opts({ type: "tcp", interval: "1s" }));
    expect(clock.pending).toBe(1);
    monitor.stop();
  });

  test("a `none` probe settled within add is checked once more when its timing changes, as any other", async () => {
    const clock = new ManualClock();
    const monitor = new HealthMonitor({ onUpdate: () => {}, clock, random: () => 0.5 });
    const target = { host: "10.0.1.1", port: 80 };
    monitor.add("n", target, opts({ type: "none", interval: "1s" }));
    expect(clock.pending).toBe(0);
    monitor.update("n", target, opts({ type: "none", interval: "2s" }));
    await clock.advance(2_000);
    expect(monitor.snapshot("n")).toMatchObject({ status: "up", checks: 2, checking: false });
    expect(clock.pending).toBe(0);
    monitor.stop();
  });

  test("first delays are spread over [0, interval), never reaching the interval", async () => {
    // A seeded generator keeps the test deterministic; the last call returns the largest double below 1.
    const seeded = mulberry32(42);
    let n = 0;
    const { clock, calls, monitor } = rig(() => true, { random: () => (++n === 500 ? 1 - Number.EPSILON / 2 : seeded()) });
    for (let i = 0; i < 500; i++) monitor.add(`t${i}`, BACKEND, opts({ interval: "10s" }));
    await clock.advance(10_000);
    // Second checks start at >= 10s, so every first check must be among the starts before 10s.
    const times = starts(calls).filter((t) => t < 10_000);
    expect(times).toHaveLength(500);
    expect(Math.min(...times)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...times)).toBeGreaterThan(9_999);
    // Spread, not a herd: every tenth of the interval gets some first checks.
    const buckets = new Set(times.map((t) => Math.floor(t / 1_000)));
    expect(buckets.size).toBe(10);
    monitor.stop();
  });

  test("batching: starts due within min(batchMs, interval/20) share one tick; deadlines are never early", async () => {
    let n = 0;
    // First checks due at 0, 30, 60 and 80ms; interval 1s (5% = 50ms), timeout 100ms.
    const { clock, calls, monitor } = rig(() => "hang", { batchMs: 50, random: () => [0, 0.03, 0.06, 0.08][n++] ?? 0 });
    for (const id of ["a", "b", "c", "d"]) monitor.add(id, BACKEND, opts({ interval: "1s", args: { timeout: "100ms" } }));
    await clock.advance(0);
    expect(starts(calls)).toEqual([0, 0]);
    expect(clock.fired).toBe(1);
    await clock.advance(99);
    expect(starts(calls)).toEqual([0, 0, 60, 60]);
    expect(calls.map((c) => c.signal.aborted)).toEqual([false, false, false, false]);
    await clock.advance(1);
    expect(calls.map((c) => c.signal.aborted)).toEqual([true, true, false, false]);
    monitor.stop();
  });

  test("many targets share one timer", async () => {
    const { clock, monitor } = rig(() => true, { random: Math.random });
    for (let i = 0; i < 1_000; i++) monitor.add(`t${i}`, BACKEND, opts({ interval: "1s" }));
    await clock.advance(5_000);
    expect(monitor.stats().finished).toBeGreaterThanOrEqual(4_000);
    expect(clock.maxPending).toBe(1);
    monitor.stop();
    expect(clock.pending).toBe(0);
  });

  test("http/https checks have their own, smaller concurrency limit", async () => {
    const { clock, calls, monitor } = rig(() => "hang", { maxFetchInFlight: 1 });
    monitor.add("h1", BACKEND, opts({ type: "http" }));
    monitor.add("h2", BACKEND, opts({ type: "https" }));
    monitor.add("t1", BACKEND, opts({ type: "tcp" }));
    await clock.advance(0);
    expect(monitor.stats()).toMatchObject({ inFlight: 2, queued: 1 });
    expect([monitor.snapshot("h1")?.checking, monitor.snapshot("h2")?.checking, monitor.snapshot("t1")?.checking]).toEqual([true, false, true]);
    monitor.remove("h1");
    expect(monitor.snapshot("h2")?.checking).toBe(true);
    expect(calls).toHaveLength(3);
    monitor.stop();
  });

  test("args.host / args.port redirect the probe", async () => {
    const { clock, calls, monitor } = rig();
    monitor.add("a", BACKEND, opts({ args: { host: "10.9.9.9", port: "8080" } }));
    await clock.advance(0);
    expect(calls[0]?.target).toEqual({ host: "10.9.9.9", port: 8080 });
    expect(monitor.snapshot("a")?.probe).toEqual({ host: "10.9.9.9", port: 8080 });
    expect(monitor.snapshot("a")?.backend).toEqual(BACKEND);
    monitor.stop();
  });

  test("maxInFlight bounds concurrent checks; the rest queue and start as slots free", async () => {
    const resolvers: ((r: CheckResult) => void)[] = [];
    const clock = new ManualClock();
    const lates: [string, number][] = [];
    let jitter = 0;
    const monitor = new HealthMonitor({
      onUpdate: () => {},
      clock,
      // First checks due at 0, 10, 20, 30, 40ms.
      random: () => (jitter++ * 10) / 10_000,
      maxInFlight: 2,
      shareProbes: false,
      batchMs: 1,
      onCheckStart: (id, lateMs) => lates.push([id, lateMs]),
      checkerFor: () => ({ check: () => new Promise<CheckResult>((resolve) => resolvers.push(resolve)) }),
    });
    for (const id of ["a", "b", "c", "d", "e"]) monitor.add(id, BACKEND, opts({ interval: "10s" }));
    await clock.advance(40);
    expect(monitor.stats()).toMatchObject({ inFlight: 2, queued: 3, started: 2 });
    await clock.advance(60);
    resolvers[0]?.({ ok: true, durationMs: 100, message: "" });
    await settle();
    expect(monitor.stats()).toMatchObject({ inFlight: 2, queued: 2, started: 3, finished: 1 });
    expect(lates).toEqual([
      ["a", 0],
      ["b", 0],
      ["c", 80],
    ]);
    resolvers[1]?.({ ok: true, durationMs: 100, message: "" });
    await settle();
    expect(lates.at(-1)).toEqual(["d", 70]);
    monitor.stop();
  });
});

describe("fixed-rate schedule under load", () => {
  /** Two targets, one slot: a's first check blocks b until the test releases it. */
  function blocked() {
    const clock = new ManualClock();
    const pending = new Map<number, (r: CheckResult) => void>();
    const started: [number, number][] = [];
    let jitter = 0;
    const monitor = new HealthMonitor({
      onUpdate: () => {},
      clock,
      maxInFlight: 1,
      random: () => [0, 0.1][jitter++] ?? 0,
      checkerFor: (o) => ({
        check: () => {
          started.push([o.port ?? 0, clock.now()]);
          if (o.port === 1 && !pending.has(1)) return new Promise<CheckResult>((resolve) => pending.set(1, resolve));
          return Promise.resolve({ ok: true, durationMs: 0, message: "" });
        },
      }),
    });
    monitor.add("a", BACKEND, opts({ interval: "1s", args: { port: 1 } }));
    monitor.add("b", BACKEND, opts({ interval: "1s", args: { port: 2 } }));
    const release = () => pending.get(1)?.({ ok: true, durationMs: 0, message: "" });
    return { clock, monitor, started, release };
  }

  test("a late start does not shift the next check: b due at 100ms starts at 300ms, next at 1100ms", async () => {
    const { clock, monitor, started, release } = blocked();
    await clock.advance(300);
    release();
    await clock.advance(900);
    expect(started).toEqual([
      [1, 0],
      [2, 300],
      [1, 1_000],
      [2, 1_100],
    ]);
    monitor.stop();
  });

  test("but two starts are at least half an interval apart: b started at 900ms runs next at 1400ms", async () => {
    const { clock, monitor, started, release } = blocked();
    await clock.advance(900);
    release();
    await clock.advance(600);
    expect(started).toEqual([
      [1, 0],
      [2, 900],
      [1, 1_000],
      [2, 1_400],
    ]);
    monitor.stop();
  });

  test("one tick handles at most maxPerTick entries, then yields", async () => {
    const { clock, calls, monitor } = rig(() => true, { maxPerTick: 2 });
    for (const id of ["a", "b", "c", "d", "e"]) monitor.add(id, BACKEND, opts({ interval: "1s" }));
    await clock.advance(0);
    expect(starts(calls)).toEqual([0, 0, 0, 0, 0]);
    expect(clock.fired).toBe(3);
    monitor.stop();
  });
});

describe("status, thresholds and counters", () => {
  test("the first result decides: unknown -> up, or unknown -> down", async () => {
    for (const ok of [true, false]) {
      const { clock, updates, monitor } = rig(() => ok);
      expect(monitor.snapshot("a")).toBeUndefined();
      monitor.add("a", BACKEND, opts({ args: { rise: 3, fall: 3 } }));
      expect(monitor.snapshot("a")?.status).toBe("unknown");
      expect(monitor.snapshot("a")?.lastCheck).toBeNull();
      await clock.advance(0);
      expect(updates).toHaveLength(1);
      expect(updates[0]).toMatchObject({ id: "a", status: ok ? "up" : "down", previousStatus: "unknown" });
      monitor.stop();
    }
  });

  test("fall=3: two failures keep Up, the third goes Down; rise=2: one pass keeps Down, the second goes Up", async () => {
    const outcomes = [true, false, false, false, true, true, false];
    const { clock, updates, monitor } = rig((n) => outcomes[n] ?? true);
    monitor.add("a", BACKEND, opts({ interval: "1s", args: { rise: 2, fall: 3 } }));
    await clock.advance(6_000);
    expect(updates.map((u) => [u.previousStatus, u.status, u.consecutiveOk, u.consecutiveFail])).toEqual([
      ["unknown", "up", 1, 0],
      ["up", "up", 0, 1],
      ["up", "up", 0, 2],
      ["up", "down", 0, 3],
      ["down", "down", 1, 0],
      ["down", "up", 2, 0],
      ["up", "up", 0, 1],
    ]);
    monitor.stop();
  });

  test("health is the pass fraction of the last 100 results, exactly samplesOk / samples", async () => {
    // 1 failure, then passes: the original's "first check failed" sequence.
    const { clock, updates, monitor } = rig((n) => n !== 0);
    monitor.add("a", BACKEND, opts({ interval: "1s" }));
    await clock.advance(150_000);
    const at = (i: number) => updates[i] as HealthUpdate;
    expect([at(0).samplesOk, at(0).samples, at(0).health]).toEqual([0, 1, 0]);
    expect([at(1).samplesOk, at(1).samples, at(1).health]).toEqual([1, 2, 0.5]);
    expect([at(99).samplesOk, at(99).samples, at(99).health]).toEqual([99, 100, 0.99]);
    // The 101st result pushes the failure out of the window.
    expect([at(100).samplesOk, at(100).samples, at(100).health]).toEqual([100, 100, 1]);
    expect(at(150).samples).toBe(100);
    expect(monitor.snapshot("a")?.checks).toBe(151);
    monitor.stop();
  });

  test("uptime is whole seconds since the status became Up, and 0 when Down", async () => {
    const outcomes = [false, true, true, true, true, false, true];
    const { clock, updates, monitor } = rig((n) => outcomes[n] ?? true);
    monitor.add("a", BACKEND, opts({ interval: "1500ms" }));
    await clock.advanceTo(6 * 1_500);
    // Up at t=1500; updates at 3000, 4500, 6000: 1.5s, 3s, 4.5s of uptime; Down at 7500, Up again at 9000.
    expect(updates.map((u) => u.uptimeSeconds)).toEqual([0, 0, 1, 3, 4, 0, 0]);
    await clock.advance(1_400);
    // A snapshot between checks counts up to now: Up since 9000, now 10400.
    expect(monitor.snapshot("a")?.uptimeSeconds).toBe(1);
    await clock.advance(1_000);
    // Another check passed at 10500; now 11400.
    expect(monitor.snapshot("a")?.uptimeSeconds).toBe(2);
    monitor.stop();
  });

  test("a listener that throws is reported and does not stop the schedule", async () => {
    const errors: unknown[] = [];
    const { clock, calls, monitor } = rig(() => true, {
      onUpdate: () => {
        throw new Error("listener bug");
      },
      onListenerError: (err) => errors.push(err),
    });
    monitor.add("a", BACKEND, opts({ interval: "1s" }));
    await clock.advance(2_000);
    expect(calls).toHaveLength(3);
    expect(errors.map((e) => (e as Error).message)).toEqual(["listener bug", "listener bug", "listener bug"]);
    monitor.stop();
  });

  test("a checker that throws or rejects is a check error (gorb's failure, not the backend's): no state, no update", async () => {
    const clock = new ManualClock();
    const updates: HealthUpdate[] = [];
    const monitor = new HealthMonitor({
      onUpdate: (u) => updates.push(u),
      clock,
      random: () => 0,
      checkerFor: (o) => ({
        check: () => {
          if (o.port === 1) throw new Error("sync boom");
          return Promise.reject(new Error("async boom"));
        },
      }),
    });
    monitor.add("sync", BACKEND, opts({ args: { port: 1 } }));
    monitor.add("async", BACKEND, opts({ args: { port: 2 } }));
    await clock.advance(0);
    expect(updates).toEqual([]);
    for (const [id, why] of [["sync", "sync boom"], ["async", "async boom"]] as const) {
      expect(monitor.snapshot(id)).toMatchObject({ status: "unknown", lastCheck: { ok: false, kind: "local-error", message: `check error: checker failed: ${why}` } });
    }
    expect(monitor.stats().checkErrors).toBe(2);
    monitor.stop();
  });
});

describe("timeouts", () => {
  test("a check still running at its deadline is aborted and counts as failed; the next starts on schedule", async () => {
    const { clock, calls, updates, monitor } = rig((n) => (n === 0 ? "hang" : true), { random: () => 0.25 });
    monitor.add("a", BACKEND, opts({ interval: "1s", args: { timeout: "300ms" } }));
    // First check at 0.25 x 1s = 250ms, deadline 550ms.
    await clock.advance(549);
    expect(updates).toHaveLength(0);
    expect(monitor.snapshot("a")?.checking).toBe(true);
    await clock.advance(1);
    expect(calls[0]?.signal.aborted).toBe(true);
    expect((calls[0]?.signal.reason as Error).message).toBe("timed out after 300ms");
    expect(updates[0]).toMatchObject({
      status: "down",
      lastCheck: { ok: false, durationMs: 300, message: "tcp check of 10.0.0.1:80 timed out after 300ms" },
    });
    expect(monitor.stats().timedOut).toBe(1);
    await clock.advance(1_000);
    expect(starts(calls)).toEqual([250, 1_250]);
    expect(updates[1]?.status).toBe("up");
    monitor.stop();
  });

  test("a late result from an abandoned check is ignored", async () => {
    let release: ((r: CheckResult) => void) | undefined;
    const clock = new ManualClock();
    const updates: HealthUpdate[] = [];
    const monitor = new HealthMonitor({
      onUpdate: (u) => updates.push(u),
      clock,
      random: () => 0,
      checkerFor: () => ({ check: () => new Promise<CheckResult>((resolve) => (release = resolve)) }),
    });
    monitor.add("a", BACKEND, opts({ interval: "1s", args: { timeout: "100ms" } }));
    await clock.advance(100);
    expect(updates.map((u) => u.lastCheck.ok)).toEqual([false]);
    release?.({ ok: true, durationMs: 150, message: "too late" });
    await settle();
    expect(updates).toHaveLength(1);
    expect(monitor.stats().inFlight).toBe(0);
    monitor.stop();
  });
});

describe("back-off", () => {
  test("off by default: a Down target keeps the interval", async () => {
    const { clock, calls, monitor } = rig(() => false);
    monitor.add("a", BACKEND, opts({ interval: "1s" }));
    await clock.advance(4_000);
    expect(starts(calls)).toEqual([0, 1_000, 2_000, 3_000, 4_000]);
    monitor.stop();
  });

  test("each further failure while Down doubles the wait up to the cap; a pass resets it", async () => {
    const { clock, calls, updates, monitor } = rig((n) => n >= 6);
    monitor.add("a", BACKEND, opts({ interval: "1s", args: { backoff: "8s" } }));
    await clock.advance(33_000);
    // Down at 0; then waits of 1s, 2s, 4s, 8s, 8s (cap); the pass at 31s resets the wait to 1s.
    expect(starts(calls)).toEqual([0, 1_000, 3_000, 7_000, 15_000, 23_000, 31_000, 32_000, 33_000]);
    expect(updates.at(-1)?.status).toBe("up");
    expect(monitor.snapshot("a")?.intervalMs).toBe(1_000);
    monitor.stop();
  });

  test("with fall > 1 the back-off starts only once the target is Down", async () => {
    const { clock, calls, updates, monitor } = rig((n) => n === 0);
    monitor.add("a", BACKEND, opts({ interval: "1s", args: { backoff: true, fall: 2 } }));
    await clock.advance(25_000);
    // Up at 0; failures at 1s (still Up) and 2s (Down) keep 1s; then waits double to the 8s cap (8 x 1s).
    expect(updates.slice(0, 3).map((u) => u.status)).toEqual(["up", "up", "down"]);
    expect(starts(calls)).toEqual([0, 1_000, 2_000, 3_000, 5_000, 9_000, 17_000, 25_000]);
    monitor.stop();
  });
});

describe("add / update / remove / stop", () => {
  test("add rejects a duplicate id, update rejects an unknown one, remove says whether it removed", () => {
    const { monitor } = rig();
    monitor.add("a", BACKEND, opts({}));
    expect(() => monitor.add("a", BACKEND, opts({}))).toThrow('health target "a" already exists');
    expect(() => monitor.update("b", BACKEND, opts({}))).toThrow('health target "b" does not exist');
    expect(monitor.remove("b")).toBe(false);
    expect(monitor.remove("a")).toBe(true);
    expect(monitor.has("a")).toBe(false);
    monitor.stop();
  });

  test("remove aborts a running check and no update follows", async () => {
    const { clock, calls, updates, monitor } = rig(() => "hang");
    monitor.add("a", BACKEND, opts({ interval: "1s" }));
    await clock.advance(0);
    monitor.remove("a");
    expect(calls[0]?.signal.aborted).toBe(true);
    await clock.advance(10_000);
    expect(updates).toHaveLength(0);
    expect(calls).toHaveLength(1);
    expect(monitor.stats()).toMatchObject({ targets: 0, inFlight: 0 });
    expect(clock.pending).toBe(0);
    monitor.stop();
  });

  test("a timing-only update keeps status and history and re-times from the last start", async () => {
    const { clock, calls, monitor } = rig(() => true);
    monitor.add("a", BACKEND, opts({ interval: "10s" }));
    await clock.advance(3_000);
    monitor.update("a", BACKEND, opts({ interval: "2s", args: { rise: 2 } }));
    await clock.advance(3_000);
    expect(starts(calls)).toEqual([0, 3_000, 5_000]);
    const snap = monitor.snapshot("a");
    expect(snap?.status).toBe("up");
    expect(snap?.checks).toBe(3);
    expect(snap?.options.rise).toBe(2);
    monitor.stop();
  });

  test("a probe change starts over: unknown status, empty history, new checker, new first delay", async () => {
    const clock = new ManualClock();
    const made: number[] = [];
    const monitor = new HealthMonitor({
      onUpdate: () => {},
      clock,
      random: () => 0.5,
      checkerFor: (o) => {
        made.push(o.port ?? 0);
        return { check: () => Promise.resolve({ ok: true, durationMs: 0, message: "" }) };
      },
    });
    monitor.add("a", BACKEND, opts({ interval: "1s" }));
    await clock.advance(2_000);
    expect(monitor.snapshot("a")?.checks).toBe(2);
    monitor.update("a", BACKEND, opts({ interval: "1s", args: { port: 8080 } }));
    const snap = monitor.snapshot("a");
    expect([snap?.status, snap?.checks, snap?.samples, snap?.lastCheck]).toEqual(["unknown", 0, 0, null]);
    expect(made).toEqual([0, 8080]);
    await clock.advance(499);
    expect(monitor.snapshot("a")?.checks).toBe(0);
    await clock.advance(1);
    expect(monitor.snapshot("a")?.status).toBe("up");
    monitor.stop();
  });

  test("a new backend address also starts over", async () => {
    const { clock, monitor } = rig();
    monitor.add("a", BACKEND, opts({}));
    await clock.advance(0);
    monitor.update("a", { host: "10.0.0.2", port: 80 }, opts({}));
    expect(monitor.snapshot("a")?.status).toBe("unknown");
    expect(monitor.snapshot("a")?.probe).toEqual({ host: "10.0.0.2", port: 80 });
    monitor.stop();
  });

  test("stop aborts running checks, disarms the timer and refuses new targets", async () => {
    const { clock, calls, monitor } = rig(() => "hang");
    monitor.add("a", BACKEND, opts({}));
    monitor.add("b", BACKEND, opts({}));
    await clock.advance(0);
    monitor.stop();
    expect(calls.map((c) => c.signal.aborted)).toEqual([true, true]);
    expect(clock.pending).toBe(0);
    expect(monitor.size).toBe(0);
    expect(() => monitor.add("c", BACKEND, opts({}))).toThrow("health monitor is stopped");
    monitor.stop();
  });

  test("a listener may remove the target it is told about", async () => {
    const clock = new ManualClock();
    let monitor: HealthMonitor | null = null;
    const seen: string[] = [];
    monitor = new HealthMonitor({
      onUpdate: (u) => {
        seen.push(u.id);
        monitor?.remove(u.id);
      },
      clock,
      random: () => 0,
      checkerFor: () => ({ check: () => Promise.resolve({ ok: false, durationMs: 0, message: "" }) }),
    });
    monitor.add("a", BACKEND, opts({ interval: "1s" }));
    await clock.advance(5_000);
    expect(seen).toEqual(["a"]);
    expect(clock.pending).toBe(0);
    monitor.stop();
  });
});
