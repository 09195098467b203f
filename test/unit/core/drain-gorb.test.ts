/**
 * Drains and maintenance through Gorb, on the in-memory driver. The host has no IPVS, so the connection
 * counts a draining backend reports come from a stand-in driver whose counts the test sets (`conns`); the
 * kernel test (test/kernel/drain.test.ts) drains real TCP connections.
 */
import { describe, expect, test } from "bun:test";
import type { EventPayloads, GorbEvent } from "../../../src/core/events.ts";
import { NotFoundError, ValidationError } from "../../../src/core/errors.ts";
import { fieldsOf } from "../../../src/core/fields.ts";
import type { DeclaredService } from "../../../src/core/plan.ts";
import { MemoryIpvsDriver } from "../../../src/ipvs/memory-driver.ts";
import { ConnsDriver, makeGorb, type TestStack } from "./fakes.ts";
import { MemoryStateStore } from "./memory-store.ts";


type DrainPhase = EventPayloads["backend.drain"]["phase"];

/** Resolves with the first `backend.drain` event of `phase` for `backend` published from now on. */
function drainEvent(stack: TestStack, backend: string, phase: DrainPhase): Promise<EventPayloads["backend.drain"]> {
  return new Promise((resolve) => {
    const sub = stack.gorb.events.subscribe((event: GorbEvent) => {
      if (event.type !== "backend.drain" || event.data.backend !== backend || event.data.phase !== phase) return;
      sub.unsubscribe();
      resolve(event.data);
    });
  });
}

function weights(driver: MemoryIpvsDriver): Record<string, number> {
  return Object.fromEntries(driver.peek().flatMap((s) => s.destinations.map((d) => [`${d.address}:${d.port}`, d.weight])));
}

const WEB = { host: "10.0.0.1", port: 80 };

async function stack(options: { now?: () => number; store?: MemoryStateStore; protocol?: string } = {}) {
  const driver = new ConnsDriver();
  const s = makeGorb({ driver, drainPollMs: 5, ...(options.now ? { now: options.now } : {}), ...(options.store ? { store: options.store } : {}) });
  await s.gorb.createService("web", { ...WEB, ...(options.protocol ? { protocol: options.protocol } : {}) });
  await s.gorb.createBackend("web", "b1", { host: "10.1.0.1", pulse: { type: "tcp", interval: "1s" } });
  await s.gorb.createBackend("web", "b2", { host: "10.1.0.2", pulse: { type: "tcp", interval: "1s" } });
  return { ...s, driver };
}

