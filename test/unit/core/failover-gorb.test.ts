/**
 * Failover (issue 12 part B) through Gorb and the REST API: the sorry server switches in and out through the
 * reconciler in the documented order, survives a reconcile and a restart in sorry mode, is cleaned up with the
 * service or when unset; quorum transitions publish service.quorum and run the hooks with their environment;
 * slow start ramps a new backend with time (a hand-driven clock, no sleeps); bad fields are 400s naming them.
 */
import { describe, expect, test } from "bun:test";
import { createApp } from "../../../src/api/app.ts";
import type { GorbEvent } from "../../../src/core/events.ts";
import type { GorbOptions } from "../../../src/core/gorb-options.ts";
import type { ApplyResult } from "../../../src/ipvs/driver.ts";
import { MemoryIpvsDriver } from "../../../src/ipvs/memory-driver.ts";
import type { IpvsOp } from "../../../src/ipvs/types.ts";
import { ManualClock } from "../health/_manual-clock.ts";
import { makeGorb } from "./fakes.ts";
import { MemoryStateStore } from "./memory-store.ts";

const SORRY = { host: "10.9.0.1", port: 8080 };
const HOOK = "/etc/gorb/hooks/page.sh";

function stack(overrides: Partial<GorbOptions> = {}) {
  const hooks: { program: string; env: Readonly<Record<string, string>> }[] = [];
  const s = makeGorb({ hooks: (program, env) => hooks.push({ program, env }), ...overrides });
  const events: GorbEvent[] = [];
  s.gorb.events.subscribe((e) => events.push(e));
  return { ...s, hooks, events };
}

type Stack = ReturnType<typeof stack>;

const dests = (s: Stack) =>
  (s.driver.peek()[0]?.destinations ?? []).map((d) => `${d.address}:${d.port} ${d.weight}`).sort();
const writes = (s: Stack) =>
  s.driver.writes().map((w) => `${w.op}${"destination" in w ? ` ${w.destination.address}${"weight" in w.destination ? ` ${w.destination.weight}` : ""}` : ""}`);
const quorumEvents = (s: Stack) => s.events.filter((e) => e.type === "service.quorum").map((e) => e.data);

async function twoBackends(body: Record<string, unknown>, overrides: Partial<GorbOptions> = {}) {
  const s = stack(overrides);
  await s.gorb.createService("web", { host: "10.0.0.1", port: 80, ...body });
  await s.gorb.createBackend("web", "b1", { host: "10.1.0.1" });
  await s.gorb.createBackend("web", "b2", { host: "10.1.0.2" });
  for (const b of ["b1", "b2"]) s.health.report("web", b, "up");
  await s.gorb.idle();
  s.driver.clearWrites();
  s.events.length = 0;
  s.hooks.length = 0;
  return s;
}

