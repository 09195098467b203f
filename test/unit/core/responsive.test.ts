/**
 * Bulk work never holds the event loop for its whole length: a large apply, a large restore, a reconcile of many
 * services and the views of what they made let the event loop turn (the API's sockets, health checks' timers,
 * signals) while they work.
 */
import { describe, expect, test } from "bun:test";
import { createApp } from "../../../src/api/app.ts";
import { readServices, readServicesPaced } from "../../../src/config/services.ts";
import type { SavedBackend, SavedService } from "../../../src/core/state.ts";
import type { ApplyResult } from "../../../src/ipvs/driver.ts";
import type { MemoryIpvsDriver } from "../../../src/ipvs/memory-driver.ts";
import type { IpvsOp } from "../../../src/ipvs/types.ts";
import { Pacer } from "../../../src/pacer.ts";
import { stretchesDuring, turnsDuring, type Stretches } from "../../helpers/turns.ts";
import { makeGorb } from "./fakes.ts";
import { StagingMemoryStore } from "./memory-store.ts";

/**
 * The longest stretch of work a restore or a reconcile may do between two turns of the event loop (its Pacer's slice
 * is 10 ms). The bound is on the CPU time of a stretch, which a loaded machine does not lengthen (its wall-clock time
 * is in the message); with 10 ms slices the longest left are the garbage collector's, 15-35 ms.
 */
const MAX_STRETCH_MS = 60;

/** Writes the memory driver makes between two turns of the event loop (see batchesInChunks). */
const APPLY_CHUNK = 500;

/**
 * `driver`'s batches as the kernel driver runs them: in chunks, with a turn of the event loop between (it encodes in
 * paced slices and sends chunks over a socket); in memory a batch of 20,000 writes would be one block.
 */