describe("drain", () => {
  test("weight 0 at once, health cannot undo it, progress as connections end, removed at zero", async () => {
    const s = await stack();
    s.driver.conns.set("10.1.0.1:80", { active: 2, inactive: 1 });
    const progress = drainEvent(s, "b1", "progress");
    const view = await s.gorb.drainBackend("web", "b1", { timeout: "1h" });
    expect(view).toMatchObject({ state: "draining", then: "remove", node: null });
    expect(weights(s.driver)).toEqual({ "10.1.0.1:80": 0, "10.1.0.2:80": 100 });
    expect(await progress).toMatchObject({ active: 2, inactive: 1, then: "remove" });

    s.health.report("web", "b1", "up", { consecutiveOk: 20 });
    await s.gorb.idle();
    expect(weights(s.driver)["10.1.0.1:80"]).toBe(0);
    const info = await s.gorb.getBackend("web", "b1");
    expect(info.effective_weight).toBe(0);
    expect(info.drain).toMatchObject({ state: "draining", then: "remove" });
    expect(info.active_conns).toBe(2);

    const drained = drainEvent(s, "b1", "drained");
    s.driver.conns.set("10.1.0.1:80", { active: 0, inactive: 0 });
    expect(await drained).toMatchObject({ active: 0, inactive: 0 });
    await s.gorb.idle();
    expect(weights(s.driver)).toEqual({ "10.1.0.2:80": 100 });
    expect(await s.gorb.getService("web")).toMatchObject({ backends: ["b2"] });
  });

  test("the deadline removes it with connections left", async () => {
    let now = Date.parse("2026-12-02T12:00:00Z");
    const s = await stack({ now: () => now });
    s.driver.conns.set("10.1.0.1:80", { active: 1, inactive: 0 });
    const started = drainEvent(s, "b1", "progress");
    await s.gorb.drainBackend("web", "b1", { timeout: "30s" });
    await started;
    const timeout = drainEvent(s, "b1", "timeout");
    now += 30_000;
    expect(await timeout).toMatchObject({ active: 1, inactive: 0, then: "remove" });
    await s.gorb.idle();
    expect(weights(s.driver)).toEqual({ "10.1.0.2:80": 100 });
  });

  test("then keep: held at weight 0 after the drain; undrain brings health's weight back", async () => {
    const s = await stack();
    const drained = drainEvent(s, "b1", "drained");
    await s.gorb.drainBackend("web", "b1", { then: "keep" });
    await drained;
    await s.gorb.idle();
    expect((await s.gorb.getBackend("web", "b1")).drain).toMatchObject({ state: "drained", then: "keep", seconds_left: 0 });
    s.health.report("web", "b1", "up");
    await s.gorb.idle();
    expect(weights(s.driver)["10.1.0.1:80"]).toBe(0);
    const cancelled = drainEvent(s, "b1", "cancelled");
    await s.gorb.undrainBackend("web", "b1");
    await cancelled;
    expect(weights(s.driver)["10.1.0.1:80"]).toBe(100);
    expect((await s.gorb.getBackend("web", "b1")).drain).toBeNull();
    await s.gorb.undrainBackend("web", "b1"); // nothing to cancel: no error
  });

  test("a UDP service's drain ends at once", async () => {
    const s = await stack({ protocol: "udp" });
    s.driver.conns.set("10.1.0.1:80", { active: 0, inactive: 5 });
    const drained = drainEvent(s, "b1", "drained");
    await s.gorb.drainBackend("web", "b1", {});
    await drained;
    await s.gorb.idle();
    expect(weights(s.driver)).toEqual({ "10.1.0.2:80": 100 });
  });

  test("bad input is a 400 naming the field; an unknown backend is a 404; nothing changes", async () => {
    const s = await stack();
    await expect(s.gorb.drainBackend("web", "b1", { timeout: "soon" })).rejects.toThrow(ValidationError);
    await expect(s.gorb.drainBackend("web", "b1", { then: "explode" })).rejects.toThrow("then:");
    await expect(s.gorb.drainBackend("web", "nope", {})).rejects.toThrow(NotFoundError);
    await expect(s.gorb.drainBackend("nope", "b1", {})).rejects.toThrow(NotFoundError);
    await expect(s.gorb.undrainBackend("web", "nope")).rejects.toThrow(NotFoundError);
    expect(weights(s.driver)).toEqual({ "10.1.0.1:80": 100, "10.1.0.2:80": 100 });
  });

  test("a drain survives a restart: saved with its absolute deadline, weight 0 restored, then it carries on", async () => {
    const store = new MemoryStateStore();
    const s = await stack({ store });
    s.driver.conns.set("10.1.0.1:80", { active: 1, inactive: 0 });
    const view = await s.gorb.drainBackend("web", "b1", { timeout: "10m", then: "remove" });
    expect(store.backends.get("web/b1")?.drain).toMatchObject({ then: "remove", phase: "draining" });
    await s.gorb.close();

    const driver = new ConnsDriver();
    driver.conns.set("10.1.0.1:80", { active: 1, inactive: 0 });
    const again = makeGorb({ driver, drainPollMs: 5, store });
    const progress = drainEvent(again, "b1", "progress");
    await again.gorb.restore(store.load());
    expect(weights(driver)).toEqual({ "10.1.0.1:80": 0, "10.1.0.2:80": 100 });
    expect((await again.gorb.getBackend("web", "b1")).drain?.deadline).toBe(view.deadline);
    await progress;
    const drained = drainEvent(again, "b1", "drained");
    driver.conns.set("10.1.0.1:80", { active: 0, inactive: 0 });
    await drained;
    await again.gorb.idle();
    expect(weights(driver)).toEqual({ "10.1.0.2:80": 100 });
    expect(store.backends.has("web/b1")).toBe(false);
    await again.gorb.close();
  });
});

describe("an apply leaves drains alone", () => {
  test("a service the file re-creates (a new protocol) re-adds its drained backends still drained, a held one held", async () => {
    const driver = new ConnsDriver();
    const s = makeGorb({ driver, drainPollMs: 5 });
    const declared = (protocol: string): DeclaredService[] => [
      {
        id: "web",
        fields: fieldsOf({ ...WEB, protocol }),
        backends: [
          { id: "b1", fields: fieldsOf({ host: "10.1.0.1" }) },
          { id: "b2", fields: fieldsOf({ host: "10.1.0.2" }) },
        ],
      },
    ];
    await s.gorb.apply(declared("tcp"));
    await s.gorb.createBackend("web", "b3", { host: "10.1.0.3" }); // over the API: kept by the apply
    const held = drainEvent(s, "b1", "drained");
    await s.gorb.drainBackend("web", "b1", { then: "keep" });
    await held;
    driver.conns.set("10.1.0.3:80", { active: 1, inactive: 0 });
    const watched = drainEvent(s, "b3", "progress");
    await s.gorb.drainBackend("web", "b3", { timeout: "1h", then: "keep" });
    await watched;

    const report = await s.gorb.apply(declared("sctp"));
    expect(report.changes.filter((c) => c.backend !== null).map((c) => `${c.backend} ${c.status} ${c.details.join(" ")}`)).toEqual([
      "b1 done 10.1.0.1:80, nat, weight 100; re-added to the re-created service; its drain goes on (drained)",
      "b2 done 10.1.0.2:80, nat, weight 100; re-added to the re-created service",
      "b3 done 10.1.0.3:80, created over the API; re-added to the re-created service; its drain goes on (draining)",
    ]);
    expect(weights(driver)).toEqual({ "10.1.0.1:80": 0, "10.1.0.2:80": 100, "10.1.0.3:80": 0 });
    expect((await s.gorb.getBackend("web", "b1")).drain).toMatchObject({ state: "drained", then: "keep" });
    expect((await s.gorb.getBackend("web", "b3")).drain).toMatchObject({ state: "draining", then: "keep" });
    await s.gorb.close();
  });
});