describe("sorry server", () => {
  test("every backend down: the sorry server is added before the backends drain; one back: weights first, then it goes", async () => {
    const s = await twoBackends({ sorry_server: SORRY, quorum_up: HOOK, quorum_down: HOOK });
    s.health.report("web", "b1", "down");
    await s.gorb.idle();
    expect(dests(s)).toEqual(["10.1.0.1:80 0", "10.1.0.2:80 100"]);
    expect(quorumEvents(s)).toEqual([]);

    s.health.report("web", "b2", "down");
    await s.gorb.idle();
    expect(writes(s).slice(1)).toEqual(["add-destination 10.9.0.1 1", "update-destination 10.1.0.2 0"]);
    expect(dests(s)).toEqual(["10.1.0.1:80 0", "10.1.0.2:80 0", "10.9.0.1:8080 1"]);
    expect(quorumEvents(s)).toEqual([{ service: "web", up: false, healthy: 0, quorum: 1, hysteresis: 0, sorry: true }]);
    expect(s.logger.lines).toContain('warn service "web" is down (0 healthy backend(s), quorum 1, hysteresis 0); its sorry server serves');
    expect(await s.gorb.getService("web")).toMatchObject({ quorum_up: false, sorry: true, healthy: 0, backends: ["b1", "b2"] });
    // Not a backend: GET lists b1 and b2 only, and no backend.weight event names it.
    expect(s.events.filter((e) => e.type === "backend.weight").map((e) => (e.data as { backend: string }).backend)).toEqual(["b1", "b2"]);

    s.driver.clearWrites();
    s.health.report("web", "b1", "up");
    await s.gorb.idle();
    expect(writes(s)).toEqual(["update-destination 10.1.0.1 100", "delete-destination 10.9.0.1"]);
    expect(dests(s)).toEqual(["10.1.0.1:80 100", "10.1.0.2:80 0"]);
    expect(quorumEvents(s).at(-1)).toEqual({ service: "web", up: true, healthy: 1, quorum: 1, hysteresis: 0, sorry: false });
    expect(s.hooks.map((h) => [h.program, h.env.GORB_STATE, h.env.GORB_SERVICE, h.env.GORB_SORRY, h.env.GORB_VIP, h.env.GORB_PORT])).toEqual([
      [HOOK, "down", "web", "1", "10.0.0.1", "80"],
      [HOOK, "up", "web", "0", "10.0.0.1", "80"],
    ]);
    const metrics = await (await createApp({ gorb: s.gorb, logger: s.logger }).handle(new Request("http://gorb.test/metrics"))).text();
    expect(metrics).toContain('gorb_service_quorum_up{name="web",host="10.0.0.1",port="80",protocol="tcp"} 1\n');
    expect(metrics).toContain('gorb_service_sorry_active{name="web",host="10.0.0.1",port="80",protocol="tcp"} 0\n');
  });

  test("hooks without quorum or sorry server run as keepalived's do (quorum 1): down when the last backend fails, up when one is back", async () => {
    const s = await twoBackends({ quorum_up: HOOK, quorum_down: HOOK });
    for (const b of ["b1", "b2"]) s.health.report("web", b, "down");
    await s.gorb.idle();
    expect(quorumEvents(s)).toEqual([{ service: "web", up: false, healthy: 0, quorum: 1, hysteresis: 0, sorry: false }]);
    expect(await s.gorb.getService("web")).toMatchObject({ quorum_up: false, sorry: false });
    // No sorry server: the backends keep the weights their health gives them.
    expect(dests(s)).toEqual(["10.1.0.1:80 0", "10.1.0.2:80 0"]);
    s.health.report("web", "b1", "up");
    await s.gorb.idle();
    expect(s.hooks.map((h) => [h.program, h.env.GORB_STATE, h.env.GORB_QUORUM, h.env.GORB_SORRY])).toEqual([
      [HOOK, "down", "1", "0"],
      [HOOK, "up", "1", "0"],
    ]);
  });

  test("a restart while a service without a sorry server is down (its backends drained by failed checks) keeps it down: no second quorum_down; quorum_up once they are back", async () => {
    const store = new MemoryStateStore();
    const s = await twoBackends({ quorum: 2, quorum_up: HOOK, quorum_down: HOOK }, { store });
    for (const b of ["b1", "b2"]) s.health.report("web", b, "down");
    await s.gorb.idle();
    expect(s.hooks.map((h) => h.env.GORB_STATE)).toEqual(["down"]);
    await s.gorb.close();

    const again = stack({ driver: s.driver, store });
    await again.gorb.restore(store.load());
    expect(await again.gorb.getService("web")).toMatchObject({ quorum_up: false, sorry: false });
    for (const b of ["b1", "b2"]) again.health.report("web", b, "down");
    await again.gorb.idle();
    expect(again.hooks).toEqual([]);
    expect(quorumEvents(again)).toEqual([]);
    for (const b of ["b1", "b2"]) again.health.report("web", b, "up");
    await again.gorb.idle();
    expect(again.hooks.map((h) => h.env.GORB_STATE)).toEqual(["up"]);
  });

  test("a restart while a service is up keeps it up while its backends await their first check; their failures then run quorum_down", async () => {
    const store = new MemoryStateStore();
    const s = await twoBackends({ quorum_up: HOOK, quorum_down: HOOK }, { store });
    await s.gorb.close();
    const again = stack({ driver: s.driver, store });
    await again.gorb.restore(store.load());
    expect(await again.gorb.getService("web")).toMatchObject({ quorum_up: true });
    expect(again.hooks).toEqual([]);
    for (const b of ["b1", "b2"]) again.health.report("web", b, "down");
    await again.gorb.idle();
    expect(again.hooks.map((h) => h.env.GORB_STATE)).toEqual(["down"]);
  });

  test("every backend in maintenance or draining counts as not healthy: the sorry server serves until one is back", async () => {
    const s = await twoBackends({ sorry_server: SORRY });
    await s.gorb.updateBackend("web", "b1", { maintenance: true });
    await s.gorb.idle();
    expect(dests(s)).toEqual(["10.1.0.1:80 0", "10.1.0.2:80 100"]);
    await s.gorb.updateBackend("web", "b2", { maintenance: true });
    await s.gorb.idle();
    expect(dests(s)).toEqual(["10.1.0.1:80 0", "10.1.0.2:80 0", "10.9.0.1:8080 1"]);
    expect(quorumEvents(s)).toEqual([{ service: "web", up: false, healthy: 0, quorum: 1, hysteresis: 0, sorry: true }]);
    await s.gorb.updateBackend("web", "b2", { maintenance: false });
    await s.gorb.idle();
    expect(dests(s)).toEqual(["10.1.0.1:80 0", "10.1.0.2:80 100"]);
    expect(quorumEvents(s).at(-1)).toMatchObject({ up: true, healthy: 1, sorry: false });
  });

  test("a reconcile in sorry mode keeps it; a restart in sorry mode keeps it until the backends prove themselves", async () => {
    const store = new MemoryStateStore();
    const s = await twoBackends({ sorry_server: SORRY }, { store });
    for (const b of ["b1", "b2"]) s.health.report("web", b, "down");
    await s.gorb.idle();
    expect((await s.gorb.reconcile()).repairs).toEqual([]);
    expect(dests(s)).toContain("10.9.0.1:8080 1");
    await s.gorb.close();

    s.driver.clearWrites();
    const again = stack({ driver: s.driver, store });
    const report = await again.gorb.restore(store.load());
    expect(report.repairs).toEqual([]);
    expect(report.unknown).toEqual([]);
    expect(s.driver.writes()).toEqual([]);
    expect(await again.gorb.getService("web")).toMatchObject({ sorry: true, quorum_up: false });
    again.health.report("web", "b2", "up");
    await again.gorb.idle();
    expect(dests(again)).toEqual(["10.1.0.1:80 0", "10.1.0.2:80 100"]);
  });

  test("a restart after the service came back removes a sorry server left in the kernel at weight 0", async () => {
    const store = new MemoryStateStore();
    const s = await twoBackends({ sorry_server: SORRY }, { store });
    await s.gorb.close();
    await s.driver.addDestination(s.driver.peek()[0]!.service.key, { family: "inet", address: "10.9.0.1", port: 8080, forward: "nat", weight: 0, upperThreshold: 0, lowerThreshold: 0, tunnel: null });
    const again = stack({ driver: s.driver, store });
    const report = await again.gorb.restore(store.load());
    expect(report.unknown).toEqual([]);
    expect(dests(again)).toEqual(["10.1.0.1:80 100", "10.1.0.2:80 100"]);
  });

  test("unsetting the sorry server or deleting the service removes it; changing it moves it", async () => {
    const s = await twoBackends({ sorry_server: SORRY });
    for (const b of ["b1", "b2"]) s.health.report("web", b, "down");
    await s.gorb.idle();
    await s.gorb.updateService("web", { sorry_server: { host: "10.9.0.2", method: "dr" } });
    expect(dests(s)).toEqual(["10.1.0.1:80 0", "10.1.0.2:80 0", "10.9.0.2:80 1"]);
    expect(s.driver.peek()[0]!.destinations.find((d) => d.address === "10.9.0.2")?.forward).toBe("dr");
    await s.gorb.updateService("web", { sorry_server: null });
    // Without a sorry server and without quorum there is no failover state: the backends keep their (drained) weights.
    expect(dests(s)).toEqual(["10.1.0.1:80 0", "10.1.0.2:80 0"]);
    expect(await s.gorb.getService("web")).toMatchObject({ sorry: false, quorum_up: true });
    await s.gorb.updateService("web", { sorry_server: SORRY });
    expect(dests(s)).toContain("10.9.0.1:8080 1");
    await s.gorb.deleteService("web");
    expect(s.driver.peek()).toEqual([]);
  });

  test("the sorry server may not be a backend's destination (409), and a backend may not take its address", async () => {
    const s = await twoBackends({});
    await expect(s.gorb.updateService("web", { sorry_server: { host: "10.1.0.1", port: 80 } })).rejects.toThrow('sorry_server: backend "b1"');
    await s.gorb.updateService("web", { sorry_server: SORRY });
    await expect(s.gorb.createBackend("web", "b3", { host: "10.9.0.1", port: 8080 })).rejects.toThrow("the sorry server of service");
  });
});

