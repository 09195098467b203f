/**
 * A health check that changes nothing costs nothing beyond the check: Gorb wired to the real HealthMonitor (hand-
 * driven clock, scripted checker) writes nothing to IPVS and publishes nothing for steady passes of an up backend
 * or steady failures of a down one, while GET still shows the live health; and a weight the kernel does not hold
 * (a failed write) is written again by the next check instead of being skipped.
 */
import { describe, expect, test } from "bun:test";
import { Gorb } from "../../../src/core/gorb.ts";
import { EventBus } from "../../../src/core/events.ts";
import type { CheckResult, Checker } from "../../../src/health/checker.ts";
import { HealthMonitor } from "../../../src/health/monitor.ts";
import { MemoryIpvsDriver } from "../../../src/ipvs/memory-driver.ts";
import { ManualClock } from "../health/_manual-clock.ts";
import { RecordingLogger } from "./fakes.ts";

/** A checker that answers each check at once with the next scripted result (true after the script). */
function scripted(results: boolean[]): Checker {
  const result = (ok: boolean): CheckResult => ({ ok, durationMs: 1, message: ok ? "connected" : "refused", kind: ok ? "pass" : "fail" });
  return {
    run(_target, done, released) {
      done(result(results.shift() ?? true));
      released();
      return () => {};
    },
    async check() {
      return result(results.shift() ?? true);
    },
  };
}

async function setup(results: boolean[]) {
  const clock = new ManualClock();
  const driver = new MemoryIpvsDriver();
  const events = new EventBus();
  const seen: string[] = [];
  events.subscribe((e) => seen.push(e.type));
  const gorb = new Gorb({
    driver,
    events,
    health: (onUpdate) => new HealthMonitor({ onUpdate, clock, random: () => 0, checkerFor: () => scripted(results) }),
    logger: new RecordingLogger(),
    resolver: async () => [],
  });
  await gorb.createService("web", { host: "10.0.0.1", port: 80 });
  await gorb.createBackend("web", "b1", { host: "10.1.0.1", pulse: { interval: "1s" } });
  const weight = () => driver.peek()[0]?.destinations[0]?.weight;
  /** Runs `n` checks (one a second) and lets Gorb handle their updates. */
  let first = true;
  const checks = async (n: number) => {
    for (let i = 0; i < n; i++) {
      await clock.advance(first ? 0 : 1000);
      first = false;
      await gorb.idle();
    }
  };
  return { gorb, driver, seen, weight, checks };
}

describe("quiet health updates", () => {
  test("steady passes of an up backend write nothing and publish nothing; GET shows the live health", async () => {
    const { gorb, driver, seen, weight, checks } = await setup([]);
    await checks(2); // first pass: unknown -> up (an event), the weight stays 100
    expect(weight()).toBe(100);
    driver.clearWrites();
    seen.length = 0;
    await checks(20);
    expect(driver.writes()).toEqual([]);
    expect(seen).toEqual([]);
    const live = (await gorb.getBackend("web", "b1")).metrics;
    expect(live).toMatchObject({ state: "up", health: 1 });
    await gorb.close();
  });

  test("steady failures of a down backend write nothing after the drain; the next pass is news again", async () => {
    const { gorb, driver, seen, weight, checks } = await setup([false, ...Array.from({ length: 20 }, () => false), true]);
    await checks(1); // unknown -> down: weight 0
    expect(weight()).toBe(0);
    driver.clearWrites();
    seen.length = 0;
    await checks(20);
    expect(driver.writes()).toEqual([]);
    expect(seen).toEqual([]);
    await checks(1); // a pass: up again, the ramp starts
    expect(weight()).toBeGreaterThan(0);
    expect(seen).toContain("backend.health");
    await gorb.close();
  });

  test("a weight the kernel does not hold (its write failed) is written by the next check, which is not quiet", async () => {
    const { gorb, driver, weight, checks } = await setup(Array.from({ length: 10 }, () => false));
    driver.failNext("update-destination", "ENOMEM");
    await checks(1); // unknown -> down: the write of weight 0 fails, the kernel keeps 100
    expect(weight()).toBe(100);
    await checks(1); // down again, same health: quiet but for the kernel's weight, so it is written now
    expect(weight()).toBe(0);
    driver.clearWrites();
    await checks(5);
    expect(driver.writes()).toEqual([]);
    await gorb.close();
  });

  test("a backend without a health check (pulse none) is up from its creation: its one check is quiet, no event, no log", async () => {
    const driver = new MemoryIpvsDriver();
    const events = new EventBus();
    const seen: string[] = [];
    events.subscribe((e) => seen.push(e.type));
    const logger = new RecordingLogger();
    const clock = new ManualClock();
    const gorb = new Gorb({ driver, events, health: (onUpdate) => new HealthMonitor({ onUpdate, clock }), logger, resolver: async () => [] });
    await gorb.createService("web", { host: "10.0.0.1", port: 80 });
    for (let i = 1; i <= 20; i++) await gorb.createBackend("web", `b${i}`, { host: `10.1.0.${i}`, weight: 7, pulse: { type: "none" } });
    // Each one's single check (run at once) reports what core recorded at the creation.
    await clock.advance(0);
    await gorb.idle();
    expect((await gorb.getBackend("web", "b20")).metrics).toMatchObject({ state: "up", health: 1, message: "no health check (type none)" });
    expect(seen.filter((t) => t !== "backend.created" && t !== "service.created")).toEqual([]);
    expect(logger.lines.filter((l) => l.includes(" is up"))).toEqual([]);
    expect(driver.peek()[0]?.destinations.map((d) => d.weight)).toEqual(Array.from({ length: 20 }, () => 7));
    // A probe given later starts the health history over: unknown until its first check.
    await gorb.updateBackend("web", "b1", { pulse: { type: "tcp", interval: "1m" } });
    expect((await gorb.getBackend("web", "b1")).metrics.state).toBe("unknown");
    await gorb.close();
  });

  test("the events say a backend's starting health and a new probe's: backend.created carries it, a probe change that moves it is a backend.health", async () => {
    const events = new EventBus();
    const seen: { type: string; data: unknown }[] = [];
    events.subscribe((e) => seen.push({ type: e.type, data: e.data }));
    const clock = new ManualClock();
    const gorb = new Gorb({ driver: new MemoryIpvsDriver(), events, health: (onUpdate) => new HealthMonitor({ onUpdate, clock }), logger: new RecordingLogger(), resolver: async () => [] });
    await gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await gorb.createBackend("web", "b1", { host: "10.1.0.1", pulse: { type: "none" } });
    await gorb.createBackend("web", "b2", { host: "10.1.0.2", pulse: { type: "tcp", interval: "1m" } });
    expect(seen.filter((e) => e.type === "backend.created").map((e) => e.data)).toMatchObject([
      { backend: "b1", health: "up" },
      { backend: "b2", health: "unknown" },
    ]);
    seen.length = 0;
    // A probe given to an up backend starts over at unknown; taken away, the backend is up at once.
    await gorb.updateBackend("web", "b1", { pulse: { type: "tcp", interval: "1m" } });
    await gorb.updateBackend("web", "b2", { pulse: { type: "none" } });
    // Only the timing changes: the history is kept, no health event.
    await gorb.updateBackend("web", "b1", { pulse: { type: "tcp", interval: "2m" } });
    expect(seen.filter((e) => e.type === "backend.health").map((e) => e.data)).toMatchObject([
      { backend: "b1", from: "up", to: "unknown" },
      { backend: "b2", from: "unknown", to: "up", message: "no health check (type none)" },
    ]);
    await gorb.close();
  });
});