describe("restart with an override", () => {
  test("a kept drain and maintenance survive a restart; ending them gives back the configured weight at once", async () => {
    const store = new MemoryStateStore();
    const s = await stack({ store });
    const held = drainEvent(s, "b1", "drained");
    await s.gorb.drainBackend("web", "b1", { then: "keep" });
    await held;
    await s.gorb.updateBackend("web", "b2", { maintenance: true });
    await s.gorb.close();

    const driver = new ConnsDriver();
    const again = makeGorb({ driver, drainPollMs: 5, store });
    await again.gorb.restore(store.load());
    expect(weights(driver)).toEqual({ "10.1.0.1:80": 0, "10.1.0.2:80": 0 });
    expect((await again.gorb.getBackend("web", "b1")).drain).toMatchObject({ state: "drained" });
    await again.gorb.undrainBackend("web", "b1");
    await again.gorb.updateBackend("web", "b2", { maintenance: false });
    expect(weights(driver)).toEqual({ "10.1.0.1:80": 100, "10.1.0.2:80": 100 });
    await again.gorb.close();
  });
});

describe("maintenance", () => {
  test("weight 0 while on, whatever health says; checks keep running; off restores health's weight", async () => {
    const s = await stack();
    const events: string[] = [];
    s.gorb.events.subscribe((e) => {
      if (e.type === "backend.maintenance") events.push(`${e.data.backend} ${e.data.on}`);
    });
    await s.gorb.updateBackend("web", "b1", { maintenance: true });
    expect(weights(s.driver)["10.1.0.1:80"]).toBe(0);
    for (let i = 0; i < 3; i++) s.health.report("web", "b1", "up", { consecutiveOk: 10 + i });
    await s.gorb.idle();
    expect(weights(s.driver)["10.1.0.1:80"]).toBe(0);
    const info = await s.gorb.getBackend("web", "b1");
    expect(info.options.maintenance).toBe(true);
    expect(info.metrics.state).toBe("up");
    expect(s.health.target("web", "b1")).toBeDefined();
    await s.gorb.updateBackend("web", "b1", { maintenance: false });
    expect(weights(s.driver)["10.1.0.1:80"]).toBe(100);
    expect(events).toEqual(["b1 true", "b1 false"]);
    await expect(s.gorb.updateBackend("web", "b1", { maintenance: "yes" })).rejects.toThrow("maintenance:");
  });

  test("a backend created in maintenance starts at weight 0", async () => {
    const s = await stack();
    await s.gorb.createBackend("web", "b3", { host: "10.1.0.3", maintenance: true });
    expect(weights(s.driver)["10.1.0.3:80"]).toBe(0);
  });
});

describe("sh and mh fallback", () => {
  test("gorb sets the fallback flag on sh and mh services unless hash_fallback is false", async () => {
    const s = makeGorb();
    await s.gorb.createService("sh", { host: "10.0.0.2", port: 80, method: "sh" });
    await s.gorb.createService("mh", { host: "10.0.0.3", port: 80, method: "mh", flags: "mh-port" });
    await s.gorb.createService("plain", { host: "10.0.0.4", port: 80, method: "sh", hash_fallback: false });
    await s.gorb.createService("rr", { host: "10.0.0.5", port: 80, method: "rr" });
    const flags = Object.fromEntries(s.driver.peek().map((e) => ["address" in e.service.key ? e.service.key.address : "", e.service.flags]));
    expect(flags["10.0.0.2"]).toMatchObject({ sched1: true, sched2: false });
    expect(flags["10.0.0.3"]).toMatchObject({ sched1: true, sched2: true });
    expect(flags["10.0.0.4"]).toMatchObject({ sched1: false });
    expect(flags["10.0.0.5"]).toMatchObject({ sched1: false });
    expect((await s.gorb.getService("sh")).options).toMatchObject({ flags: "", hash_fallback: true });
  });
});