describe("a sorry server the kernel refuses", () => {
  test("the backends are not held at 0 without it: the service stays up, and the next check tries again", async () => {
    const s = await twoBackends({ quorum: 2, sorry_server: SORRY, quorum_down: HOOK });
    await s.gorb.createBackend("web", "b3", { host: "10.1.0.3" });
    s.health.report("web", "b3", "up");
    await s.gorb.idle();
    s.events.length = 0;
    s.driver.failNext("add-destination", "ENOMEM");
    s.health.report("web", "b1", "down");
    s.health.report("web", "b2", "down");
    await s.gorb.idle();
    // b3 still serves: zeroing it with no sorry server would leave new connections nowhere to go.
    expect(dests(s)).toEqual(["10.1.0.1:80 0", "10.1.0.2:80 0", "10.1.0.3:80 100"]);
    expect(await s.gorb.getService("web")).toMatchObject({ quorum_up: true, sorry: false });
    expect(quorumEvents(s)).toEqual([]);
    expect(s.hooks).toEqual([]);
    expect(s.logger.lines.filter((l) => l.startsWith("error"))).toEqual([
      'error cannot add the sorry server of service "web" (10.9.0.1:8080): add-destination destination 10.9.0.1:8080 in service tcp 10.0.0.1:80 failed: out of memory (ENOMEM); the service stays up with its backends until a check tries again',
    ]);

    // The next check of any of its backends, even one that changes nothing, tries again.
    s.health.report("web", "b3", "up");
    await s.gorb.idle();
    expect(dests(s)).toEqual(["10.1.0.1:80 0", "10.1.0.2:80 0", "10.1.0.3:80 0", "10.9.0.1:8080 1"]);
    expect(quorumEvents(s)).toEqual([{ service: "web", up: false, healthy: 1, quorum: 2, hysteresis: 0, sorry: true }]);
    expect(s.hooks.map((h) => h.env.GORB_STATE)).toEqual(["down"]);
  });
});

describe("leaving sorry mode when the kernel refuses a backend's weight", () => {
  test("the sorry server is not deleted before the weights are in: it keeps serving, and the next check tries again", async () => {
    const s = await twoBackends({ sorry_server: SORRY, quorum_up: HOOK });
    s.health.report("web", "b1", "down");
    s.health.report("web", "b2", "down");
    await s.gorb.idle();
    expect(dests(s)).toEqual(["10.1.0.1:80 0", "10.1.0.2:80 0", "10.9.0.1:8080 1"]);
    s.events.length = 0;
    s.logger.lines.length = 0;

    // Both come back; the kernel refuses b1's weight (written first) and takes b2's.
    s.driver.failNext("update-destination", "ENOMEM");
    s.health.report("web", "b2", "up");
    s.health.report("web", "b1", "up");
    await s.gorb.idle();
    // Deleting the sorry server with b1 at 0 would break the documented order: it stays, the service stays down, b2 back to 0.
    expect(dests(s)).toEqual(["10.1.0.1:80 0", "10.1.0.2:80 0", "10.9.0.1:8080 1"]);
    expect(await s.gorb.getService("web")).toMatchObject({ quorum_up: false, sorry: true });
    expect(quorumEvents(s)).toEqual([]);
    expect(s.hooks).toEqual([]);
    expect(s.logger.lines.filter((l) => l.startsWith("error service"))).toEqual([
      'error service "web" keeps its sorry server: the kernel refused 10.1.0.1:80: weight 0 in IPVS, want 100 (update-destination destination 10.1.0.1:80 in service tcp 10.0.0.1:80 failed: out of memory (ENOMEM)); its backends\' next check tries again',
    ]);
    expect((await s.gorb.reconcile()).repairs).toEqual([]);

    // The next check, even one that changes nothing, tries again: weights first, then the sorry server goes.
    s.driver.clearWrites();
    s.health.report("web", "b1", "up");
    await s.gorb.idle();
    expect(writes(s)).toEqual(["update-destination 10.1.0.1 100", "update-destination 10.1.0.2 100", "delete-destination 10.9.0.1"]);
    expect(dests(s)).toEqual(["10.1.0.1:80 100", "10.1.0.2:80 100"]);
    expect(quorumEvents(s)).toEqual([{ service: "web", up: true, healthy: 2, quorum: 1, hysteresis: 0, sorry: false }]);
    expect(s.hooks.map((h) => h.env.GORB_STATE)).toEqual(["up"]);
  });

  test("a weight taken and then written back to 0 is published both ways: the event stream ends at the kernel's weight", async () => {
    const s = await twoBackends({ sorry_server: SORRY });
    s.health.report("web", "b1", "down");
    s.health.report("web", "b2", "down");
    await s.gorb.idle();
    s.events.length = 0;
    s.driver.failNext("update-destination", "ENOMEM");
    s.health.report("web", "b2", "up");
    s.health.report("web", "b1", "up");
    await s.gorb.idle();
    expect(dests(s)).toEqual(["10.1.0.1:80 0", "10.1.0.2:80 0", "10.9.0.1:8080 1"]);
    const weights = s.events.flatMap((e) => (e.type === "backend.weight" ? [`${e.data.backend} ${e.data.from}->${e.data.to}`] : []));
    expect(weights).toEqual(["b2 0->100", "b2 100->0"]);
  });
});

/**
 * The memory driver, which runs a batch one operation at a time and looks at the table after each: `gaps` lists
 * the operations after which the sorry server (SORRY) was not in the table (in sorry mode: the documented order was
 * broken), `dark` those after which a service had no destination of weight > 0 (nothing served its VIP). Both are
 * cleared by the tests once the service is set up (a new service has nothing to serve with).
 */
class WatchDriver extends MemoryIpvsDriver {
  readonly gaps: string[] = [];
  readonly dark: string[] = [];
  /** Writes to refuse once with ENOMEM, as "op address:port" (failNext can only refuse the next of a kind). */
  readonly refuse = new Set<string>();
  override async apply(ops: readonly IpvsOp[]): Promise<ApplyResult> {
    const results: ApplyResult = [];
    for (const op of ops) {
      const id = "destination" in op ? `${op.op} ${op.destination.address}:${op.destination.port}` : op.op;
      if (this.refuse.delete(id)) this.failNext(op.op, "ENOMEM");
      results.push(...(await super.apply([op])));
      const table = this.peek();
      const what = `${op.op}${"destination" in op ? ` ${op.destination.address}` : ""}`;
      if (!table.some((s) => s.destinations.some((d) => d.address === SORRY.host && d.port === SORRY.port))) this.gaps.push(what);
      if (table.some((s) => !s.destinations.some((d) => d.weight > 0))) this.dark.push(what);
    }
    return results;
  }

  clearWatch(): void {
    this.gaps.length = 0;
    this.dark.length = 0;
  }
}

