/**
 * Durable state and reconciliation in core: every accepted change is committed before the call resolves;
 * restore() brings a new Gorb back to the same state and makes the kernel match without touching what already
 * matches; reconcile() repairs drift and counts it.
 */
import { describe, expect, test } from "bun:test";
import { createApp } from "../../../src/api/app.ts";
import { GorbError } from "../../../src/core/errors.ts";
import { MemoryVipManager } from "../../helpers/memory-vip.ts";
import { MemoryIpvsDriver } from "../../../src/ipvs/memory-driver.ts";
import type { ApplyResult } from "../../../src/ipvs/driver.ts";
import type { IpvsOp, ServiceKey } from "../../../src/ipvs/types.ts";
import { makeGorb } from "./fakes.ts";
import { MemoryStateStore, StagingMemoryStore } from "./memory-store.ts";

const KEY: ServiceKey = { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 };
const FOREIGN: ServiceKey = { family: "inet", protocol: "udp", address: "10.9.9.9", port: 53 };

/** A Gorb with a store, three backends on "web" and a fwmark service. */
async function populated() {
  const driver = new MemoryIpvsDriver();
  const store = new MemoryStateStore();
  const stack = makeGorb({ driver, store });
  const { gorb } = stack;
  await gorb.createService("web", { host: "10.0.0.1", port: 80, method: "rr", persistent: true, persistence_timeout: 60 });
  await gorb.createBackend("web", "b1", { host: "10.1.0.1", weight: 50, pulse: { type: "http", interval: "5s" } });
  await gorb.createBackend("web", "b2", { host: "10.1.0.2", port: 8080, upper_threshold: 10 });
  await gorb.createBackend("web", "b3", { host: "10.1.0.3", pulse: { type: "none" } });
  await gorb.createService("marked", { fwmark: 7, method: "sh", flags: "sh-port" });
  return { ...stack, driver, store };
}

/** A fresh Gorb (a restarted daemon) on the same kernel and store. */
function restarted(driver: MemoryIpvsDriver, store: MemoryStateStore, vip = new MemoryVipManager()) {
  return makeGorb({ driver, store, vip });
}

/** Everything GET shows except live health, for comparing two Gorbs. */
async function apiState(gorb: ReturnType<typeof makeGorb>["gorb"]) {
  return (await gorb.listServicesDetail()).map((s) => ({
    id: s.id,
    options: s.options,
    backends: s.backends,
    details: s.backend_details.map((b) => ({ id: b.id, options: b.options, effective_weight: b.effective_weight })),
  }));
}