function batchesInChunks(driver: MemoryIpvsDriver): void {
  const apply = driver.apply.bind(driver);
  driver.apply = async (ops: readonly IpvsOp[]): Promise<ApplyResult> => {
    const results: ApplyResult = [];
    for (let at = 0; at < ops.length; at += APPLY_CHUNK) {
      results.push(...(await apply(ops.slice(at, at + APPLY_CHUNK))));
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return results;
  };
}

/**
 * The kernel's table as `driver` has it now, handed over ready by its snapshot() from now on: read over a socket, the
 * kernel's table comes in many turns; in memory it is one block of copying.
 */
function keepTable(driver: MemoryIpvsDriver): void {
  const kept = driver.peek();
  driver.snapshot = async () => kept;
}

/**
 * The longest stretch without a turn is under MAX_STRETCH_MS of CPU, in one of at most three runs of `scenario` (each
 * from its own start, measuring the work with stretchesDuring). A pass of gorb's code that does not take turns makes
 * the same long stretch in every run; a pause of the garbage collector, which no pacer can split, lands in one run
 * now and then (one stretch of 50-70 ms of CPU in about one run of the file in three, the others under 40).
 */
async function expectShortStretches(scenario: () => Promise<Stretches>): Promise<void> {
  const seen: string[] = [];
  for (let run = 0; run < 3; run++) {
    const { cpu, wall } = await scenario();
    if ((cpu[0] ?? 0) < MAX_STRETCH_MS) return;
    seen.push(`${cpu.join(", ")} ms of CPU (${wall.join(", ")} ms of wall clock)`);
  }
  expect(seen, `longest stretches without a turn, in each of three runs: ${seen.join("; ")}`).toEqual([]);
}

/** `count` saved services at distinct addresses, each with `perService` backends (pulse none). */
function savedState(count: number, perService: number, vip: boolean): { services: SavedService[]; backends: SavedBackend[] } {
  const services: SavedService[] = [];
  const backends: SavedBackend[] = [];
  for (let i = 0; i < count; i++) {
    const address = `10.4.${Math.floor(i / 250)}.${(i % 250) + 1}`;
    services.push({ id: `s${i}`, source: "api", fields: { host: address, port: 80 }, key: { family: "inet", protocol: "tcp", address, port: 80 }, vip });
    for (let b = 0; b < perService; b++) {
      const host = `10.5.${b}.${(i % 250) + 1}`;
      backends.push({ service: `s${i}`, id: `b${b}`, source: "api", fields: { host, pulse: { type: "none" } }, address: { address: host, family: "inet" } });
    }
  }
  return { services, backends };
}

describe("bulk work yields to the event loop", () => {
  // 1,000 x 10: each phase of the apply (resolve, plan, edits, kernel batch, commit, effects) paces itself, and
  // 300 x 10 once compiled by earlier tests ran in two slices in all.
  test("an apply of 1,000 services x 10 backends", async () => {
    const { gorb } = makeGorb();
    const services: Record<string, unknown> = {};
    for (let s = 0; s < 1000; s++) {
      const backends: Record<string, unknown> = {};
      for (let b = 0; b < 10; b++) backends[`b${b}`] = { host: `10.1.${s % 250}.${b + 1 + 10 * Math.floor(s / 250)}`, pulse: { type: "none" } };
      services[`s${s}`] = { host: `10.2.${Math.floor(s / 250)}.${(s % 250) + 1}`, port: 80, backends };
    }
    const declared = readServices(services);
    expect(await turnsDuring(() => gorb.apply(declared))).toBeGreaterThan(0);
    expect(gorb.listServices()).toHaveLength(1000);
  });

  // POST /apply of 3,000 x 10 through the API, with a store that stages: the passes of the run over the 33,000
  // changes (their Txs, the changes' rows, the kernel batch's results, the weight events, the report) and the
  // answer's 5 MB of JSON take turns; when they did not, the longest stretches were 65-80 ms of CPU (the answer's
  // JSON.stringify alone about 50). Left, 25-40 ms: parsing the body (JSON.parse, one block of 15-20 ms), copying
  // the answer's bytes into one Blob, and phases each starting a slice of their own.
  test(`a POST /apply of 3,000 services x 10 backends: no stretch over ${MAX_STRETCH_MS} ms between turns, the report as JSON.stringify writes it`, async () => {
    await expectShortStretches(async () => {
      const store = new StagingMemoryStore();
      const { driver, gorb, logger } = makeGorb({ store });
      batchesInChunks(driver);
      const app = createApp({ gorb, logger });
      const services: Record<string, unknown> = {};
      for (let s = 0; s < 3000; s++) {
        const backends: Record<string, unknown> = {};
        for (let b = 0; b < 10; b++) backends[`b${b}`] = { host: `10.1.${s % 250}.${b + 1 + 10 * Math.floor(s / 250)}`, pulse: { type: "none" } };
        services[`s${s}`] = { host: `10.2.${Math.floor(s / 250)}.${(s % 250) + 1}`, port: 80, backends };
      }
      const body = JSON.stringify({ services });
      const post = () => app.handle(new Request("http://gorb.test/apply", { method: "POST", body }));
      // Elysia compiles a route at its first request: a dry run does it (and changes nothing).
      expect((await app.handle(new Request("http://gorb.test/apply?dry_run=true", { method: "POST", body: '{"services": {}}' }))).status).toBe(200);
      Bun.gc(true);
      let text = "";
      const stretches = await stretchesDuring(async () => (text = await (await post()).text()));
      const report = JSON.parse(text) as { ok: boolean; changes: { status: string }[] };
      expect(text).toBe(JSON.stringify(report, null, "\t"));
      expect(report.ok).toBe(true);
      expect(report.changes).toHaveLength(33000);
      expect(driver.peek()).toHaveLength(3000);
      expect(store.stagings.map((s) => [s.changes.putServices.length, s.changes.putBackends.length, s.ended])).toEqual([[3000, 30000, "committed"]]);
      return stretches;
    });
  }, 120_000);

  test("checking a POST /apply body of 1,000 services x 10 backends; the result is readServices'", async () => {
    const services: Record<string, unknown> = {};
    for (let s = 0; s < 1000; s++) {
      const backends: Record<string, unknown> = {};
      for (let b = 0; b < 10; b++) backends[`b${b}`] = { host: `10.1.${s % 250}.${b + 1 + 10 * Math.floor(s / 250)}`, pulse: { type: "none" } };
      services[`s${s}`] = { host: `10.2.${Math.floor(s / 250)}.${(s % 250) + 1}`, port: 80, backends };
    }
    // A clock that moves 1 ms at each reading, so a 5 ms slice is used up every 5 services (about 200 turns) on any
    // machine: with the real clock, a fast machine checked all 1,000 within one 10 ms slice (about 12 ms here, in one
    // or two slices) and never turned.
    let clock = 0;
    const pacer = new Pacer(5, () => clock++);
    let paced: Awaited<ReturnType<typeof readServicesPaced>> = [];
    expect(await turnsDuring(async () => (paced = await readServicesPaced(services, ["services"], pacer)))).toBeGreaterThan(100);
    expect(paced).toEqual(readServices(services));
    await expect(readServicesPaced({ web: { port: 70000 } })).rejects.toThrow("services.web.port: must be 1-65535, got 70000");
  });

  // 20,000: reading the rows back (the paced part) then takes several slices of 10 ms even on a fast machine.
  test("a restore of 1 service x 20,000 backends", async () => {
    const { gorb } = makeGorb();
    const service: SavedService = {
      id: "web",
      source: "api",
      fields: { host: "10.0.0.1", port: 80 },
      key: { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 },
      vip: false,
    };
    const backends: SavedBackend[] = [];
    for (let i = 0; i < 20000; i++) {
      const address = `10.3.${Math.floor(i / 250)}.${(i % 250) + 1}`;
      backends.push({ service: "web", id: `b${i}`, source: "api", fields: { host: address, pulse: { type: "none" } }, address: { address, family: "inet" } });
    }
    expect(await turnsDuring(() => gorb.restore({ services: [service], backends }))).toBeGreaterThan(0);
    expect((await gorb.getService("web")).backends).toHaveLength(20000);
    // Then every view of them (GET /metrics, GET /service?detail=true), built in slices too.
    let views: Awaited<ReturnType<typeof gorb.listServicesDetail>> = [];
    expect(await turnsDuring(async () => (views = await gorb.listServicesDetail()))).toBeGreaterThan(0);
    expect(views[0]?.backend_details).toHaveLength(20000);
    expect(views[0]?.backend_details[19999]?.id).toBe("b9999");
  }, 60_000);

  // Only the backends' rows were read back in slices: 20,000 services without backends never let the loop turn.
  test("a restore of 20,000 services without backends", async () => {
    const { gorb } = makeGorb();
    const { services, backends } = savedState(20000, 0, false);
    expect(await turnsDuring(() => gorb.restore({ services, backends }))).toBeGreaterThan(0);
    expect(gorb.listServices()).toHaveLength(20000);
  }, 60_000);

  // A restart (IPVS kept its table, the VIP interface did not keep its addresses): every pass of the restore over
  // the services (the table read into a map, adding them to the desired state, the VIP claims, gorb's view of the
  // kernel, the unknown destinations, quorum, the plan, the VIPs put back, health checks and discovery) takes turns.
  // When only the saved rows' read-back did, the rest was one stretch of 140-300 ms of CPU.
  for (const [services, perService, vip] of [
    [20000, 0, false],
    [20000, 0, true],
    [5000, 4, true],
  ] as const) {
    test(`a restart with ${services} services x ${perService} backends${vip ? " and a VIP each" : ""}: no stretch over ${MAX_STRETCH_MS} ms between turns`, async () => {
      const saved = savedState(services, perService, vip);
      await expectShortStretches(async () => {
        const { driver, gorb: before } = makeGorb();
        await before.restore(saved); // what the kernel kept
        keepTable(driver);
        const { gorb, vip: vips } = makeGorb({ driver });
        Bun.gc(true); // the first restore's garbage is collected now, not during the one measured
        const stretches = await stretchesDuring(() => gorb.restore(saved));
        expect(gorb.listServices()).toHaveLength(services);
        expect(vips.addresses()).toHaveLength(vip ? services : 0);
        return stretches;
      });
    }, 120_000);
  }

  // A first start (or a host rebooted: IPVS is empty): every service and backend is a repair of one batch, whose
  // results are recorded in gorb's view, reported, logged and published in slices too (with 2 backends each they were
  // one stretch of 100-160 ms of CPU).
  for (const [services, perService] of [
    [20000, 0],
    [20000, 2],
  ] as const) {
    test(`a restore of ${services} services x ${perService} backends into an empty kernel: no stretch over ${MAX_STRETCH_MS} ms between turns`, async () => {
      const saved = savedState(services, perService, true);
      await expectShortStretches(async () => {
        const { driver, gorb, vip } = makeGorb();
        batchesInChunks(driver);
        Bun.gc(true);
        let repairs = 0;
        const stretches = await stretchesDuring(async () => (repairs = (await gorb.restore(saved)).repairs.length));
        expect(repairs).toBe(services * (1 + perService));
        expect(driver.peek()).toHaveLength(services);
        expect(vip.addresses()).toHaveLength(services);
        return stretches;
      });
    }, 120_000);
  }

  // The periodic reconcile (and POST /reconcile) reads the table and compares every service with it: gorb's view of
  // the kernel, the plan, the repairs and the VIPs put back take turns (they were one stretch of 100-120 ms of CPU).
  for (const drift of [false, true]) {
    const what = drift ? "1,000 services deleted, 1,000 changed, 1,000 weights changed and 1,000 VIPs gone behind gorb's back" : "the kernel matching";
    test(`a reconcile of 20,000 services x 2 backends with a VIP each, ${what}: no stretch over ${MAX_STRETCH_MS} ms between turns`, async () => {
      await expectShortStretches(async () => {
        const { driver, gorb, vip } = makeGorb();
        await gorb.restore(savedState(20000, 2, true));
        batchesInChunks(driver);
        const table = driver.peek();
        if (drift) {
          for (const { service } of table.slice(0, 1000)) await driver.deleteService(service.key);
          for (const { service } of table.slice(1000, 2000)) await driver.updateService({ ...service, scheduler: "sh" });
          for (const { service, destinations } of table.slice(2000, 3000)) await driver.updateDestination(service.key, { ...destinations[0]!, weight: 5 });
          for (const { service } of table.slice(3000, 4000)) if ("address" in service.key) await vip.remove(service.key.address, "inet");
        }
        keepTable(driver);
        Bun.gc(true);
        let repairs = 0;
        const stretches = await stretchesDuring(async () => (repairs = (await gorb.reconcile()).repairs.length));
        expect(repairs).toBe(drift ? 1000 * 3 + 1000 + 1000 : 0);
        expect(driver.peek()).toEqual(table);
        expect(vip.addresses()).toHaveLength(20000);
        return stretches;
      });
    }, 120_000);
  }

  // The reconcile builds gorb's view of the kernel aside, in slices, and takes it whole: a request served between two
  // slices sees the previous view, never one only partly read (which would show the services not read yet as missing
  // from the kernel to GET /service's in_kernel, and to the BGP controller, which announces only what the kernel has).
  test("a reconcile of 20,000 services: requests served while it reads the table still see every service in the kernel", async () => {
    const { driver, gorb } = makeGorb();
    await gorb.restore(savedState(20000, 0, false));
    // The table read takes at least 100 ms to go through (0.5 ms every 100 services, as a slow kernel read would),
    // so the reconcile takes turns while it builds its view on any machine: a fast one read 20,000 services in two.
    const kept = driver.peek();
    Object.defineProperty(kept, Symbol.iterator, {
      value: function* (this: typeof kept) {
        for (let i = 0; i < this.length; i++) {
          if (i % 100 === 0) for (const end = performance.now() + 0.5; performance.now() < end; );
          yield this[i];
        }
      },
    });
    driver.snapshot = async () => kept;
    const seen: Promise<boolean>[] = [];
    let reconciling = true;
    const look = (): void => {
      seen.push(gorb.getService("s19999").then((s) => s.in_kernel === true));
      if (reconciling) setImmediate(look);
    };
    setImmediate(look);
    await gorb.reconcile();
    reconciling = false;
    const inKernel = await Promise.all(seen);
    expect(inKernel.length).toBeGreaterThan(2);
    expect(inKernel.filter((yes) => !yes)).toHaveLength(0);
  }, 60_000);
});