/** Two backends under quorum 2 on a WatchDriver, in sorry mode by `enter` (b2 down, by default). */
async function inSorryMode(enter: (s: Stack) => Promise<void> | void = (s) => s.health.report("web", "b2", "down")) {
  const driver = new WatchDriver();
  const s = await twoBackends({ quorum: 2, sorry_server: SORRY, quorum_up: HOOK }, { driver });
  await enter(s);
  await s.gorb.idle();
  expect(dests(s)).toEqual(["10.1.0.1:80 0", "10.1.0.2:80 0", "10.9.0.1:8080 1"]);
  expect(await s.gorb.getService("web")).toMatchObject({ quorum_up: false, sorry: true });
  s.driver.clearWrites();
  driver.clearWatch(); // before: a new service is down (sorry server first), and up once both backends passed
  s.events.length = 0;
  s.hooks.length = 0;
  return { ...s, driver };
}

describe("a request that takes the sorry server out when the kernel refuses another of its writes", () => {
  test("PATCH lowering quorum: the sorry server is never deleted, and the failed request changes nothing", async () => {
    const s = await inSorryMode();
    s.driver.failNext("update-destination", "ENOMEM");
    await expect(s.gorb.updateService("web", { quorum: 1 })).rejects.toThrow("out of memory (ENOMEM)");
    // Deleted in the same batch as b1's refused weight, then added back by the rollback: for that moment nothing served.
    expect(s.driver.gaps).toEqual([]);
    expect(s.driver.dark).toEqual([]);
    expect(dests(s)).toEqual(["10.1.0.1:80 0", "10.1.0.2:80 0", "10.9.0.1:8080 1"]);
    expect(await s.gorb.getService("web")).toMatchObject({ options: { quorum: 2 }, quorum_up: false, sorry: true });
    expect((await s.gorb.reconcile()).repairs).toEqual([]);
    expect(quorumEvents(s)).toEqual([]);
    expect(s.hooks).toEqual([]);

    // Once the kernel takes the weight, the same request works: weights first, then the sorry server goes.
    s.driver.clearWrites();
    await s.gorb.updateService("web", { quorum: 1 });
    expect(writes(s)).toEqual(["update-destination 10.1.0.1 100", "delete-destination 10.9.0.1"]);
    expect(dests(s)).toEqual(["10.1.0.1:80 100", "10.1.0.2:80 0"]);
    expect(quorumEvents(s)).toEqual([{ service: "web", up: true, healthy: 1, quorum: 1, hysteresis: 0, sorry: false }]);
    expect(s.hooks.map((h) => h.env.GORB_STATE)).toEqual(["up"]);
  });

  test("PATCH of a backend out of maintenance: the sorry server is never deleted, and the failed request changes nothing", async () => {
    const s = await inSorryMode(async (s) => {
      await s.gorb.updateBackend("web", "b2", { maintenance: true });
    });
    // b1's weight is refused, b2's is taken: the rollback sets b2 back to 0.
    s.driver.failNext("update-destination", "ENOMEM");
    await expect(s.gorb.updateBackend("web", "b2", { maintenance: false })).rejects.toThrow("out of memory (ENOMEM)");
    expect(s.driver.gaps).toEqual([]);
    expect(s.driver.dark).toEqual([]);
    expect(dests(s)).toEqual(["10.1.0.1:80 0", "10.1.0.2:80 0", "10.9.0.1:8080 1"]);
    expect((await s.gorb.getBackend("web", "b2")).options.maintenance).toBe(true);
    expect(await s.gorb.getService("web")).toMatchObject({ quorum_up: false, sorry: true });
    expect((await s.gorb.reconcile()).repairs).toEqual([]);
    expect(quorumEvents(s)).toEqual([]);
    expect(s.hooks).toEqual([]);
  });

  test("PATCH moving or unsetting the sorry server: the one serving stays until every other write worked", async () => {
    const s = await inSorryMode();
    // The new sorry server is refused: the one serving stays.
    s.driver.failNext("add-destination", "ENOMEM");
    await expect(s.gorb.updateService("web", { sorry_server: { host: "10.9.0.2", port: 8080 } })).rejects.toThrow("out of memory (ENOMEM)");
    // Unset, the backends take over: b1's weight is refused, so the sorry server stays.
    s.driver.failNext("update-destination", "ENOMEM");
    await expect(s.gorb.updateService("web", { sorry_server: null })).rejects.toThrow("out of memory (ENOMEM)");
    expect(s.driver.gaps).toEqual([]);
    expect(s.driver.dark).toEqual([]);
    expect(dests(s)).toEqual(["10.1.0.1:80 0", "10.1.0.2:80 0", "10.9.0.1:8080 1"]);
    expect(await s.gorb.getService("web")).toMatchObject({ options: { sorry_server: { host: "10.9.0.1", port: 8080 } }, sorry: true });
    expect((await s.gorb.reconcile()).repairs).toEqual([]);

    s.driver.clearWrites();
    await s.gorb.updateService("web", { sorry_server: null });
    expect(writes(s)).toEqual(["update-destination 10.1.0.1 100", "delete-destination 10.9.0.1"]);
    expect(dests(s)).toEqual(["10.1.0.1:80 100", "10.1.0.2:80 0"]);
  });
});

/**
 * Two backends on a WatchDriver, b1 serving and b2 down: up under quorum 1 (`body` adds to the service), or down
 * under quorum 2 without a sorry server (the weights follow health).
 */
async function oneServing(body: Record<string, unknown>) {
  const driver = new WatchDriver();
  const s = await twoBackends(body, { driver });
  s.health.report("web", "b2", "down");
  await s.gorb.idle();
  expect(dests(s)).toEqual(["10.1.0.1:80 100", "10.1.0.2:80 0"]);
  s.driver.clearWrites();
  driver.clearWatch();
  s.events.length = 0;
  s.hooks.length = 0;
  return { ...s, driver };
}

