/**
 * The VIP controller with a hand-driven clock: hold-down before announcing, immediate withdrawal,
 * announce_min_healthy, several services on one VIP, events, shutdown. The announcer is a recording stand-in
 * (BIRD is tested in ./bird-announcer.test.ts and for real in test/kernel/bgp.test.ts).
 */
import { describe, expect, test } from "bun:test";
import type { Announcer, PrefixStatus } from "../../../src/bgp/announcer.ts";
import { VipController, describeStop, servicesSource, type AnnounceInput } from "../../../src/bgp/controller.ts";
import { EventBus, type GorbEvent } from "../../../src/core/events.ts";
import type { Gorb } from "../../../src/core/gorb.ts";
import { fieldsOf } from "../../../src/core/fields.ts";
import { MemoryIpvsDriver } from "../../../src/ipvs/memory-driver.ts";
import type { ApplyResult } from "../../../src/ipvs/driver.ts";
import type { IpvsOp } from "../../../src/ipvs/types.ts";
import { ManualClock } from "../health/_manual-clock.ts";
import { makeGorb } from "../core/fakes.ts";
import { MemoryStateStore } from "../core/memory-store.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

class RecordingAnnouncer implements Announcer {
  /** What the speaker has. */
  readonly set = new Set<string>();
  readonly wanted = new Set<string>();
  readonly calls: string[] = [];
  closed = false;
  /** While set, withdraw() resolves only once it settles: a speaker slow to take the change (BIRD busy or hung). */
  gate: Promise<void> | null = null;
  /** While set, the speaker refuses every change with this error (BIRD refusing its configuration) and keeps `set`. */
  refusing: string | null = null;
  #lastError: string | null = null;
  async announce(prefixes: readonly string[]) {
    for (const p of prefixes) this.wanted.add(p);
    this.calls.push(`announce ${prefixes.join(",")}`);
    this.#take();
  }
  async withdraw(prefixes: readonly string[]) {
    for (const p of prefixes) this.wanted.delete(p);
    this.calls.push(`withdraw ${prefixes.join(",")}`);
    this.#take();
    await this.gate;
  }
  /** The speaker is given the whole wanted set, as BIRD is (it takes it, or refuses it and keeps what it has). */
  #take() {
    this.#lastError = this.refusing;
    if (this.refusing !== null) return;
    this.set.clear();
    for (const p of this.wanted) this.set.add(p);
  }
  status(): PrefixStatus[] {
    return [...new Set([...this.set, ...this.wanted])].sort().map((prefix) => ({ prefix, wanted: this.wanted.has(prefix), confirmed: this.set.has(prefix), error: null }));
  }
  speaker() {
    return { kind: "test", reachable: true, version: null, lastError: this.#lastError };
  }
  /** What a previous run left announced: the speaker has it at start. */
  left: string[] = [];
  inherited() {
    for (const p of this.left) this.set.add(p);
    return this.left;
  }
  start() {}
  async close() {
    this.closed = true;
  }
}

function setup(initial: AnnounceInput[]) {
  let inputs = initial;
  const clock = new ManualClock();
  const announcer = new RecordingAnnouncer();
  const events = new EventBus();
  const seen: GorbEvent[] = [];
  events.subscribe((e) => seen.push(e));
  const controller = new VipController({ announcer, source: async () => inputs, events, clock, holdDownMs: 3000, recheckMs: 0, log: quiet });
  return {
    clock,
    announcer,
    controller,
    seen,
    set: async (next: AnnounceInput[]) => {
      inputs = next;
      await controller.evaluate();
    },
  };
}

const web = (healthy: number, minHealthy = 1): AnnounceInput => ({ id: "web", address: "203.0.113.10", minHealthy, healthy });

/** A controller following `gorb` on `events` (hold-down 3 s, hand-driven clock, no recheck: events only). */
function following(gorb: Gorb, events: EventBus) {
  const clock = new ManualClock();
  const announcer = new RecordingAnnouncer();
  const controller = new VipController({ announcer, source: servicesSource(gorb), events, clock, holdDownMs: 3000, recheckMs: 0, log: quiet });
  return { clock, announcer, controller };
}

