/**
 * Panic threshold (issue 15 #10): when more than panic_threshold percent of a service's backends would be
 * down at once, gorb keeps the weights of the ones it would drain, warns, publishes service.panic and shows it
 * in GET and /metrics; when the share falls back to the threshold, the down backends are drained.
 */
import { describe, expect, test } from "bun:test";
import { createApp } from "../../../src/api/app.ts";
import type { GorbEvent } from "../../../src/core/events.ts";
import { makeGorb } from "./fakes.ts";

async function fourBackends(threshold: number) {
  const stack = makeGorb();
  const { gorb } = stack;
  await gorb.createService("web", { host: "10.0.0.1", port: 80, panic_threshold: threshold });
  for (const i of [1, 2, 3, 4]) await gorb.createBackend("web", `b${i}`, { host: `10.1.0.${i}` });
  const events: GorbEvent[] = [];
  gorb.events.subscribe((e) => events.push(e));
  return { ...stack, events };
}

const weights = (stack: Awaited<ReturnType<typeof fourBackends>>) => stack.driver.peek()[0]!.destinations.map((d) => d.weight);

describe("panic threshold", () => {
  test("above the threshold the weights are kept; back at it, the down backends are drained", async () => {
    const stack = await fourBackends(50);
    const { gorb, health, logger, events } = stack;
    health.report("web", "b1", "down");
    health.report("web", "b2", "down");
    await gorb.idle();
    expect(weights(stack)).toEqual([0, 0, 100, 100]); // 2 of 4 = 50%: not above the threshold
    expect((await gorb.getService("web")).panic).toBe(false);

    health.report("web", "b3", "down"); // 3 of 4 = 75% > 50%: panic
    await gorb.idle();
    expect(weights(stack)).toEqual([0, 0, 100, 100]);
    expect((await gorb.getService("web")).panic).toBe(true);
    expect(logger.lines).toContain(
      'warn service "web" is in panic mode (3 of 4 backends down, threshold 50%): keeping the weights of the down backends',
    );
    expect(events.filter((e) => e.type === "service.panic").map((e) => e.data)).toEqual([
      { service: "web", down: 3, total: 4, threshold: 50, active: true },
    ]);
    const metrics = await (await createApp({ gorb, logger }).handle(new Request("http://gorb.test/metrics"))).text();
    expect(metrics).toContain('gorb_service_panic{name="web",host="10.0.0.1",port="80",protocol="tcp"} 1\n');

    health.report("web", "b3", "down"); // still in panic: still kept
    await gorb.idle();
    expect(weights(stack)).toEqual([0, 0, 100, 100]);

    health.report("web", "b1", "up", { samples: 1, samplesOk: 1 }); // 2 of 4 again: b3 is drained now
    await gorb.idle();
    expect(weights(stack)).toEqual([100, 0, 0, 100]);
    expect((await gorb.getService("web")).panic).toBe(false);
    expect(events.filter((e) => e.type === "service.panic").map((e) => e.data)).toEqual([
      { service: "web", down: 3, total: 4, threshold: 50, active: true },
      { service: "web", down: 2, total: 4, threshold: 50, active: false },
    ]);
  });

  test("threshold 0 (the default) is off: every down backend is drained", async () => {
    const stack = await fourBackends(0);
    for (const b of ["b1", "b2", "b3", "b4"]) stack.health.report("web", b, "down");
    await stack.gorb.idle();
    expect(weights(stack)).toEqual([0, 0, 0, 0]);
    expect(stack.events.some((e) => e.type === "service.panic")).toBe(false);
  });

  test("a PATCH can set it; an out-of-range value is a 400 naming the field", async () => {
    const { gorb } = makeGorb();
    await gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await gorb.updateService("web", { panic_threshold: 30 });
    await expect(gorb.updateService("web", { panic_threshold: 101 })).rejects.toThrow("panic_threshold: must be 0-100, got 101");
  });
});

