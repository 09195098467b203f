/**
 * A check that gorb itself starved (its event loop stalled while the check ran: a long synchronous task, a GC
 * pause) is given its timeout once more instead of timing out: a backend answering in milliseconds was failed
 * because its TLS handshake could not take its next turn. A hand-driven clock models the stall: every timer due
 * inside it fires when it ends. The checker answers after three turns of `step` ms (a handshake's round trips).
 */
import { expect, test } from "bun:test";
import type { Checker } from "../../../src/health/checker.ts";
import type { MonitorClock } from "../../../src/health/clock.ts";
import { HealthMonitor } from "../../../src/health/monitor.ts";
import { parsePulseOptions } from "../../../src/health/options.ts";
import type { HealthUpdate } from "../../../src/health/target-state.ts";
import { ManualClock } from "./_manual-clock.ts";

/** A ManualClock whose timers due in [from, to) fire at `to`, in the order they were set. */
class StallClock implements MonitorClock {
  from = Number.POSITIVE_INFINITY;
  to = Number.POSITIVE_INFINITY;
  constructor(readonly manual: ManualClock) {}
  now(): number {
    return this.manual.now();
  }
  setTimer(callback: () => void, delayMs: number): unknown {
    const due = this.now() + Math.max(0, delayMs);
    return this.manual.setTimer(callback, due >= this.from && due < this.to ? this.to - this.now() : delayMs);
  }
  clearTimer(handle: unknown): void {
    this.manual.clearTimer(handle);
  }
}

/** A checker that passes after three turns of `step` ms each, or never when `dead`. */
function turns(clock: MonitorClock, step: number, dead = false): Checker {
  return {
    run(_target, done, released) {
      let cancelled = false;
      let left = 3;
      const turn = () => {
        if (cancelled) return;
        if (--left > 0 || dead) {
          clock.setTimer(turn, step);
          return;
        }
        done({ ok: true, durationMs: 0, message: "answered", kind: "pass" });
        released();
      };
      clock.setTimer(turn, step);
      return () => {
        cancelled = true;
        released();
      };
    },
    check: () => Promise.reject(new Error("unused")),
  };
}

/** `random` gives each new probe's share of its interval before its first check, in order (then 0). */
function rig(step: number, dead = false, random: number[] = []) {
  const manual = new ManualClock();
  const clock = new StallClock(manual);
  const updates: HealthUpdate[] = [];
  const monitor = new HealthMonitor({ onUpdate: (u) => updates.push(u), clock, random: () => random.shift() ?? 0, checkerFor: () => turns(clock, step, dead) });
  monitor.add("a", { host: "10.0.0.1", port: 443 }, parsePulseOptions({ type: "https", interval: "5s", args: { timeout: "1s" } }));
  return { manual, clock, updates, monitor };
}

test("a stall across the deadline: the check gets its timeout again and passes", async () => {
  const { manual, clock, updates } = rig(5);
  clock.from = 10;
  clock.to = 1600;
  await manual.advance(3000);
  expect(updates.map((u) => [u.status, u.lastCheck.kind])).toEqual([["up", "pass"]]);
});

test("a dead backend under the same stall still times out, one timeout later", async () => {
  const { manual, clock, updates, monitor } = rig(5, true);
  clock.from = 10;
  clock.to = 1600;
  await manual.advance(2599);
  expect(updates).toEqual([]);
  await manual.advance(2);
  expect(updates.map((u) => [u.status, u.lastCheck.kind, manual.now()])).toEqual([["down", "timeout", 2601]]);
  expect(monitor.stats().timedOut).toBe(1);
});

test("a stall that ended before the deadline, seen by the monitor's timer, also gives the check its timeout again", async () => {
  const { manual, clock, updates, monitor } = rig(20, false, [0, 0.5]);
  // Another probe's first check due at 500 makes the monitor's timer fire during the stall (at 990: 490 ms late).
  monitor.add("b", { host: "10.0.0.2", port: 443 }, parsePulseOptions({ type: "https", interval: "1s", args: { timeout: "1s" } }));
  clock.from = 10;
  clock.to = 990;
  await manual.advance(2000);
  expect(updates.filter((u) => u.id === "a").map((u) => [u.status, u.lastCheck.kind])).toEqual([["up", "pass"]]);
});

test("without a stall a check that needs longer than its timeout times out at the timeout", async () => {
  const { manual, updates } = rig(400);
  await manual.advance(1001);
  expect(updates.map((u) => [u.status, u.lastCheck.kind, manual.now()])).toEqual([["down", "timeout", 1001]]);
});

test("a busy monitor's timer a few ms late on every tick starves nothing: a dead backend times out at its timeout", async () => {
  const manual = new ManualClock();
  // Every timer fires 10 ms late (a busy event loop), and 200 other probes make the timer tick all the time.
  const clock: MonitorClock = {
    now: () => manual.now(),
    setTimer: (callback, delayMs) => manual.setTimer(callback, delayMs + 10),
    clearTimer: (handle) => manual.clearTimer(handle),
  };
  const updates: HealthUpdate[] = [];
  let spread = 0;
  const random = () => (spread++ % 100) / 100;
  const monitor = new HealthMonitor({ onUpdate: (u) => updates.push(u), clock, random, checkerFor: (o) => turns(clock, 1, o.port === 1) });
  for (let i = 0; i < 200; i++) monitor.add(`b${i}`, { host: "10.0.0.1", port: 1000 + i }, parsePulseOptions({ type: "tcp", interval: "100ms", args: { timeout: "100ms" } }));
  const start = manual.now();
  monitor.add("dead", { host: "10.0.0.2", port: 443 }, parsePulseOptions({ type: "tcp", interval: "10s", args: { timeout: "1s", port: 1 } }));
  while (!updates.some((u) => u.id === "dead")) await manual.advance(10);
  expect(manual.now() - start).toBeLessThan(1_200);
  expect(updates.find((u) => u.id === "dead")?.lastCheck.kind).toBe("timeout");
});