describe("a request that brings the sorry server in when the kernel refuses it", () => {
  test("PATCH raising quorum: the backends keep serving, and the failed request changes nothing", async () => {
    const s = await oneServing({ quorum: 1, sorry_server: SORRY, quorum_down: HOOK });
    s.driver.failNext("add-destination", "ENOMEM");
    await expect(s.gorb.updateService("web", { quorum: 2 })).rejects.toThrow("out of memory (ENOMEM)");
    // b1 went to 0 in the same batch as the refused sorry server: nothing served until the rollback gave it back.
    expect(s.driver.dark).toEqual([]);
    expect(writes(s)).toEqual([]);
    expect(dests(s)).toEqual(["10.1.0.1:80 100", "10.1.0.2:80 0"]);
    expect(await s.gorb.getService("web")).toMatchObject({ options: { quorum: 1 }, quorum_up: true, sorry: false });
    expect((await s.gorb.reconcile()).repairs).toEqual([]);
    expect(quorumEvents(s)).toEqual([]);
    expect(s.hooks).toEqual([]);

    // Once the kernel takes it, the same request works: the sorry server first, then the backends go to 0.
    s.driver.clearWrites();
    await s.gorb.updateService("web", { quorum: 2 });
    expect(writes(s)).toEqual(["add-destination 10.9.0.1 1", "update-destination 10.1.0.1 0"]);
    expect(s.driver.dark).toEqual([]);
    expect(dests(s)).toEqual(["10.1.0.1:80 0", "10.1.0.2:80 0", "10.9.0.1:8080 1"]);
    expect(quorumEvents(s)).toEqual([{ service: "web", up: false, healthy: 1, quorum: 2, hysteresis: 0, sorry: true }]);
    expect(s.hooks.map((h) => h.env.GORB_STATE)).toEqual(["down"]);
  });

  test("PATCH setting sorry_server on a service below quorum: the backends keep serving, and the failed request changes nothing", async () => {
    const s = await oneServing({ quorum: 2 });
    expect(await s.gorb.getService("web")).toMatchObject({ quorum_up: false, sorry: false });
    s.driver.failNext("add-destination", "ENOMEM");
    await expect(s.gorb.updateService("web", { sorry_server: SORRY })).rejects.toThrow("out of memory (ENOMEM)");
    expect(s.driver.dark).toEqual([]);
    expect(dests(s)).toEqual(["10.1.0.1:80 100", "10.1.0.2:80 0"]);
    expect((await s.gorb.getService("web")).options.sorry_server).toBeNull();
    expect((await s.gorb.reconcile()).repairs).toEqual([]);

    s.driver.clearWrites();
    await s.gorb.updateService("web", { sorry_server: SORRY });
    expect(writes(s)).toEqual(["add-destination 10.9.0.1 1", "update-destination 10.1.0.1 0"]);
    expect(dests(s)).toEqual(["10.1.0.1:80 0", "10.1.0.2:80 0", "10.9.0.1:8080 1"]);
  });

  test("PATCH of a backend into maintenance: the other keeps serving, and the failed request changes nothing", async () => {
    const driver = new WatchDriver();
    const s = await twoBackends({ quorum: 2, sorry_server: SORRY }, { driver });
    driver.clearWatch();
    s.driver.failNext("add-destination", "ENOMEM");
    await expect(s.gorb.updateBackend("web", "b2", { maintenance: true })).rejects.toThrow("out of memory (ENOMEM)");
    expect(driver.dark).toEqual([]);
    expect(writes(s)).toEqual([]);
    expect(dests(s)).toEqual(["10.1.0.1:80 100", "10.1.0.2:80 100"]);
    expect((await s.gorb.getBackend("web", "b2")).options.maintenance).toBe(false);
    expect(await s.gorb.getService("web")).toMatchObject({ quorum_up: true, sorry: false });
    expect((await s.gorb.reconcile()).repairs).toEqual([]);
    expect(quorumEvents(s)).toEqual([]);
  });
});

describe("a reconcile that brings the sorry server back when the kernel refuses it", () => {
  test("the backend someone put back to work keeps serving; the next reconcile, with the kernel taking it, repairs both", async () => {
    const s = await inSorryMode();
    // Behind gorb's back (ipvsadm -e, -d): b1 back at 100, the sorry server gone. Something still serves: b1.
    const [service] = s.driver.peek();
    const key = service!.service.key;
    const b1 = service!.destinations.find((d) => d.address === "10.1.0.1")!;
    const sorry = service!.destinations.find((d) => d.address === SORRY.host)!;
    await s.driver.updateDestination(key, { ...b1, weight: 100 });
    await s.driver.deleteDestination(key, { address: sorry.address, port: sorry.port, family: sorry.family });
    s.driver.clearWatch();
    s.driver.clearWrites();
    s.driver.failNext("add-destination", "ENOMEM");
    const first = await s.gorb.reconcile();
    // One batch sent b1 to 0 after the refused sorry server: nothing served until the next reconcile.
    expect(s.driver.dark).toEqual([]);
    expect(dests(s)).toEqual(["10.1.0.1:80 100", "10.1.0.2:80 0"]);
    expect(first.repairs.map((r) => r.status)).toEqual(["failed"]);

    s.driver.clearWrites();
    const second = await s.gorb.reconcile();
    expect(writes(s)).toEqual(["add-destination 10.9.0.1 1", "update-destination 10.1.0.1 0"]);
    expect(second.repairs.map((r) => r.status)).toEqual(["done", "done"]);
    expect(s.driver.dark).toEqual([]);
    expect(dests(s)).toEqual(["10.1.0.1:80 0", "10.1.0.2:80 0", "10.9.0.1:8080 1"]);
  });
});

describe("a sorry server on a destination gorb leaves alone", () => {
  test("a destination reported at start-up may not become the sorry server (409): it would be deleted while the service is up", async () => {
    const store = new MemoryStateStore();
    const first = stack({ store });
    await first.gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await first.gorb.createBackend("web", "b1", { host: "10.1.0.1" });
    await first.gorb.close();
    // Added by hand while gorb was stopped: reported at start-up and left serving.
    const key = first.driver.peek()[0]!.service.key;
    await first.driver.addDestination(key, { family: "inet", address: "10.9.0.1", port: 8080, forward: "nat", weight: 30, upperThreshold: 0, lowerThreshold: 0, tunnel: null });
    const s = stack({ driver: first.driver, store });
    expect((await s.gorb.restore(store.load())).unknown).toEqual(['10.9.0.1:8080 in service "web"']);
    await expect(s.gorb.updateService("web", { sorry_server: SORRY })).rejects.toThrow("sorry_server: IPVS serves 10.9.0.1:8080");
    expect(dests(s)).toEqual(["10.1.0.1:80 100", "10.9.0.1:8080 30"]);
    expect((await s.gorb.getService("web")).options.sorry_server).toBeNull();
  });
});

describe("an IPv6 sorry server is compared in canonical form", () => {
  test("written in capitals it is still a backend's destination (409), and a backend spelt otherwise may not take it", async () => {
    const s = stack();
    await s.gorb.createService("v6", { host: "2001:db8::100", port: 80 });
    await s.gorb.createBackend("v6", "b6", { host: "2001:db8::a" });
    await expect(s.gorb.updateService("v6", { sorry_server: { host: "2001:DB8::A" } })).rejects.toThrow('sorry_server: backend "b6"');
    await s.gorb.updateService("v6", { sorry_server: { host: "2001:DB8:0::BB" } });
    expect((await s.gorb.getService("v6")).options.sorry_server).toMatchObject({ host: "2001:db8::bb" });
    await expect(s.gorb.createBackend("v6", "b7", { host: "2001:db8::bb" })).rejects.toThrow("the sorry server of service");
  });
});

