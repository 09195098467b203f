/**
 * An overloaded monitor queues checks instead of timing them out: while its timer fires late (the event loop
 * lags), the lanes' in-flight limits shrink to MIN_ADAPTIVE_IN_FLIGHT (16); once the lag is gone they climb back.
 * A hand-driven clock whose timers fire `lag` ms late stands in for a saturated event loop; the checks never
 * answer (each one holds its slot until it is cancelled at its timeout).
 */
import { expect, test } from "bun:test";
import type { Checker } from "../../../src/health/checker.ts";
import type { MonitorClock } from "../../../src/health/clock.ts";
import { HealthMonitor } from "../../../src/health/monitor.ts";
import { parsePulseOptions } from "../../../src/health/options.ts";
import { ManualClock } from "./_manual-clock.ts";

/** A ManualClock whose timers fire `lag` ms after they are due. */
class LateClock implements MonitorClock {
  lag = 0;
  constructor(readonly manual: ManualClock) {}
  now(): number {
    return this.manual.now();
  }
  setTimer(callback: () => void, delayMs: number): unknown {
    return this.manual.setTimer(callback, delayMs + this.lag);
  }
  clearTimer(handle: unknown): void {
    this.manual.clearTimer(handle);
  }
}

/** A check that never answers: it holds its slot until the monitor cancels it. */
const silent: Checker = {
  run(_target, _done, released) {
    return () => released();
  },
  check: () => new Promise(() => {}),
};

test("while the timer fires late the http lane holds at most 16 checks; without lag it fills to its maximum again", async () => {
  const manual = new ManualClock();
  const clock = new LateClock(manual);
  let spread = 0;
  // First checks spread over the interval, as Math.random would, so the timer ticks many times a second.
  const random = () => (spread++ % 100) / 100;
  const monitor = new HealthMonitor({ onUpdate() {}, clock, random, checkerFor: () => silent, maxFetchInFlight: 64 });
  const options = parsePulseOptions({ type: "http", interval: "1s", args: { timeout: "1s" } });
  for (let i = 0; i < 200; i++) monitor.add(`b${i}`, { host: "10.0.0.1", port: 1000 + i }, options);
  const peak = async (ms: number) => {
    let max = 0;
    for (let t = 0; t < ms; t += 50) {
      await manual.advance(50);
      max = Math.max(max, monitor.stats().inFlight);
    }
    return max;
  };
  expect(await peak(3000)).toBe(64);
  clock.lag = 300;
  await peak(3000); // the limit halves on each late tick: 64 -> 32 -> 16
  expect(await peak(3000)).toBeLessThanOrEqual(16);
  clock.lag = 0;
  await peak(3000); // an eighth more per tick, back up
  expect(await peak(3000)).toBe(64);
  monitor.stop();
});