/**
 * A controller following a Gorb (hold-down 3 s, hand-driven clock) that announces web's VIP 203.0.113.10: web with
 * backend b1, checked up, held down for 3 s.
 */
async function announcedThroughGorb(driver = new MemoryIpvsDriver()) {
  const events = new EventBus();
  const { gorb, health } = makeGorb({ events, driver });
  const { clock, announcer, controller } = following(gorb, events);
  await controller.start();
  await gorb.createService("web", { host: "203.0.113.10", port: 80 });
  await gorb.createBackend("web", "b1", { host: "10.0.0.1", port: 8080, pulse: { type: "http" } });
  health.report("web", "b1", "up");
  await clock.advance(3000);
  expect([...announcer.set]).toEqual(["203.0.113.10/32"]);
  return { gorb, health, clock, announcer, controller, driver };
}

/** A memory kernel whose batches wait, while `gate` is set, until it settles; `entered` resolves when one does. */
class GatedDriver extends MemoryIpvsDriver {
  gate: Promise<void> | null = null;
  #entered: (() => void) | null = null;
  entered(): Promise<void> {
    return new Promise((resolve) => (this.#entered = resolve));
  }
  override async apply(ops: readonly IpvsOp[]): Promise<ApplyResult> {
    this.#entered?.();
    await this.gate;
    return super.apply(ops);
  }
}

describe("VipController", () => {
  test("announces after the hold-down, not before; withdraws at once", async () => {
    const t = setup([web(1)]);
    await t.controller.start();
    expect(t.controller.status().vips[0]).toMatchObject({ vip: "203.0.113.10", state: "hold-down", healthy: true, wanted: false });
    await t.clock.advance(2999);
    expect(t.announcer.set.size).toBe(0);
    await t.clock.advance(1);
    expect([...t.announcer.set]).toEqual(["203.0.113.10/32"]);
    expect(t.controller.status().vips[0]).toMatchObject({ state: "announced", wanted: true, confirmed: true, services: ["web"] });

    await t.set([web(0)]);
    expect(t.announcer.set.size).toBe(0);
    expect(t.seen.map((e) => [e.type, e.data])).toEqual([
      ["bgp.announced", { vip: "203.0.113.10", prefix: "203.0.113.10/32", services: ["web"] }],
      ["bgp.withdrawn", { vip: "203.0.113.10", prefix: "203.0.113.10/32", reason: "unhealthy" }],
    ]);
  });

  test("a flapping service does not flap the route: each recovery restarts the hold-down", async () => {
    const t = setup([web(1)]);
    await t.controller.start();
    for (let i = 0; i < 5; i++) {
      await t.clock.advance(2000);
      await t.set([web(0)]);
      await t.clock.advance(500);
      await t.set([web(1)]);
    }
    expect(t.announcer.calls.filter((c) => c.startsWith("announce"))).toEqual([]);
    await t.clock.advance(3000);
    expect(t.announcer.calls.filter((c) => c.startsWith("announce"))).toEqual(["announce 203.0.113.10/32"]);
  });

  test("announce_min_healthy: 2 needs two healthy backends; 0 never announces", async () => {
    const t = setup([web(1, 2), { id: "dns", address: "203.0.113.53", minHealthy: 0, healthy: 5 }]);
    await t.controller.start();
    await t.clock.advance(10_000);
    expect(t.announcer.set.size).toBe(0);
    expect(t.controller.status().vips.map((v) => [v.vip, v.healthy])).toEqual([["203.0.113.10", false]]);
    await t.set([web(2, 2), { id: "dns", address: "203.0.113.53", minHealthy: 0, healthy: 5 }]);
    await t.clock.advance(3000);
    expect([...t.announcer.set]).toEqual(["203.0.113.10/32"]);
  });

  test("services sharing a VIP: announced only while every one is healthy; fwmark services are ignored", async () => {
    const https = (healthy: number): AnnounceInput => ({ id: "https", address: "203.0.113.10", minHealthy: 1, healthy });
    const fw: AnnounceInput = { id: "fw", address: "", minHealthy: 1, healthy: 1 };
    const t = setup([web(1), https(1), fw]);
    await t.controller.start();
    await t.clock.advance(3000);
    expect(t.controller.status().vips).toMatchObject([{ prefix: "203.0.113.10/32", services: ["https", "web"], state: "announced" }]);
    await t.set([web(1), https(0), fw]);
    expect(t.announcer.set.size).toBe(0);
  });

  test("a service not checked yet keeps an announced VIP until its checks say down; it keeps an unannounced one back", async () => {
    const https = (healthy: number, settingUp: boolean): AnnounceInput => ({ id: "https", address: "203.0.113.10", minHealthy: 1, healthy, settingUp });
    const t = setup([web(1)]);
    await t.controller.start();
    await t.clock.advance(3000);
    expect([...t.announcer.set]).toEqual(["203.0.113.10/32"]);
    // The same change on every node at once: withdrawing here would withdraw the VIP everywhere.
    await t.set([web(1), https(0, true)]);
    expect([...t.announcer.set]).toEqual(["203.0.113.10/32"]);
    expect(t.controller.status().vips).toMatchObject([{ services: ["https", "web"], healthy: false, state: "announced" }]);
    await t.set([web(1), https(0, false)]); // its checks failed
    expect(t.announcer.set.size).toBe(0);
    expect(t.seen.at(-1)).toMatchObject({ type: "bgp.withdrawn", data: { reason: "unhealthy" } });
    // Not announced: waiting for checks is not healthy, and no hold-down starts.
    await t.set([web(1), https(0, true)]);
    await t.clock.advance(10_000);
    expect(t.announcer.set.size).toBe(0);
    await t.set([web(1), https(1, false)]);
    await t.clock.advance(3000);
    expect([...t.announcer.set]).toEqual(["203.0.113.10/32"]);
  });

  test("a restart keeps what the previous run left announced while its services are healthy or not checked yet; the rest is withdrawn at start", async () => {
    const t = setup([
      { id: "web", address: "203.0.113.10", minHealthy: 1, healthy: 0, settingUp: true, backends: 2 },
      { id: "api", address: "203.0.113.20", minHealthy: 1, healthy: 0, settingUp: false, backends: 1 },
    ]);
    // Left announced by the previous run (--bgp-keep-on-exit): web's and api's VIPs, and one no service is on now.
    t.announcer.left = ["203.0.113.10/32", "203.0.113.20/32", "203.0.113.30/32"];
    await t.controller.start();
    expect([...t.announcer.set]).toEqual(["203.0.113.10/32"]);
    expect(t.announcer.calls.some((c) => c.startsWith("withdraw") && c.includes("203.0.113.10/32"))).toBe(false);
    expect(t.controller.status().vips).toMatchObject([{ vip: "203.0.113.10", state: "announced" }, { vip: "203.0.113.20", state: "withdrawn" }]);
    expect(t.seen.filter((e) => e.type === "bgp.withdrawn").map((e) => e.data)).toEqual([
      { vip: "203.0.113.20", prefix: "203.0.113.20/32", reason: "unhealthy" },
      { vip: "203.0.113.30", prefix: "203.0.113.30/32", reason: "deleted" },
    ]);
    // Its first checks fail: withdrawn then.
    await t.set([{ id: "web", address: "203.0.113.10", minHealthy: 1, healthy: 0, settingUp: false, backends: 2 }]);
    expect(t.announcer.set.size).toBe(0);
  });

  test("a speaker slow to take the withdrawal of inherited VIPs does not hold the start", async () => {
    const t = setup([{ id: "api", address: "203.0.113.20", minHealthy: 1, healthy: 0, settingUp: false, backends: 1 }]);
    t.announcer.left = ["203.0.113.20/32", "203.0.113.30/32"];
    let release = () => {};
    t.announcer.gate = new Promise<void>((resolve) => (release = resolve));
    await t.controller.start();
    expect(t.announcer.set.size).toBe(0);
    const stopping = t.controller.stop({ keep: true });
    release();
    await stopping;
    expect(t.announcer.closed).toBe(true);
  });

  test("through gorb: a restart with the previous run's VIPs left announced keeps them while the restored backends await their first check", async () => {
    const store = new MemoryStateStore();
    const driver = new MemoryIpvsDriver();
    const before = makeGorb({ store, driver });
    await before.gorb.createService("web", { host: "203.0.113.10", port: 80 });
    await before.gorb.createBackend("web", "b1", { host: "10.0.0.1", port: 8080, pulse: { type: "http" } });
    await before.gorb.close();
    const events = new EventBus();
    const { gorb, health } = makeGorb({ store, driver, events });
    await gorb.restore(store.load());
    const { clock, announcer, controller } = following(gorb, events);
    announcer.left = ["203.0.113.10/32"];
    await controller.start();
    expect([...announcer.set]).toEqual(["203.0.113.10/32"]);
    health.report("web", "b1", "up");
    await clock.advance(10_000);
    expect([...announcer.set]).toEqual(["203.0.113.10/32"]);
    expect(announcer.calls.filter((c) => c.startsWith("withdraw"))).toEqual([]);
    health.report("web", "b1", "down");
    await controller.evaluate();
    expect(announcer.set.size).toBe(0);
    await controller.stop({ keep: false });
    await gorb.close();
  });

  test("a withdrawal the speaker is slow to take holds back no other decision: a VIP turning unhealthy meanwhile is withdrawn at once, one in hold-down that turns unhealthy is not announced", async () => {
    const vip = (id: string, address: string, healthy: number): AnnounceInput => ({ id, address, minHealthy: 1, healthy });
    const t = setup([vip("a", "203.0.113.1", 1), vip("b", "203.0.113.2", 1)]);
    await t.controller.start();
    await t.clock.advance(3000);
    await t.set([vip("a", "203.0.113.1", 1), vip("b", "203.0.113.2", 1), vip("c", "203.0.113.3", 1)]);
    expect(t.controller.status().vips.map((v) => v.state)).toEqual(["announced", "announced", "hold-down"]);

    let release = () => {};
    t.announcer.gate = new Promise<void>((resolve) => (release = resolve));
    const first = t.set([vip("a", "203.0.113.1", 0), vip("b", "203.0.113.2", 1), vip("c", "203.0.113.3", 1)]);
    await t.clock.advance(0);
    const second = t.set([vip("a", "203.0.113.1", 0), vip("b", "203.0.113.2", 0), vip("c", "203.0.113.3", 0)]);
    await t.clock.advance(3000);
    expect(t.announcer.calls.slice(-2)).toEqual(["withdraw 203.0.113.1/32", "withdraw 203.0.113.2/32"]);
    expect(t.announcer.set.size).toBe(0);
    expect(t.controller.status().vips.map((v) => v.state)).toEqual(["withdrawn", "withdrawn", "withdrawn"]);

    release();
    await Promise.all([first, second]);
    expect(t.announcer.set.size).toBe(0);
  });

  test("IPv6 VIPs are /128; a deleted service's VIP is withdrawn with reason deleted", async () => {
    const v6: AnnounceInput = { id: "v6", address: "2001:db8::10", minHealthy: 1, healthy: 1 };
    const t = setup([v6]);
    await t.controller.start();
    await t.clock.advance(3000);
    expect([...t.announcer.set]).toEqual(["2001:db8::10/128"]);
    await t.set([]);
    expect(t.announcer.set.size).toBe(0);
    expect(t.seen.at(-1)).toMatchObject({ type: "bgp.withdrawn", data: { prefix: "2001:db8::10/128", reason: "deleted" } });
  });

  test("stop withdraws everything (reason shutdown) unless keep; a pending hold-down never fires afterwards", async () => {
    const t = setup([web(1), { id: "api", address: "203.0.113.20", minHealthy: 1, healthy: 1 }]);
    await t.controller.start();
    await t.clock.advance(3000);
    expect(t.announcer.set.size).toBe(2);
    await t.controller.stop({ keep: false });
    expect(t.announcer.set.size).toBe(0);
    expect(t.announcer.closed).toBe(true);

    const k = setup([web(1)]);
    await k.controller.start();
    await k.clock.advance(3000);
    await k.set([web(1), { id: "api", address: "203.0.113.20", minHealthy: 1, healthy: 1 }]);
    await k.controller.stop({ keep: true });
    await k.clock.advance(10_000);
    expect([...k.announcer.set]).toEqual(["203.0.113.10/32"]);
  });

  test("stop with keep leaves the speaker with what gorb last decided: a withdrawal it refused is tried once more", async () => {
    const api = { id: "api", address: "203.0.113.20", minHealthy: 1, healthy: 1 };
    const t = setup([web(1), api]);
    await t.controller.start();
    await t.clock.advance(3000);
    t.announcer.refusing = "BIRD 8002 bird.conf:3:1 syntax error";
    await t.set([web(0), api]); // web withdrawn; the speaker refuses the change and keeps it
    expect([...t.announcer.set].sort()).toEqual(["203.0.113.10/32", "203.0.113.20/32"]);

    t.announcer.refusing = null; // the operator fixed bird.conf
    const outcome = await t.controller.stop({ keep: true });
    expect([...t.announcer.set]).toEqual(["203.0.113.20/32"]);
    expect(outcome).toEqual({ confirmed: true, stillAnnounced: [], lastError: null });
    expect(describeStop(true, outcome)).toEqual({ level: "info", text: "BGP: VIPs left announced (--bgp-keep-on-exit)" });
  });

  test("stop with keep and a withdrawal the speaker still refuses: the outcome and the log line name the VIP it still has", async () => {
    const api = { id: "api", address: "203.0.113.20", minHealthy: 1, healthy: 1 };
    const t = setup([web(1), api]);
    await t.controller.start();
    await t.clock.advance(3000);
    t.announcer.refusing = "BIRD 8002 bird.conf:3:1 syntax error";
    await t.set([web(0), api]);
    const outcome = await t.controller.stop({ keep: true });
    expect(outcome).toEqual({ confirmed: false, stillAnnounced: ["203.0.113.10/32"], lastError: "BIRD 8002 bird.conf:3:1 syntax error" });
    expect(describeStop(true, outcome)).toEqual({
      level: "error",
      text: "BGP: VIPs left announced (--bgp-keep-on-exit), but BIRD did not take gorb's last decision (BIRD still has 203.0.113.10/32, which gorb withdrew): BIRD 8002 bird.conf:3:1 syntax error",
    });
    expect(t.announcer.closed).toBe(true);
  });

  test("follows gorb's event bus: health reports decide, announce_min_healthy set through the API", async () => {
    const events = new EventBus();
    const { gorb, health } = makeGorb({ events });
    const clock = new ManualClock();
    const announcer = new RecordingAnnouncer();
    const controller = new VipController({
      announcer,
      source: servicesSource(gorb),
      events,
      clock,
      holdDownMs: 3000,
      recheckMs: 0,
      log: quiet,
    });
    await controller.start();
    await gorb.createService("web", { host: "203.0.113.10", port: 80, announce_min_healthy: 2 });
    await gorb.createBackend("web", "b1", { host: "10.0.0.1", port: 8080 });
    await gorb.createBackend("web", "b2", { host: "10.0.0.2", port: 8080 });
    health.report("web", "b1", "up");
    await clock.advance(3000);
    expect(controller.status().vips).toMatchObject([{ healthy: false, state: "withdrawn" }]);
    health.report("web", "b2", "up");
    await clock.advance(3000);
    expect([...announcer.set]).toEqual(["203.0.113.10/32"]);
    health.report("web", "b2", "down");
    await clock.advance(0);
    expect(announcer.set.size).toBe(0);
    await gorb.updateService("web", { announce_min_healthy: 1 });
    await clock.advance(3000);
    expect([...announcer.set]).toEqual(["203.0.113.10/32"]);
    await controller.stop({ keep: false });
    await gorb.close();
  });

  test("through gorb: a new service on an announced VIP waits for its first checks; unchecked means not checked yet, in service", async () => {
    const { gorb, health, clock, announcer, controller } = await announcedThroughGorb();
    // A GORB client's order: the service, then its backends; the controller looks in between.
    await gorb.createService("https", { host: "203.0.113.10", port: 443 });
    await clock.advance(0);
    expect([...announcer.set]).toEqual(["203.0.113.10/32"]);
    await gorb.createBackend("https", "h1", { host: "10.0.0.1", port: 8443, pulse: { type: "tcp" } });
    await clock.advance(0);
    expect([...announcer.set]).toEqual(["203.0.113.10/32"]);
    health.report("https", "h1", "down");
    await clock.advance(0);
    expect(announcer.set.size).toBe(0);
    // A backend in maintenance, not checked yet, will not serve once checked: it keeps nothing announced.
    await gorb.deleteService("https");
    await clock.advance(3000);
    expect([...announcer.set]).toEqual(["203.0.113.10/32"]);
    await gorb.createService("https", { host: "203.0.113.10", port: 443 });
    await gorb.createBackend("https", "h1", { host: "10.0.0.1", port: 8443, pulse: { type: "tcp" }, maintenance: true });
    await clock.advance(0);
    expect(announcer.set.size).toBe(0);
    await controller.stop({ keep: false });
    await gorb.close();
  });

  test("through gorb: a service whose last backend is deleted is not one being set up: its announced VIP is withdrawn at once; a service created again is", async () => {
    const { gorb, health, clock, announcer, controller } = await announcedThroughGorb();
    // The operator takes the service out of this node: nothing is left to serve the VIP.
    await gorb.deleteBackend("web", "b1");
    await clock.advance(0);
    expect(announcer.set.size).toBe(0);
    expect(controller.status().vips).toMatchObject([{ services: ["web"], healthy: false, state: "withdrawn" }]);

    await gorb.createBackend("web", "b1", { host: "10.0.0.1", port: 8080, pulse: { type: "http" } });
    await gorb.createService("https", { host: "203.0.113.10", port: 443 });
    await gorb.createBackend("https", "h1", { host: "10.0.0.1", port: 8443, pulse: { type: "tcp" } });
    health.report("web", "b1", "up");
    health.report("https", "h1", "up");
    await clock.advance(3000);
    expect([...announcer.set]).toEqual(["203.0.113.10/32"]);
    // Deleted and created again (an apply that changes what identifies it): a new service, still being set up.
    await gorb.deleteService("https");
    await gorb.createService("https", { host: "203.0.113.10", port: 443 });
    await clock.advance(0);
    expect([...announcer.set]).toEqual(["203.0.113.10/32"]);
    expect(controller.status().vips).toMatchObject([{ services: ["https", "web"], healthy: false, state: "announced" }]);
    await controller.stop({ keep: false });
    await gorb.close();
  });

  test("through gorb: a service the kernel refused at restore is not announced (its backends being up); the reconcile that adds it is", async () => {
    const store = new MemoryStateStore();
    const before = makeGorb({ store });
    await before.gorb.createService("web", { host: "203.0.113.10", port: 80 });
    await before.gorb.createBackend("web", "b1", { host: "10.0.0.1", port: 8080, pulse: { type: "none" } });
    await before.gorb.createService("api", { host: "203.0.113.20", port: 80 });
    await before.gorb.createBackend("api", "b1", { host: "10.0.0.2", port: 8080, pulse: { type: "none" } });
    await before.gorb.close();
    // The host rebooted; at restore the kernel refuses the first service add ("web").
    const events = new EventBus();
    const driver = new MemoryIpvsDriver();
    const { gorb } = makeGorb({ store, driver, events });
    driver.failNext("add-service", "ENOMEM");
    await gorb.restore(store.load());
    const { clock, announcer, controller } = following(gorb, events);
    await controller.start();
    await clock.advance(3000);
    expect([...announcer.set]).toEqual(["203.0.113.20/32"]);
    expect(controller.status().vips).toMatchObject([
      { vip: "203.0.113.10", services: ["web"], healthy: false, state: "withdrawn" },
      { vip: "203.0.113.20", healthy: true, state: "announced" },
    ]);
    // The reconcile's repair adds it (its event starts the hold-down: there is no recheck here).
    await gorb.reconcile();
    await clock.advance(3000);
    expect([...announcer.set].sort()).toEqual(["203.0.113.10/32", "203.0.113.20/32"]);
    await controller.stop({ keep: false });
    await gorb.close();
  });

  test("through gorb: a service the kernel lost and a reconcile cannot put back withdraws its VIP at once; the one that puts it back announces it", async () => {
    const { gorb, clock, announcer, controller, driver } = await announcedThroughGorb();
    // ipvsadm -C behind gorb's back, and the kernel refuses the repair: its backend still answers its checks.
    await driver.flush();
    driver.failNext("add-service", "ENOMEM");
    expect(new Set((await gorb.reconcile()).repairs.map((r) => `${r.service} ${r.status}`))).toEqual(new Set(["web failed"]));
    await clock.advance(0);
    expect(announcer.set.size).toBe(0);
    expect(controller.status().vips).toMatchObject([{ services: ["web"], healthy: false, state: "withdrawn" }]);
    await gorb.reconcile();
    await clock.advance(3000);
    expect([...announcer.set]).toEqual(["203.0.113.10/32"]);
    await controller.stop({ keep: false });
    await gorb.close();
  });

  test("through gorb: a service whose creation is being written (not in the kernel yet) does not withdraw an announced VIP", async () => {
    const driver = new GatedDriver();
    const { gorb, clock, announcer, controller } = await announcedThroughGorb(driver);
    let open = () => {};
    driver.gate = new Promise((resolve) => (open = resolve));
    const entered = driver.entered();
    // An apply adds a port to the announced VIP with a backend that needs no check: healthy as soon as it is written.
    const applying = gorb.apply([
      {
        id: "https",
        fields: fieldsOf({ host: "203.0.113.10", port: 443 }),
        backends: [{ id: "h1", fields: fieldsOf({ host: "10.0.0.1", port: 8443, pulse: { type: "none" } }) }],
      },
    ]);
    await entered;
    // Read between the desired state's change and the kernel's: the new service is there, not in the kernel.
    expect((await gorb.listServicesDetail({ counters: false })).map((s) => [s.id, s.in_kernel])).toEqual([
      ["https", false],
      ["web", true],
    ]);
    await controller.evaluate();
    expect([...announcer.set]).toEqual(["203.0.113.10/32"]);
    open();
    expect((await applying).ok).toBe(true);
    await clock.advance(3000);
    expect([...announcer.set]).toEqual(["203.0.113.10/32"]);
    expect(controller.status().vips).toMatchObject([{ services: ["https", "web"], healthy: true, state: "announced" }]);
    await controller.stop({ keep: false });
    await gorb.close();
  });

  test("decides from gorb's health without reading the IPVS table (a dump per service) on each event and recheck", async () => {
    const events = new EventBus();
    const { gorb, health, driver } = makeGorb({ events });
    let snapshots = 0;
    const snapshot = driver.snapshot.bind(driver);
    driver.snapshot = () => {
      snapshots++;
      return snapshot();
    };
    const clock = new ManualClock();
    const announcer = new RecordingAnnouncer();
    const controller = new VipController({ announcer, source: servicesSource(gorb), events, clock, holdDownMs: 3000, recheckMs: 5000, log: quiet });
    await controller.start();
    await gorb.createService("web", { host: "203.0.113.10", port: 80 });
    await gorb.createBackend("web", "b1", { host: "10.0.0.1", port: 8080 });
    health.report("web", "b1", "up");
    await clock.advance(5000);
    expect([...announcer.set]).toEqual(["203.0.113.10/32"]);
    health.report("web", "b1", "down");
    await clock.advance(0);
    expect(announcer.set.size).toBe(0);
    expect(snapshots).toBe(0);
    await controller.stop({ keep: false });
    await gorb.close();
  });
});