describe("quorum", () => {
  test("down below quorum - hysteresis, up at quorum + hysteresis; without a sorry server the weights follow health only", async () => {
    const s = stack();
    await s.gorb.createService("web", { host: "10.0.0.1", port: 80, quorum: 3, hysteresis: 1, quorum_down: HOOK });
    for (const i of [1, 2, 3, 4]) await s.gorb.createBackend("web", `b${i}`, { host: `10.1.0.${i}` });
    // A new service is down until quorum + hysteresis backends have passed a check.
    expect(quorumEvents(s)).toEqual([{ service: "web", up: false, healthy: 0, quorum: 3, hysteresis: 1, sorry: false }]);
    for (const i of [1, 2, 3]) s.health.report("web", `b${i}`, "up");
    await s.gorb.idle();
    expect(quorumEvents(s)).toHaveLength(1);
    s.health.report("web", "b4", "up");
    await s.gorb.idle();
    expect(quorumEvents(s).at(-1)).toMatchObject({ up: true, healthy: 4 });
    s.events.length = 0;
    s.hooks.length = 0;
    s.health.report("web", "b1", "down");
    s.health.report("web", "b2", "down");
    await s.gorb.idle();
    expect(quorumEvents(s)).toEqual([]); // 2 healthy >= 3 - 1
    s.health.report("web", "b3", "down");
    await s.gorb.idle();
    expect(quorumEvents(s)).toEqual([{ service: "web", up: false, healthy: 1, quorum: 3, hysteresis: 1, sorry: false }]);
    expect(dests(s)).toEqual(["10.1.0.1:80 0", "10.1.0.2:80 0", "10.1.0.3:80 0", "10.1.0.4:80 100"]);
    expect(s.hooks.map((h) => [h.env.GORB_STATE, h.env.GORB_HEALTHY, h.env.GORB_QUORUM, h.env.GORB_HYSTERESIS])).toEqual([["down", "1", "3", "1"]]);
    for (const b of ["b1", "b2"]) s.health.report("web", b, "up");
    await s.gorb.idle();
    expect(quorumEvents(s)).toHaveLength(1); // 3 healthy: back at quorum is not enough
    s.health.report("web", "b3", "up");
    await s.gorb.idle();
    expect(quorumEvents(s).at(-1)).toMatchObject({ up: true, healthy: 4 });
    expect(s.hooks).toHaveLength(1); // no quorum_up hook configured
  });

  test("a service below quorum is not healthy for BGP", async () => {
    const { servicesSource } = await import("../../../src/bgp/controller.ts");
    const s = stack();
    const inputs = servicesSource(s.gorb);
    await s.gorb.createService("web", { host: "10.0.0.1", port: 80, quorum: 2 });
    for (const i of [1, 2]) await s.gorb.createBackend("web", `b${i}`, { host: `10.1.0.${i}` });
    for (const i of [1, 2]) s.health.report("web", `b${i}`, "up");
    await s.gorb.idle();
    expect((await inputs())[0]?.healthy).toBe(2);
    s.health.report("web", "b1", "down");
    await s.gorb.idle();
    expect((await inputs())[0]?.healthy).toBe(0);
  });
});

describe("validation: a 400 naming the field, and nothing changes", () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ sorry_server: { host: "10.9.0.1", port: 70000 } }, "sorry_server.port: must be 1-65535, got 70000"],
    [{ sorry_server: { host: "sorry.example" } }, "sorry_server.host: must be an IP address"],
    [{ sorry_server: { host: "2001:db8::1" } }, "sorry_server.host: must be an inet address like the service"],
    [{ sorry_server: { host: "0.0.0.0" } }, "sorry_server.host: 0.0.0.0 is an unspecified address; a sorry server must be one host's unicast address"],
    [{ sorry_server: { host: "255.255.255.255" } }, "sorry_server.host: 255.255.255.255 is the broadcast address"],
    [{ sorry_server: { host: "224.0.0.1" } }, "sorry_server.host: 224.0.0.1 is a multicast address"],
    [{ sorry_server: { host: "10.9.0.1", method: "gre" } }, "sorry_server.method: must be one of nat, dr, tunnel, ipip"],
    // (Elysia turns a non-object into {} before core sees it; core alone says "must be an object such as ...")
    [{ sorry_server: "10.9.0.1" }, "sorry_server"],
    [{ sorry_server: { port: 80 } }, "sorry_server.host: is required"],
    [{ quorum: -1 }, "quorum: must be 0-65535, got -1"],
    [{ quorum: 2, hysteresis: 2 }, "hysteresis: must be less than quorum (2), got 2"],
    [{ quorum_up: "page.sh" }, "quorum_up: must be the absolute path of a program under the hook directory"],
    [{ quorum_down: "/usr/bin/reboot" }, "quorum_down: must be a program under the hook directory /etc/gorb/hooks"],
  ];
  test.each(cases)("%o -> %s", async (body, error) => {
    const s = stack();
    const app = createApp({ gorb: s.gorb, logger: s.logger });
    const res = await app.handle(
      new Request("http://gorb.test/service/web", { method: "PUT", body: JSON.stringify({ host: "10.0.0.1", port: 80, ...body }), headers: { "content-type": "application/json" } }),
    );
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toStartWith(error);
    expect(s.driver.peek()).toEqual([]);
  });

  test("slow_start: a 400 naming the field; GET shows it", async () => {
    const s = stack();
    await s.gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await expect(s.gorb.createBackend("web", "b1", { host: "10.1.0.1", slow_start: "soon" })).rejects.toThrow("slow_start: invalid interval");
    await s.gorb.createBackend("web", "b1", { host: "10.1.0.1", slow_start: "90s" });
    expect((await s.gorb.getBackend("web", "b1")).options.slow_start).toBe("90s");
  });
});

