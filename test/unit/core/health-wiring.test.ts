/**
 * Gorb wired to the real HealthMonitor of src/health (the daemon's wiring), with a hand-driven clock and a
 * scripted checker: proves the factory seam, the update flow and the weight policy end to end.
 */
import { describe, expect, test } from "bun:test";
import { Gorb } from "../../../src/core/gorb.ts";
import type { CheckResult, Checker } from "../../../src/health/checker.ts";
import type { MonitorClock } from "../../../src/health/clock.ts";
import { HealthMonitor } from "../../../src/health/monitor.ts";
import { MemoryIpvsDriver } from "../../../src/ipvs/memory-driver.ts";
import { RecordingLogger } from "./fakes.ts";

/** A clock whose time only moves on advance(). */
class ManualClock implements MonitorClock {
  #now = 0;
  #timers = new Map<number, { at: number; callback: () => void }>();
  #next = 1;
  now(): number {
    return this.#now;
  }
  setTimer(callback: () => void, delayMs: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { at: this.#now + delayMs, callback });
    return id;
  }
  clearTimer(handle: unknown): void {
    this.#timers.delete(handle as number);
  }
  /** Move time forward, firing due timers in order. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      const due = [...this.#timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (due === undefined) break;
      this.#timers.delete(due[0]);
      this.#now = Math.max(this.#now, due[1].at);
      due[1].callback();
    }
    this.#now = end;
  }
}

/** A checker whose results the test scripts: each check takes the next one. */
function scripted(results: boolean[]): Checker {
  return {
    async check(): Promise<CheckResult> {
      const ok = results.shift() ?? true;
      return { ok, durationMs: 2, message: ok ? "connected" : "connection refused" };
    },
  };
}

/** Let the checker's promise and Gorb's queued update run. */
async function settle(gorb: Gorb): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
  await gorb.idle();
}

describe("Gorb with the real HealthMonitor", () => {
  test("down zeroes the weight, recovery ramps it back, delete stops the checks", async () => {
    const clock = new ManualClock();
    const results = [false, true, true];
    let monitor: HealthMonitor | null = null;
    const driver = new MemoryIpvsDriver();
    const gorb = new Gorb({
      driver,
      health: (onUpdate) => {
        monitor = new HealthMonitor({ onUpdate, clock, random: () => 0, checkerFor: () => scripted(results) });
        return monitor;
      },
      weightPolicy: { recoverySteps: 10 },
      logger: new RecordingLogger(),
      resolver: async () => [],
    });
    await gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await gorb.createBackend("web", "b1", { host: "10.1.0.1", pulse: { interval: "1s" } });
    const weight = () => driver.peek()[0]?.destinations[0]?.weight;
    expect(weight()).toBe(100);

    clock.advance(0); // first check (jitter 0): fails
    await settle(gorb);
    expect(weight()).toBe(0);
    expect((await gorb.getBackend("web", "b1")).metrics).toMatchObject({ status: 1, state: "down", health: 0 });

    clock.advance(1000); // passes: health 1/2 -> 50
    await settle(gorb);
    expect(weight()).toBe(50);

    clock.advance(1000); // passes: health 2/3 -> 66
    await settle(gorb);
    expect(weight()).toBe(66);
    expect((await gorb.getBackend("web", "b1")).metrics.state).toBe("up");

    await gorb.deleteBackend("web", "b1");
    expect((monitor as HealthMonitor | null)?.size).toBe(0);
    await gorb.close();
  });

  test("a check that cannot run is logged once when a run of them starts, and its end once; the weight stays", async () => {
    const clock = new ManualClock();
    const results: CheckResult[] = [
      { ok: false, durationMs: 1, message: "check error: exec /etc/gorb/checks/web for 10.1.0.1:80: cannot start: ENOENT", kind: "local-error", code: "ENOENT" },
      { ok: false, durationMs: 1, message: "check error: exec /etc/gorb/checks/web for 10.1.0.1:80: cannot start: ENOENT", kind: "local-error", code: "ENOENT" },
      { ok: true, durationMs: 1, message: "exit 0" },
    ];
    const log = new RecordingLogger();
    const driver = new MemoryIpvsDriver();
    const gorb = new Gorb({
      driver,
      health: (onUpdate, onCheckError) =>
        new HealthMonitor({
          onUpdate,
          onCheckError: (id, result) => onCheckError(id, result.message),
          clock,
          random: () => 0,
          checkerFor: () => ({ check: async () => results.shift() ?? { ok: true, durationMs: 1, message: "exit 0" } }),
        }),
      logger: log,
      resolver: async () => [],
    });
    await gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await gorb.createBackend("web", "b1", { host: "10.1.0.1", pulse: { interval: "1s" } });
    const about = () => log.lines.filter((l) => !l.startsWith("debug ") && l.includes('backend "b1" of service "web"'));
    clock.advance(0);
    await settle(gorb);
    clock.advance(1000);
    await settle(gorb);
    expect(about()).toEqual([
      'warn backend "b1" of service "web": check error: exec /etc/gorb/checks/web for 10.1.0.1:80: cannot start: ENOENT; its health check cannot run, so its health and weight do not follow the backend until it can',
    ]);
    expect(driver.peek()[0]?.destinations[0]?.weight).toBe(100);
    clock.advance(1000);
    await settle(gorb);
    expect(about().slice(1)).toEqual(['info backend "b1" of service "web": its health check runs again']);
    await gorb.close();
  });
});