describe("panic mode after an edit", () => {
  test("a threshold lowered to off, or new backends, end a panic: the down backends are drained and it is published", async () => {
    const stack = await fourBackends(50);
    const { gorb, health, events, logger } = stack;
    for (const b of ["b1", "b2", "b3"]) health.report("web", b, "down"); // one batch: 3 of 4 down at once, all kept
    await gorb.idle();
    expect(weights(stack)).toEqual([100, 100, 100, 100]);
    expect((await gorb.getService("web")).panic).toBe(true);

    // Two new backends: 3 of 6 down, not above 50%. A down backend's next failed check is quiet: only the edit
    // itself can end the panic.
    await gorb.createBackend("web", "b5", { host: "10.1.0.5" });
    await gorb.createBackend("web", "b6", { host: "10.1.0.6" });
    health.report("web", "b3", "down");
    await gorb.idle();
    expect(weights(stack)).toEqual([0, 0, 0, 100, 100, 100]);
    expect((await gorb.getService("web")).panic).toBe(false);
    expect(events.filter((e) => e.type === "service.panic").map((e) => e.data)).toEqual([
      { service: "web", down: 3, total: 4, threshold: 50, active: true },
      { service: "web", down: 3, total: 6, threshold: 50, active: false },
    ]);
    expect(logger.lines).toContain('info service "web" left panic mode (3 of 6 backends down, threshold 50%): draining the down backends');
  });

  test("a PATCH turning the threshold off ends a panic; one raising it back above the share starts one again", async () => {
    const stack = await fourBackends(50);
    const { gorb, health, events } = stack;
    for (const b of ["b1", "b2", "b3"]) health.report("web", b, "down");
    await gorb.idle();
    expect((await gorb.getService("web")).panic).toBe(true);

    await gorb.updateService("web", { panic_threshold: 0 });
    expect(weights(stack)).toEqual([0, 0, 0, 100]);
    expect((await gorb.getService("web")).panic).toBe(false);

    await gorb.updateService("web", { panic_threshold: 60 }); // 3 of 4 = 75% > 60%: panic again (nothing to keep)
    expect(weights(stack)).toEqual([0, 0, 0, 100]);
    expect((await gorb.getService("web")).panic).toBe(true);
    expect(events.filter((e) => e.type === "service.panic").map((e) => (e.data as { active: boolean }).active)).toEqual([true, false, true]);
  });

  test("a PATCH of a down backend whose weight panic mode keeps does not drain it: its weight follows the configured one", async () => {
    const stack = await fourBackends(50);
    const { gorb, health } = stack;
    for (const b of ["b1", "b2", "b3"]) health.report("web", b, "down");
    await gorb.idle();
    expect(weights(stack)).toEqual([100, 100, 100, 100]);

    await gorb.updateBackend("web", "b1", { slow_start: "4s" });
    await gorb.updateBackend("web", "b2", { weight: 50 });
    await gorb.updateBackend("web", "b3", { maintenance: true });
    expect(weights(stack)).toEqual([100, 50, 0, 100]);
    await gorb.updateBackend("web", "b3", { maintenance: false });
    expect(weights(stack)).toEqual([100, 50, 100, 100]);
    expect((await gorb.getService("web")).panic).toBe(true);
  });

  test("a PATCH of a recovering backend panic mode keeps leaves its partial weight, never above the configured one", async () => {
    const stack = await fourBackends(25);
    const { gorb, health } = stack;
    health.report("web", "b1", "down"); // 1 of 4 = 25%: drained
    await gorb.idle();
    health.report("web", "b1", "up", { samples: 2, samplesOk: 1 }); // recovering: 100 × 1/2
    await gorb.idle();
    health.report("web", "b1", "down");
    health.report("web", "b2", "down"); // 2 of 4 = 50% > 25%: panic keeps b1 at 50
    await gorb.idle();
    expect(weights(stack)).toEqual([50, 100, 100, 100]);

    await gorb.updateBackend("web", "b1", { slow_start: "4s" });
    expect(weights(stack)).toEqual([50, 100, 100, 100]);
    await gorb.updateBackend("web", "b1", { weight: 40 });
    expect(weights(stack)).toEqual([40, 100, 100, 100]);
  });

  test("an edit the kernel refuses changes nothing: the panic and its kept weights stay", async () => {
    const stack = await fourBackends(50);
    const { gorb, health, driver } = stack;
    for (const b of ["b1", "b2", "b3"]) health.report("web", b, "down");
    await gorb.idle();
    driver.failNext("update-destination", "ENOMEM");
    await expect(gorb.updateService("web", { panic_threshold: 0 })).rejects.toThrow();
    expect(weights(stack)).toEqual([100, 100, 100, 100]);
    expect((await gorb.getService("web")).panic).toBe(true);
  });
});