describe("slow start through Gorb (hand-driven clock)", () => {
  test("a new backend ramps with time, one batch per step; after a failure and recovery it ramps again", async () => {
    const clock = new ManualClock();
    const s = stack({ clock });
    await s.gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await s.gorb.createBackend("web", "b1", { host: "10.1.0.1", weight: 100, slow_start: "4s" });
    const series: number[] = [];
    const sample = () => series.push(s.driver.peek()[0]!.destinations[0]!.weight);
    sample();
    for (let i = 0; i < 5; i++) {
      await clock.advance(1_000);
      await s.gorb.idle();
      sample();
    }
    expect(series).toEqual([1, 25, 50, 75, 100, 100]);
    expect(clock.pending).toBe(0); // the timer stops once no ramp is left
    expect(s.events.filter((e) => e.type === "backend.weight").map((e) => (e.data as { to: number }).to)).toEqual([25, 50, 75, 100]);

    s.health.report("web", "b1", "down");
    await s.gorb.idle();
    s.health.report("web", "b1", "up"); // a full window of passes: the policy would give 100 at once
    await s.gorb.idle();
    series.length = 0;
    sample();
    for (let i = 0; i < 4; i++) {
      await clock.advance(1_000);
      await s.gorb.idle();
      sample();
    }
    expect(series).toEqual([1, 25, 50, 75, 100]);
  });

  test("a backend panic mode kept at its weight while down is not ramped from 1 again when it comes back up", async () => {
    const clock = new ManualClock();
    const s = stack({ clock });
    await s.gorb.createService("web", { host: "10.0.0.1", port: 80, panic_threshold: 50 });
    for (const i of [1, 2, 3, 4]) await s.gorb.createBackend("web", `b${i}`, { host: `10.1.0.${i}`, weight: 100, slow_start: "4s" });
    await clock.advance(4_000);
    await s.gorb.idle();
    const weights = () => s.driver.peek()[0]!.destinations.map((d) => d.weight);
    expect(weights()).toEqual([100, 100, 100, 100]);
    s.health.report("web", "b1", "down");
    s.health.report("web", "b2", "down");
    await s.gorb.idle();
    s.health.report("web", "b3", "down");
    await s.gorb.idle();
    expect(weights()).toEqual([0, 0, 100, 100]); // b3 went down in panic (3 of 4): kept at 100
    s.health.report("web", "b3", "up");
    s.health.report("web", "b1", "up");
    await s.gorb.idle();
    expect(weights()).toEqual([1, 0, 100, 100]); // b1 was drained: it ramps; b3 served all along: no ramp
  });

  test("out of maintenance, or undrained, a backend ramps up again: a ramp that ran out under the hold does not give it its full weight at once", async () => {
    const clock = new ManualClock();
    const s = stack({ clock });
    await s.gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await s.gorb.createBackend("web", "b1", { host: "10.1.0.1", weight: 100, slow_start: "4s" });
    const weight = () => s.driver.peek()[0]!.destinations[0]!.weight;
    await s.gorb.updateBackend("web", "b1", { maintenance: true }); // held at 0 at once, its ramp just started
    await clock.advance(5_000);
    await s.gorb.idle();
    expect(weight()).toBe(0);
    await s.gorb.updateBackend("web", "b1", { maintenance: false });
    expect(weight()).toBe(1);
    await clock.advance(1_000);
    await s.gorb.idle();
    expect(weight()).toBe(25);
    await clock.advance(3_000);
    await s.gorb.idle();
    expect(weight()).toBe(100);
    await s.gorb.drainBackend("web", "b1", { then: "keep" });
    await clock.advance(5_000);
    await s.gorb.idle();
    expect(weight()).toBe(0);
    await s.gorb.undrainBackend("web", "b1");
    expect(weight()).toBe(1);
  });

  test("a weight changed mid-ramp moves the cap at once: no step a second later", async () => {
    const clock = new ManualClock();
    const s = stack({ clock });
    await s.gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await s.gorb.createBackend("web", "b1", { host: "10.1.0.1", weight: 100, slow_start: "4s" });
    const weight = () => s.driver.peek()[0]!.destinations[0]!.weight;
    await clock.advance(2_000);
    await s.gorb.idle();
    expect(weight()).toBe(50);
    // Halfway through the ramp: half of the new weight, now, not 50 (then 5 at the next step).
    await s.gorb.updateBackend("web", "b1", { weight: 10 });
    expect(weight()).toBe(5);
    await s.gorb.updateBackend("web", "b1", { weight: 1000 });
    expect(weight()).toBe(500);
    // A shorter slow start that is over already ends the ramp.
    await s.gorb.updateBackend("web", "b1", { slow_start: "1s" });
    expect(weight()).toBe(1000);
    await clock.advance(1_000);
    await s.gorb.idle();
    expect(weight()).toBe(1000);
    expect(clock.pending).toBe(0);
  });
});

describe("a slow-start step the kernel refuses", () => {
  test("the desired weight stays at the step the kernel holds, and the next tick writes it again (also the last step)", async () => {
    const clock = new ManualClock();
    const s = stack({ clock });
    await s.gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await s.gorb.createBackend("web", "b1", { host: "10.1.0.1", weight: 100, slow_start: "2s", pulse: { type: "none" } });
    const weight = () => s.driver.peek()[0]!.destinations[0]!.weight;
    await clock.advance(1_000);
    await s.gorb.idle();
    expect(weight()).toBe(50);
    // The last step: the ramp ends, and no check will ever write the weight (pulse none).
    s.driver.failNext("update-destination", "ENOMEM");
    await clock.advance(1_000);
    await s.gorb.idle();
    expect(weight()).toBe(50);
    expect(s.logger.lines.filter((l) => l.startsWith("error"))).toEqual([
      "error slow start: cannot write 10.1.0.1:80: weight 50 in IPVS, want 100: update-destination destination 10.1.0.1:80 in service tcp 10.0.0.1:80 failed: out of memory (ENOMEM); the next step tries again",
    ]);
    expect((await s.gorb.reconcile()).repairs).toEqual([]); // gorb's state is what the kernel has
    expect(clock.pending).toBe(1);
    await clock.advance(1_000);
    await s.gorb.idle();
    expect(weight()).toBe(100);
    expect(clock.pending).toBe(0);
  });
});

describe("the declarative set", () => {
  test("POST /apply takes the failover fields; applying the same set again changes nothing", async () => {
    const s = stack();
    const app = createApp({ gorb: s.gorb, logger: s.logger });
    const set = {
      services: {
        web: {
          host: "10.0.0.1",
          port: 80,
          quorum: 2,
          hysteresis: 0,
          sorry_server: { host: "10.9.0.1", method: "dr" },
          backends: { b1: { host: "10.1.0.1", slow_start: "30s" } },
        },
      },
    };
    const post = async () =>
      (await app.handle(new Request("http://gorb.test/apply", { method: "POST", body: JSON.stringify(set), headers: { "content-type": "application/json" } }))).json() as Promise<{
        changes: unknown[];
      }>;
    expect((await post()).changes).toHaveLength(2);
    expect((await s.gorb.getService("web")).options).toMatchObject({ quorum: 2, hysteresis: 0, sorry_server: { host: "10.9.0.1", port: 80, method: "dr" } });
    // Applied like a request: the new service is below its quorum at once, and its sorry server serves.
    expect(await s.gorb.getService("web")).toMatchObject({ quorum_up: false, sorry: true });
    expect(dests(s)).toEqual(["10.1.0.1:80 0", "10.9.0.1:80 1"]);
    expect(quorumEvents(s)).toEqual([{ service: "web", up: false, healthy: 0, quorum: 2, hysteresis: 0, sorry: true }]);
    expect((await post()).changes).toEqual([]);
  });
});

