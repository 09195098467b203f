/**
 * Restore after an unsaved period (issue 15 #6): destinations the kernel serves in a gorb service that the
 * saved state does not know are never deleted silently: reported and left (default), adopted as API backends
 * with pulse none, or removed, as `--unknown-destinations` says. And restore is linear: 1 service with 20,000
 * backends is read back and checked in one kernel batch.
 */
import { describe, expect, test } from "bun:test";
import { MemoryIpvsDriver } from "../../../src/ipvs/memory-driver.ts";
import type { ServiceKey } from "../../../src/ipvs/types.ts";
import type { SavedBackend, SavedState } from "../../../src/core/state.ts";
import { makeGorb } from "./fakes.ts";
import { MemoryStateStore } from "./memory-store.ts";

const KEY: ServiceKey = { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 };

/** A gorb whose state knows web/b1; the kernel also serves 10.1.0.9:80 (added while the disk was full). */
async function unsaved() {
  const driver = new MemoryIpvsDriver();
  const store = new MemoryStateStore();
  const first = makeGorb({ driver, store });
  await first.gorb.createService("web", { host: "10.0.0.1", port: 80 });
  await first.gorb.createBackend("web", "b1", { host: "10.1.0.1" });
  await first.gorb.close();
  const dest = driver.peek()[0]!.destinations[0]!;
  await driver.addDestination(KEY, { ...dest, address: "10.1.0.9", weight: 30 });
  driver.clearWrites();
  return { driver, store };
}

const served = (driver: MemoryIpvsDriver) => driver.peek()[0]!.destinations.map((d) => `${d.address}=${d.weight}`);

describe("restore with destinations the state does not know", () => {
  test("report (the default): logged, in the report, left serving, and the periodic reconcile leaves it too", async () => {
    const { driver, store } = await unsaved();
    const { gorb, logger } = makeGorb({ driver, store });
    const report = await gorb.restore(store.load());
    expect(report.unknown).toEqual(['10.1.0.9:80 in service "web"']);
    expect(report.repairs).toEqual([]);
    expect(logger.lines).toContain(
      'warn restore: IPVS serves 10.1.0.9:80 in service "web", which the saved state does not know; leaving it (--unknown-destinations report)',
    );
    expect(served(driver)).toEqual(["10.1.0.1=100", "10.1.0.9=30"]);
    expect((await gorb.reconcile()).repairs).toEqual([]);
    expect(driver.writes()).toEqual([]);
    expect(gorb.listServices()).toEqual(["web"]);
    expect((await gorb.getService("web")).backends).toEqual(["b1"]);
    // Creating a backend on that destination takes it over in place (no EEXIST, connections kept).
    await gorb.createBackend("web", "b9", { host: "10.1.0.9", weight: 30 });
    expect(driver.writes()).toEqual([]);
    expect((await gorb.getService("web")).backends).toEqual(["b1", "b9"]);
  });

  test("adopt: taken as an API-owned backend with pulse none at its kernel weight, and saved", async () => {
    const { driver, store } = await unsaved();
    const { gorb, health } = makeGorb({ driver, store });
    const report = await gorb.restore(store.load(), { unknownDestinations: "adopt" });
    expect(report.unknown).toEqual(['10.1.0.9:80 in service "web"']);
    expect(driver.writes()).toEqual([]);
    expect((await gorb.getService("web")).backends).toEqual(["10.1.0.9:80", "b1"]);
    const adopted = await gorb.getBackend("web", "10.1.0.9:80");
    expect([adopted.options.weight, adopted.options.pulse.type, adopted.effective_weight]).toEqual([30, "none", 30]);
    expect(store.backends.get("web/10.1.0.9:80")?.source).toBe("api");
    expect(health.target("web", "10.1.0.9:80").options.type).toBe("none");
  });

  test("remove: deleted, as a repair", async () => {
    const { driver, store } = await unsaved();
    const { gorb } = makeGorb({ driver, store });
    const report = await gorb.restore(store.load(), { unknownDestinations: "remove" });
    expect(report.repairs.map((r) => r.reason)).toEqual(["10.1.0.9:80 in tcp 10.0.0.1:80 is not one of gorb's backends"]);
    expect(served(driver)).toEqual(["10.1.0.1=100"]);
  });
});