describe("saving", () => {
  test("each accepted change is committed, with the rows it changed, before the call resolves", async () => {
    const store = new MemoryStateStore();
    const { gorb } = makeGorb({ store });
    await gorb.createService("web", { Host: "10.0.0.1", port: 80 });
    expect(store.commits.at(-1)).toEqual({
      putServices: [{ id: "web", source: "api", fields: { host: "10.0.0.1", port: 80 }, key: KEY, vip: true }],
      deleteServices: [],
      putBackends: [],
      deleteBackends: [],
    });
    await gorb.createBackend("web", "b1", { host: "10.1.0.1" });
    expect(store.commits.at(-1)?.putBackends).toEqual([
      { service: "web", id: "b1", source: "api", fields: { host: "10.1.0.1" }, address: { address: "10.1.0.1", family: "inet" } },
    ]);
    await gorb.updateBackend("web", "b1", { weight: 7 });
    expect(store.backends.get("web/b1")?.fields).toEqual({ host: "10.1.0.1", weight: 7 });
    await gorb.updateService("web", { method: "lc" });
    expect(store.services.get("web")?.fields).toEqual({ host: "10.0.0.1", port: 80, method: "lc" });
    await gorb.deleteBackend("web", "b1");
    expect(store.commits.at(-1)?.deleteBackends).toEqual([{ service: "web", id: "b1" }]);
    await gorb.createBackend("web", "b2", { host: "10.1.0.2" });
    await gorb.deleteService("web");
    expect(store.commits.at(-1)?.deleteServices).toEqual(["web"]);
    expect(store.load()).toEqual({ services: [], backends: [] });
    expect(store.commits).toHaveLength(7);
  });

  test("an apply of 660 objects is one commit of all its rows (gathered in paced slices past 500)", async () => {
    const store = new MemoryStateStore();
    const { gorb } = makeGorb({ store });
    const declared = Array.from({ length: 60 }, (_, i) => ({
      id: `s${i}`,
      fields: new Map<string, unknown>([["host", `10.0.${i}.1`], ["port", 80]]),
      backends: Array.from({ length: 10 }, (_, j) => ({ id: `b${j}`, fields: new Map<string, unknown>([["host", `10.1.${i}.${j + 1}`], ["weight", j]]) })),
    }));
    const report = await gorb.apply(declared);
    expect(report.ok).toBe(true);
    expect(store.commits).toHaveLength(1);
    expect([store.services.size, store.backends.size]).toEqual([60, 600]);
    expect(store.backends.get("s59/b9")).toMatchObject({ service: "s59", id: "b9", source: "file", fields: { host: "10.1.59.10", weight: 9 }, address: { address: "10.1.59.10", family: "inet" } });
  });

  // Found by test/unit/store/fleet-random.test.ts (seed 185): the dropped backend's row stayed, so it came back at
  // the next start (and in a fleet, every other node kept serving it).
  test("an apply that re-creates a service on another address without one of its backends deletes that backend's row", async () => {
    const driver = new MemoryIpvsDriver();
    const store = new MemoryStateStore();
    const { gorb } = makeGorb({ driver, store });
    const web = (host: string, backends: string[]) => [
      { id: "web", fields: new Map<string, unknown>([["host", host], ["port", 80]]), backends: backends.map((id, i) => ({ id, fields: new Map<string, unknown>([["host", `10.1.0.${i + 1}`]]) })) },
    ];
    expect((await gorb.apply(web("10.0.0.1", ["b1", "b2"]))).ok).toBe(true);
    await gorb.createBackend("web", "api", { host: "10.1.0.9" });
    expect((await gorb.apply(web("10.0.0.2", ["b1"]))).ok).toBe(true);
    expect([...store.backends.keys()].sort()).toEqual(["web/api", "web/b1"]);
    const again = restarted(driver, store);
    await again.gorb.restore(store.load());
    expect((await again.gorb.getService("web")).backends).toEqual(["api", "b1"]);
  });

  describe("an apply on a store that stages", () => {
    /** 20 services x 5 backends, as readServices gives them. */
    const declared = () =>
      Array.from({ length: 20 }, (_, i) => ({
        id: `s${i}`,
        fields: new Map<string, unknown>([["host", `10.0.${i}.1`], ["port", 80]]),
        backends: Array.from({ length: 5 }, (_, j) => ({ id: `b${j}`, fields: new Map<string, unknown>([["host", `10.1.${i}.${j + 1}`]]) })),
      }));

    /** A memory driver whose batches wait for `open()`, so a test can look while the kernel batch is under way. */
    class GatedDriver extends MemoryIpvsDriver {
      #open: () => void = () => {};
      #gate = new Promise<void>((resolve) => {
        this.#open = resolve;
      });
      batches = 0;
      open(): void {
        this.#open();
      }
      override async apply(ops: readonly IpvsOp[]): Promise<ApplyResult> {
        this.batches++;
        await this.#gate;
        return super.apply(ops);
      }
    }

    test("its rows are written while its kernel batch runs, and made durable once the batch worked", async () => {
      const store = new StagingMemoryStore();
      const driver = new GatedDriver();
      const { gorb } = makeGorb({ store, driver });
      const applying = gorb.apply(declared());
      for (let i = 0; i < 50 && (driver.batches === 0 || store.stagings.length === 0); i++) await new Promise<void>((r) => setImmediate(r));
      expect(driver.batches).toBe(1);
      expect(store.stagings.map((x) => x.ended)).toEqual(["open"]);
      expect(store.commits).toHaveLength(0);
      driver.open();
      expect((await applying).ok).toBe(true);
      expect(store.stagings.map((x) => x.ended)).toEqual(["committed"]);
      expect(store.commits).toHaveLength(1);
      expect([store.services.size, store.backends.size]).toEqual([20, 100]);
    });

    test("a change the kernel refuses: the staged rows are dropped, and the rest is committed without it", async () => {
      const store = new StagingMemoryStore();
      const { gorb, driver } = makeGorb({ store });
      driver.failNext("add-destination", "ENOMEM");
      const report = await gorb.apply(declared());
      expect(report.changes.filter((c) => c.status === "failed")).toHaveLength(1);
      expect(store.stagings.map((x) => x.ended)).toEqual(["aborted"]);
      expect(store.commits).toHaveLength(1);
      expect([store.services.size, store.backends.size]).toEqual([20, 99]);
      const failed = report.changes.find((c) => c.status === "failed");
      expect(store.backends.has(`${failed?.service}/${failed?.backend}`)).toBe(false);
    });

    for (const where of ["staging", "committing"] as const) {
      test(`a store that fails while ${where} answers 503, and the apply is undone in memory and in the kernel`, async () => {
        const store = new StagingMemoryStore();
        const { gorb, driver } = makeGorb({ store });
        if (where === "staging") store.failNextStage("No space left on device");
        else store.failNextStagedCommit("No space left on device");
        const error = await gorb.apply(declared()).catch((e: unknown) => e);
        expect([(error as GorbError).status, (error as GorbError).code]).toEqual([503, "UNAVAILABLE"]);
        expect(gorb.listServices()).toEqual([]);
        expect(driver.peek()).toEqual([]);
        expect(store.load()).toEqual({ services: [], backends: [] });
        expect(store.stagings.map((x) => x.ended)).toEqual(where === "staging" ? [] : ["committed"]);
      });
    }
  });

  test("a refused change commits nothing; health updates commit nothing", async () => {
    const store = new MemoryStateStore();
    const { gorb, health } = makeGorb({ store });
    await gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await gorb.createBackend("web", "b1", { host: "10.1.0.1" });
    const before = store.commits.length;
    await expect(gorb.createService("web", { port: 81 })).rejects.toThrow("already exists");
    await expect(gorb.updateBackend("web", "b1", { weight: -1 })).rejects.toThrow("weight");
    health.report("web", "b1", "down");
    await gorb.idle();
    expect(store.commits.length).toBe(before);
  });

  test("a failed save answers 503 and undoes the change in memory and in the kernel", async () => {
    const store = new MemoryStateStore();
    const { gorb, driver, vip, logger } = makeGorb({ store });
    store.failNext("No space left on device");
    const error = await gorb.createService("web", { host: "10.0.0.1", port: 80 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GorbError);
    expect([(error as GorbError).status, (error as GorbError).code]).toEqual([503, "UNAVAILABLE"]);
    expect((error as Error).message).toStartWith("the change could not be saved to memory:state (No space left on device) and was undone");
    expect(logger.lines).toContain("error cannot save the state to memory:state: No space left on device");
    expect(gorb.listServices()).toEqual([]);
    expect(driver.peek()).toEqual([]);
    expect(vip.addresses()).toEqual([]);
    expect(store.load().services).toEqual([]);
    // The store writes again (the probe works): the next change is accepted and saved.
    await gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await gorb.createBackend("web", "b1", { host: "10.1.0.1" });
    expect(store.load().services.map((s) => s.id)).toEqual(["web"]);
    expect(store.load().backends.map((b) => b.id)).toEqual(["b1"]);
  });
});