describe("an apply the kernel refuses in part", () => {
  test("the quorum is counted again without the refused change: a flip made with it does not stand", async () => {
    const s = stack();
    const app = createApp({ gorb: s.gorb, logger: s.logger });
    const set = (b1Weight: number, withB2: boolean) => ({
      services: {
        web: {
          host: "10.0.0.1",
          port: 80,
          quorum: 2,
          sorry_server: SORRY,
          quorum_up: HOOK,
          quorum_down: HOOK,
          backends: {
            b1: { host: "10.1.0.1", weight: b1Weight, pulse: { type: "none" } },
            ...(withB2 ? { b2: { host: "10.1.0.2", pulse: { type: "none" } } } : {}),
          },
        },
      },
    });
    const post = async (body: unknown) =>
      (await app.handle(new Request("http://gorb.test/apply", { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } }))).json() as Promise<{
        changes: { backend: string | null; status: string }[];
      }>;
    await post(set(0, false));
    expect(dests(s)).toEqual(["10.1.0.1:80 0", "10.9.0.1:8080 1"]);
    s.events.length = 0;
    s.hooks.length = 0;

    // b1 back to 100 and a new b2 would make two healthy backends (up); the kernel refuses b2.
    s.driver.failNext("add-destination", "ENOMEM");
    const report = await post(set(100, true));
    expect(report.changes.map((c) => [c.backend, c.status])).toEqual([
      ["b1", "done"],
      ["b2", "failed"],
    ]);
    // One healthy backend is below quorum 2: the service is still down and its sorry server serves.
    expect(await s.gorb.getService("web")).toMatchObject({ quorum_up: false, sorry: true, backends: ["b1"] });
    expect(dests(s)).toEqual(["10.1.0.1:80 0", "10.9.0.1:8080 1"]);
    // What the kernel went through is published: up with the batch, down once b2 was refused.
    expect(quorumEvents(s).map((e) => (e as { up: boolean }).up)).toEqual([true, false]);
    expect(s.hooks.map((h) => h.env.GORB_STATE)).toEqual(["up", "down"]);
    expect((await s.gorb.reconcile()).repairs).toEqual([]);
  });
});

describe("an apply that brings the sorry server in or takes it out when the kernel refuses a write", () => {
  /** A stack on a WatchDriver, and POST /apply of service web (quorum `quorum`, SORRY) with `weights` (pulse none). */
  function applying() {
    const driver = new WatchDriver();
    const s = stack({ driver });
    const app = createApp({ gorb: s.gorb, logger: s.logger });
    const post = async (quorum: number, weights: Record<string, number>) => {
      const backends = Object.fromEntries(Object.entries(weights).map(([id, weight], i) => [id, { host: `10.1.0.${i + 1}`, weight, pulse: { type: "none" } }]));
      const body = { services: { web: { host: "10.0.0.1", port: 80, quorum, sorry_server: SORRY, quorum_down: HOOK, backends } } };
      const res = await app.handle(new Request("http://gorb.test/apply", { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } }));
      const report = (await res.json()) as { changes: { backend: string | null; status: string; error?: string }[] };
      return report.changes.map((c) => `${c.backend ?? "-"} ${c.status}`);
    };
    return { ...s, driver, post };
  }

  test("the sorry server refused: no backend goes to 0 without it, and every change of its service fails", async () => {
    const s = applying();
    await s.post(3, { b1: 100, b2: 100, b3: 100 });
    expect(dests(s)).toEqual(["10.1.0.1:80 100", "10.1.0.2:80 100", "10.1.0.3:80 100"]);
    s.driver.clearWatch();
    s.events.length = 0;

    // b2 and b3 drained: one healthy backend of quorum 3, and the kernel refuses the sorry server. In one batch every
    // backend went to 0 past the refusal: nothing served until the undo. And b3's change, which alone keeps the
    // service down, stood without the sorry server it needs.
    s.driver.failNext("add-destination", "ENOMEM");
    expect(await s.post(3, { b1: 100, b2: 0, b3: 0 })).toEqual(["b2 failed", "b3 failed"]);
    expect(s.driver.dark).toEqual([]);
    expect(dests(s)).toEqual(["10.1.0.1:80 100", "10.1.0.2:80 100", "10.1.0.3:80 100"]);
    expect(await s.gorb.getService("web")).toMatchObject({ quorum_up: true, sorry: false });
    expect((await s.gorb.getBackend("web", "b3")).options.weight).toBe(100);
    expect((await s.gorb.reconcile()).repairs).toEqual([]);
    expect(quorumEvents(s)).toEqual([]);

    // Taken, the same apply works: the sorry server first, then the backends go to 0.
    s.driver.clearWrites();
    expect(await s.post(3, { b1: 100, b2: 0, b3: 0 })).toEqual(["b2 done", "b3 done"]);
    expect(writes(s)).toEqual(["add-destination 10.9.0.1 1", "update-destination 10.1.0.1 0", "update-destination 10.1.0.2 0", "update-destination 10.1.0.3 0"]);
    expect(s.driver.dark).toEqual([]);
  });

  test("a backend's weight refused: the sorry server is not deleted before the weights are in", async () => {
    const s = applying();
    await s.post(1, { b1: 0, b2: 0 });
    expect(dests(s)).toEqual(["10.1.0.1:80 0", "10.1.0.2:80 0", "10.9.0.1:8080 1"]);
    s.driver.clearWatch();

    // Both back: the kernel refuses both weights. The sorry server deleted in the same batch left nothing serving.
    s.driver.failNext("update-destination", "ENOMEM", 2);
    expect(await s.post(1, { b1: 100, b2: 100 })).toEqual(["b1 failed", "b2 failed"]);
    expect(s.driver.dark).toEqual([]);
    expect(s.driver.gaps).toEqual([]);
    expect(dests(s)).toEqual(["10.1.0.1:80 0", "10.1.0.2:80 0", "10.9.0.1:8080 1"]);
    expect(await s.gorb.getService("web")).toMatchObject({ quorum_up: false, sorry: true });
    expect((await s.gorb.reconcile()).repairs).toEqual([]);
  });

  test("one backend's weight refused, the other's taken: the service is up, and the sorry server goes once the weights are in", async () => {
    const s = applying();
    await s.post(1, { b1: 0, b2: 0 });
    s.driver.clearWatch();
    s.driver.clearWrites();

    // b2's weight is refused, b1's taken: b1 alone is quorum 1, so the service is up. The sorry server's delete, held
    // back by the refusal, runs with the undo (b1's change, which made the flip, is not undone).
    s.driver.refuse.add("update-destination 10.1.0.2:80");
    expect(await s.post(1, { b1: 100, b2: 100 })).toEqual(["b1 done", "b2 failed"]);
    expect(writes(s)).toEqual(["update-destination 10.1.0.1 100", "delete-destination 10.9.0.1"]);
    expect(s.driver.dark).toEqual([]);
    expect(dests(s)).toEqual(["10.1.0.1:80 100", "10.1.0.2:80 0"]);
    expect(await s.gorb.getService("web")).toMatchObject({ quorum_up: true, sorry: false });
    expect((await s.gorb.reconcile()).repairs).toEqual([]);
  });
});