describe("restore with a backend row that no longer reads", () => {
  // b2's row has a field this version refuses (after a downgrade, say): it is set aside, and what the kernel serves
  // for it is left alone (README), not taken for a destination the saved state does not know.
  for (const mode of ["report", "adopt", "remove"] as const) {
    test(`--unknown-destinations ${mode}: its destination stays serving, neither adopted nor removed, nor reported as unknown`, async () => {
      const driver = new MemoryIpvsDriver();
      const first = makeGorb({ driver });
      await first.gorb.createService("web", { host: "10.0.0.1", port: 80 });
      await first.gorb.createBackend("web", "b1", { host: "10.1.0.1" });
      await first.gorb.createBackend("web", "b2", { host: "10.1.0.2", port: 8080, weight: 40 });
      await first.gorb.close();
      driver.clearWrites();
      const state: SavedState = {
        services: [{ id: "web", source: "api", fields: { host: "10.0.0.1", port: 80 }, key: KEY, vip: false }],
        backends: [
          { service: "web", id: "b1", source: "api", fields: { host: "10.1.0.1" }, address: { address: "10.1.0.1", family: "inet" } },
          { service: "web", id: "b2", source: "api", fields: { host: "10.1.0.2", port: 8080, weight: -40 }, address: { address: "10.1.0.2", family: "inet" } },
        ],
      };
      const store = new MemoryStateStore();
      const { gorb } = makeGorb({ driver, store });
      const report = await gorb.restore(state, { unknownDestinations: mode });
      expect(report.dropped).toHaveLength(1);
      expect([report.unknown, report.repairs]).toEqual([[], []]);
      expect(driver.writes()).toEqual([]);
      expect((await gorb.getService("web")).backends).toEqual(["b1"]);
      expect(store.backends.size).toBe(0);
      expect((await gorb.reconcile()).repairs).toEqual([]);
      expect(served(driver)).toEqual(["10.1.0.1=100", "10.1.0.2=40"]);
    });
  }
});

describe("restore scales linearly", () => {
  test("1 service x 20,000 backends: one table read and one kernel batch", async () => {
    const n = 20_000;
    const backends: SavedBackend[] = [];
    for (let i = 0; i < n; i++) {
      const address = `10.100.${i >> 8}.${i & 255}`;
      backends.push({ service: "big", id: `b${i}`, source: "api", fields: { host: address, pulse: { type: "none" } }, address: { address, family: "inet" } });
    }
    const state: SavedState = { services: [{ id: "big", source: "api", fields: { host: "10.0.0.1", port: 80 }, key: KEY, vip: false }], backends };
    const driver = new MemoryIpvsDriver();
    let batches = 0;
    let snapshots = 0;
    const apply = driver.apply.bind(driver);
    const snapshot = driver.snapshot.bind(driver);
    driver.apply = (ops) => {
      batches++;
      return apply(ops);
    };
    driver.snapshot = () => {
      snapshots++;
      return snapshot();
    };
    const { gorb } = makeGorb({ driver });
    const report = await gorb.restore(state);
    expect([report.services, report.backends, report.repairs.length]).toEqual([1, n, n + 1]);
    expect([batches, snapshots]).toEqual([1, 1]);
    expect(driver.peek()[0]?.destinations).toHaveLength(n);
    // A restart on that kernel writes nothing.
    const again = makeGorb({ driver });
    expect((await again.gorb.restore(state)).repairs).toEqual([]);
    expect(batches).toBe(1);
  }, 120_000); // counts calls, not time; the generous limit only keeps a loaded machine from failing it
});