describe("restore", () => {
  test("a restarted gorb shows the same state, and a kernel that matches is not written at all", async () => {
    const { gorb, driver, store } = await populated();
    const before = await apiState(gorb);
    await gorb.close();
    driver.clearWrites();
    const again = restarted(driver, store);
    const report = await again.gorb.restore(store.load());
    expect(report).toEqual({ services: 2, backends: 3, dropped: [], repairs: [], unknown: [], removedUnsaved: [], removedDeleted: [] });
    expect(driver.writes()).toEqual([]);
    expect(await apiState(again.gorb)).toEqual(before);
    // Health checks restart from "unknown" for every backend, under new watch ids.
    expect([...again.health.targets.keys()].map((id) => id.replace(/#\d+$/, "")).sort()).toEqual(["web/b1", "web/b2", "web/b3"]);
    // The fwmark service registers nothing, and withdraws what its id may hold from when it had a VIP.
    expect(again.discovery.calls).toEqual([
      ["expose", { id: "web", address: "10.0.0.1", port: 80, protocol: "tcp" }],
      ["remove", "marked"],
    ]);
    expect(again.gorb.reconcileCounters()).toEqual({ runs: 1, repairs: 0, failures: 0 });
  });

  test("only what differs is repaired, in place; services gorb does not manage are left alone", async () => {
    const { gorb, driver, store } = await populated();
    await gorb.close();
    await driver.addService({ key: FOREIGN, scheduler: "rr", flags: driver.peek()[0]!.service.flags, timeout: 0, netmask: 32, pe: null });
    const web = driver.peek().find((s) => "port" in s.service.key && s.service.key.port === 80)!;
    await driver.updateService({ ...web.service, scheduler: "wlc" });
    await driver.deleteDestination(KEY, { family: "inet", address: "10.1.0.1", port: 80 });
    const b2 = web.destinations.find((d) => d.address === "10.1.0.2")!;
    await driver.updateDestination(KEY, { ...b2, upperThreshold: 99 });
    await driver.addDestination(KEY, { ...b2, address: "10.1.0.99", port: 80 });
    await driver.deleteService({ family: "inet", fwmark: 7 });
    driver.clearWrites();

    const again = restarted(driver, store);
    const report = await again.gorb.restore(store.load());
    expect(report.repairs).toEqual([
      { service: "web", backend: null, reason: "tcp 10.0.0.1:80: scheduler wlc in IPVS, want rr", status: "done" },
      { service: "web", backend: "b1", reason: "10.1.0.1:80 is missing from IPVS", status: "done" },
      { service: "web", backend: "b2", reason: "10.1.0.2:8080: upper threshold 99 in IPVS, want 10", status: "done" },
      { service: "marked", backend: null, reason: "fwmark 7 is missing from IPVS", status: "done" },
    ]);
    // 10.1.0.99, which the saved state does not know, is reported and left serving (see restore-unknown.test.ts).
    expect(report.unknown).toEqual(['10.1.0.99:80 in service "web"']);
    expect(driver.writes().map((w) => w.op)).toEqual(["update-service", "add-destination", "update-destination", "add-service"]);
    expect(driver.peek().map((s) => s.service.key)).toContainEqual(FOREIGN);
    // b1 was missing: it comes back at its configured weight.
    expect((await again.gorb.getBackend("web", "b1")).effective_weight).toBe(50);
    expect(again.gorb.reconcileCounters()).toEqual({ runs: 1, repairs: 4, failures: 0 });
  });

  test("a destination the kernel has keeps its weight until the first check; a 'none' pulse gets its configured weight", async () => {
    const { gorb, driver, store, health } = await populated();
    health.report("web", "b1", "down"); // drained to 0 before the crash
    await gorb.idle();
    await gorb.close();
    const b3 = driver.peek()[0]!.destinations.find((d) => d.address === "10.1.0.3")!;
    await driver.updateDestination(KEY, { ...b3, weight: 3 }); // changed behind gorb's back
    driver.clearWrites();

    const again = restarted(driver, store);
    await again.gorb.restore(store.load());
    expect((await again.gorb.getBackend("web", "b1")).effective_weight).toBe(0);
    expect((await again.gorb.getBackend("web", "b3")).effective_weight).toBe(100);
    // Only b3, whose weight someone changed, is written; b1 stays drained, b2 is untouched.
    expect(driver.writes()).toEqual([
      {
        op: "update-destination",
        service: KEY,
        destination: { family: "inet", address: "10.1.0.3", port: 80, forward: "nat", weight: 100, upperThreshold: 0, lowerThreshold: 0, tunnel: null },
      },
    ]);
    again.health.report("web", "b1", "up", { samples: 1, samplesOk: 1 });
    await again.gorb.idle();
    expect((await again.gorb.getBackend("web", "b1")).effective_weight).toBe(50);
  });

  test("gorb's VIP claims survive a restart: the address is removed with the last service that uses it", async () => {
    const { gorb, driver, store, vip } = await populated();
    expect(vip.addresses()).toEqual(["10.0.0.1"]);
    await gorb.close();
    const interfaceNow = new MemoryVipManager(vip.addresses());
    const again = restarted(driver, store, interfaceNow);
    await again.gorb.restore(store.load());
    await again.gorb.deleteService("web");
    expect(interfaceNow.addresses()).toEqual([]);
  });

  /** A store holding rows that do not read back: web/b1 (weight -5), the service "bad", and an orphan gone/b1. */
  function unreadableRows(store: MemoryStateStore): MemoryStateStore {
    store.commit({
      putServices: [
        { id: "web", source: "api", fields: { host: "10.0.0.1", port: 80 }, key: KEY, vip: false },
        { id: "bad", source: "api", fields: { port: 80, method: "nope" }, key: { ...KEY, port: 81 }, vip: false },
      ],
      deleteServices: [],
      putBackends: [
        { service: "web", id: "b1", source: "api", fields: { host: "10.1.0.1", weight: -5 }, address: { address: "10.1.0.1", family: "inet" } },
        { service: "web", id: "b2", source: "api", fields: { host: "10.1.0.2" }, address: { address: "10.1.0.2", family: "inet" } },
        { service: "gone", id: "b1", source: "api", fields: { host: "10.1.0.1" }, address: { address: "10.1.0.1", family: "inet" } },
      ],
      deleteBackends: [],
    });
    return store;
  }

  test("a saved row that no longer reads back is set aside in the store (kept, never read back), with an error naming it", async () => {
    const store = unreadableRows(new MemoryStateStore());
    const { gorb, logger } = makeGorb({ store });
    const report = await gorb.restore(store.load());
    expect(report.dropped).toEqual([
      'backend "b1" of service "web" ({"host":"10.1.0.1","weight":-5}): weight: must be 0-2147483647, got -5',
      'service "bad" ({"port":80,"method":"nope"}): method: must be one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos, got "nope"',
    ]);
    expect(logger.lines.filter((l) => l.startsWith("error cannot restore"))).toEqual([
      'error cannot restore backend "b1" of service "web" ({"host":"10.1.0.1","weight":-5}) (set aside in memory:state (table set_aside), not restored): weight: must be 0-2147483647, got -5',
      'error cannot restore service "bad" ({"port":80,"method":"nope"}) (set aside in memory:state (table set_aside), not restored): method: must be one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos, got "nope"',
    ]);
    expect(gorb.listServices()).toEqual(["web"]);
    expect(store.load().services.map((s) => s.id)).toEqual(["web"]);
    expect(store.load().backends.map((b) => `${b.service}/${b.id}`)).toEqual(["web/b2"]);
    // Kept as they were saved, the orphan included.
    expect(store.setAsideRows.map(({ row, saved }) => [row.service, row.backend, JSON.stringify(saved.fields)])).toEqual([
      ["web", "b1", '{"host":"10.1.0.1","weight":-5}'],
      ["bad", null, '{"port":80,"method":"nope"}'],
      ["gone", "b1", '{"host":"10.1.0.1"}'],
    ]);
    expect(store.setAsideRows[2]?.row.why).toBe("its service has no row");
  });

  test("rows that cannot be set aside (the store fails) are removed as before, and the failure is logged", async () => {
    const store = unreadableRows(new MemoryStateStore());
    const setAside = store.setAside.bind(store);
    store.setAside = () => {
      throw new Error("disk I/O error");
    };
    const { gorb, logger } = makeGorb({ store });
    await gorb.restore(store.load());
    expect(logger.lines.filter((l) => l.includes("set aside") || l.startsWith("error cannot restore")).map((l) => l.split(": ")[0])).toEqual([
      "error restore",
      'error cannot restore backend "b1" of service "web" ({"host":"10.1.0.1","weight":-5}) (removed from the saved state)',
      'error cannot restore service "bad" ({"port":80,"method":"nope"}) (removed from the saved state)',
    ]);
    expect(logger.lines).toContain("error restore: cannot set aside the rows it cannot read in memory:state (disk I/O error); removing them");
    expect(store.load().services.map((s) => s.id)).toEqual(["web"]);
    expect(store.load().backends.map((b) => `${b.service}/${b.id}`)).toEqual(["web/b2"]);
    expect(store.setAsideRows).toEqual([]);
    store.setAside = setAside;
  });

  test("restore must come first", async () => {
    const { gorb } = makeGorb();
    await gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await expect(gorb.restore({ services: [], backends: [] })).rejects.toThrow("restore() must run before any service is created");
  });
});

describe("reconcile", () => {
  test("a service deleted behind gorb's back comes back as gorb knows it; a second pass finds nothing", async () => {
    const { gorb, driver } = await populated();
    const expected = driver.peek();
    await driver.flush(); // ipvsadm -C
    await driver.addService({ ...expected[0]!.service, key: FOREIGN }); // someone else's service appears meanwhile
    const report = await gorb.reconcile();
    expect(report.repairs.map((r) => `${r.service}${r.backend === null ? "" : `/${r.backend}`}: ${r.reason}`)).toEqual([
      "web: tcp 10.0.0.1:80 is missing from IPVS",
      "web/b1: 10.1.0.1:80 is missing from IPVS",
      "web/b2: 10.1.0.2:8080 is missing from IPVS",
      "web/b3: 10.1.0.3:80 is missing from IPVS",
      "marked: fwmark 7 is missing from IPVS",
    ]);
    const isForeign = (key: ServiceKey) => "protocol" in key && key.protocol === "udp";
    expect(driver.peek().filter((s) => !isForeign(s.service.key))).toEqual(expected);
    expect(driver.peek().filter((s) => isForeign(s.service.key))).toHaveLength(1);
    expect((await gorb.reconcile()).repairs).toEqual([]);
    expect(gorb.reconcileCounters()).toEqual({ runs: 2, repairs: 5, failures: 0 });
  });

  test("a repair the kernel refuses is reported and counted as a failure, and retried next time", async () => {
    const { gorb, driver, logger } = await populated();
    await driver.deleteService({ family: "inet", fwmark: 7 });
    driver.failNext("add-service", "ENOMEM");
    const report = await gorb.reconcile();
    expect(report.repairs).toEqual([
      { service: "marked", backend: null, reason: "fwmark 7 is missing from IPVS", status: "failed", error: expect.stringContaining("ENOMEM") },
    ]);
    expect(logger.lines.some((l) => l.startsWith('error reconcile: service "marked": fwmark 7 is missing from IPVS; cannot repair:'))).toBe(true);
    expect((await gorb.reconcile()).repairs.map((r) => r.status)).toEqual(["done"]);
    expect(gorb.reconcileCounters()).toEqual({ runs: 2, repairs: 1, failures: 1 });
  });

  test("a refused service with backends is one failure of the reconcile: its backends' 'no such service' is no reason to read the table again", async () => {
    // The kernel refuses the service's add (ENOMEM): adding its destinations then fails with ESRCH, which is also
    // what a table changed since the read gives. Taken for that, the reconcile read again and tried the refused add
    // a second time, reporting the service failed and then done, and an event stream (BGP) saw it fail for nothing.
    const { gorb, driver } = await populated();
    await driver.deleteService({ family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 });
    driver.failNext("add-service", "ENOMEM");
    const report = await gorb.reconcile();
    expect(report.repairs.map((r) => `${r.service}${r.backend === null ? "" : `/${r.backend}`}: ${r.status}`)).toEqual([
      "web: failed",
      "web/b1: failed",
      "web/b2: failed",
      "web/b3: failed",
    ]);
    expect(driver.peek().map((s) => s.service.key)).toEqual([{ family: "inet", fwmark: 7 }]);
    expect(gorb.reconcileCounters()).toEqual({ runs: 1, repairs: 0, failures: 4 });
    expect((await gorb.reconcile()).repairs.map((r) => r.status)).toEqual(["done", "done", "done", "done"]);
  });

  test("ipvsadm -C between the read of the services and of their destinations: the table is read again, not a failure", async () => {
    // The kernel dumps services and destinations apart, and a service gone by then dumps no destinations (no
    // error): the reconcile sees services without destinations, and adding those fails (no such service).
    class TornRead extends MemoryIpvsDriver {
      tear = false;
      override async snapshot() {
        const table = await super.snapshot();
        if (!this.tear) return table;
        this.tear = false;
        await this.flush();
        return table.map((entry) => ({ ...entry, destinations: [] }));
      }
    }
    const driver = new TornRead();
    const { gorb, logger } = makeGorb({ driver });
    await gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await gorb.createBackend("web", "b1", { host: "10.1.0.1", pulse: { type: "none" } });
    await gorb.createBackend("web", "b2", { host: "10.1.0.2", pulse: { type: "none" } });
    const expected = driver.peek();
    driver.tear = true;
    const report = await gorb.reconcile();
    expect(driver.peek()).toEqual(expected);
    expect(report.repairs.map((r) => `${r.service}${r.backend === null ? "" : `/${r.backend}`}: ${r.status}`)).toEqual([
      "web: done",
      "web/b1: done",
      "web/b2: done",
    ]);
    expect(gorb.reconcileCounters()).toEqual({ runs: 1, repairs: 3, failures: 0 });
    expect(logger.lines.filter((l) => l.startsWith("error"))).toEqual([]);
    expect(logger.lines).toContain("info reconcile: the IPVS table changed while it was read (2 repairs no longer applied); reading it again");
  });

  test("a repair that fails again after the table was read again is a failure", async () => {
    const { gorb, driver } = await populated();
    await driver.deleteService({ family: "inet", fwmark: 7 });
    driver.failNext("add-service", "EEXIST", 2);
    const report = await gorb.reconcile();
    expect(report.repairs.map((r) => [r.service, r.status])).toEqual([["marked", "failed"]]);
    expect(gorb.reconcileCounters()).toEqual({ runs: 1, repairs: 0, failures: 1 });
  });

  test("/metrics counts reconciles, repairs and failures", async () => {
    const { gorb, driver, logger } = await populated();
    await driver.deleteService({ family: "inet", fwmark: 7 });
    await gorb.reconcile();
    const app = createApp({ gorb, logger });
    const text = await (await app.handle(new Request("http://gorb.test/metrics"))).text();
    expect(text).toContain("# TYPE gorb_reconcile_repairs_total counter\ngorb_reconcile_repairs_total 1\n");
    expect(text).toContain("\ngorb_reconcile_runs_total 1\n");
    expect(text).toContain("\ngorb_reconcile_failures_total 0\n");
  });
  test("a VIP gorb added and someone removed is put back and counted; an address gorb did not add is not", async () => {
    const vip = new MemoryVipManager(["10.0.0.2"]);
    const { gorb } = makeGorb({ vip });
    await gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await gorb.createService("other", { host: "10.0.0.2", port: 80 }); // the interface already had 10.0.0.2
    expect(vip.addresses()).toEqual(["10.0.0.1", "10.0.0.2"]);
    await vip.remove("10.0.0.1", "inet"); // ip addr del behind gorb's back
    await vip.remove("10.0.0.2", "inet");
    await gorb.reconcile();
    expect(vip.addresses()).toEqual(["10.0.0.1"]);
    expect(gorb.reconcileCounters()).toEqual({ runs: 1, repairs: 1, failures: 0 });
    await gorb.reconcile();
    expect(gorb.reconcileCounters()).toEqual({ runs: 2, repairs: 1, failures: 0 });
  });
});
