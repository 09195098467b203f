/**
 * A fleet node's kernel ledger (src/core/kernel-ledger.ts, fleet-ledger.db in its state directory), two nodes on
 * one real etcd, each a real Gorb over its own in-memory IPVS table and VIP interface: node B stops, A deletes a
 * backend (or a whole service) B had put in its kernel, and B, restarted with the same state directory and the same
 * kernel, removes it at restore instead of reporting it and leaving it serving; a destination, a service and a VIP
 * added to B's kernel by hand (not gorb's) are still reported or left alone as before.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { createApp } from "../../../src/api/app.ts";
import { EventBus } from "../../../src/core/events.ts";
import type { LedgerStore } from "../../../src/core/kernel-ledger.ts";
import type { RestoreReport } from "../../../src/core/restore-runner.ts";
import type { DestinationConfig, ServiceConfig } from "../../../src/ipvs/types.ts";
import { MemoryIpvsDriver } from "../../../src/ipvs/memory-driver.ts";
import { SqliteLedgerStore } from "../../../src/state/ledger-store.ts";
import { EtcdStateStore } from "../../../src/store/etcd-store.ts";
import { MemoryVipManager } from "../../helpers/memory-vip.ts";
import { makeGorb } from "../core/fakes.ts";
import { cleanupsAfterEach, etcdForFile, startEtcd } from "./etcd-process.ts";

const etcd = etcdForFile();
const cleanups = cleanupsAfterEach();
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

let prefixes = 0;

/** A node on `prefix` with its state directory, kernel and VIP interface (kept across its restarts). */
interface Host {
  readonly dir: string;
  readonly driver: MemoryIpvsDriver;
  readonly vip: MemoryVipManager;
}

function host(): Host {
  const dir = mkdtempSync(join(tmpdir(), "gorb-ledger-"));
  dirs.push(dir);
  return { dir, driver: new MemoryIpvsDriver(), vip: new MemoryVipManager() };
}

/** A disk that fills up: the ledger's records throw while `full`. */
class Disk {
  full = false;
  over(store: LedgerStore): LedgerStore {
    const check = () => {
      if (this.full) throw new Error("disk I/O error (SQLITE_FULL)");
    };
    return {
      location: store.location,
      load: () => store.load(),
      record: (entries) => {
        check();
        return store.record(entries);
      },
      forget: (entries) => store.forget(entries),
      origin: () => store.origin(),
      setOrigin: (origin) => store.setOrigin(origin),
    };
  }
}

/** Start a node on `h`: restore from etcd (the report is returned), follow it, answer the API. `stop()` ends it. */
async function node(h: Host, prefix: string, endpoint: string = etcd.endpoint, disk: Disk | null = null, noState = false) {
  // The node's name is its state directory's: its starts are recorded under it (PREFIX/restores/<node>).
  const store = new EtcdStateStore({ endpoints: [endpoint], prefix, timeoutMs: 1000, retryMs: 100, node: basename(h.dir) });
  // --no-state: no ledger.
  const ledger = noState ? null : SqliteLedgerStore.open(h.dir, prefix);
  const used = ledger === null ? {} : { ledger: disk === null ? ledger : disk.over(ledger) };
  const stack = makeGorb({ store, ...used, events: new EventBus(), driver: h.driver, vip: h.vip, vipInterface: "lo" });
  const report: RestoreReport = await stack.gorb.restore((await store.load()).state);
  store.sync(stack.gorb);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await store.close();
    await stack.gorb.close();
    ledger?.close();
  };
  cleanups.push(stop);
  const app = createApp({ gorb: stack.gorb, logger: stack.logger });
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await app.handle(new Request(`http://gorb.test${path}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) }));
    return { status: response.status, revision: store.committedRevision };
  };
  return { ...stack, store, report, call, stop };
}

const WEB = { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 } as const;
const BY_HAND: DestinationConfig = { family: "inet", address: "10.1.0.99", port: 80, forward: "nat", weight: 10, upperThreshold: 0, lowerThreshold: 0, tunnel: null };
const FOREIGN: ServiceConfig = {
  key: { family: "inet", protocol: "udp", address: "10.0.0.53", port: 53 },
  scheduler: "rr",
  flags: { persistent: false, onePacket: false, sched1: false, sched2: false, sched3: false },
  timeout: 0,
  netmask: 32,
  pe: null,
};

/** The destinations (address:port) of service `key` in `driver`'s table, sorted; null when it has no such service. */
function destinations(driver: MemoryIpvsDriver, address: string, port: number): string[] | null {
  const entry = driver.peek().find((s) => "address" in s.service.key && s.service.key.address === address && s.service.key.port === port);
  return entry === undefined ? null : entry.destinations.map((d) => `${d.address}:${d.port}`).sort();
}

/** web on 10.0.0.1:80 with b1 (10.1.0.1) and b2 (10.1.0.2): the PUTs that create them. */
const WEB_AND_TWO: readonly (readonly [string, unknown])[] = [
  ["/service/web", { host: "10.0.0.1", port: 80 }],
  ["/service/web/b1", { host: "10.1.0.1", port: 80 }],
  ["/service/web/b2", { host: "10.1.0.2", port: 80 }],
];

/** PUT each of `puts` through node `n`, in order, each answered 200; the revision of the last. */
async function putAll(n: { call(method: string, path: string, body?: unknown): Promise<{ status: number; revision: number }> }, puts: readonly (readonly [string, unknown])[]): Promise<number> {
  let revision = 0;
  for (const [path, body] of puts) {
    const answer = await n.call("PUT", path, body);
    expect(answer.status).toBe(200);
    revision = answer.revision;
  }
  return revision;
}

/** Node `n` has applied `revision` and is idle. */
async function caughtUp(n: { store: EtcdStateStore; gorb: { idle(): Promise<void> } }, revision: number): Promise<void> {
  expect(await n.store.waitApplied(revision, 5000)).toBe(true);
  await n.gorb.idle();
}

/** Nodes A and B on `prefix` (A on a host of its own), web with b1 and b2 created through A, and B caught up with it. */
async function webOnAAndB(prefix: string) {
  const hostB = host();
  const a = await node(host(), prefix);
  const b = await node(hostB, prefix);
  await caughtUp(b, await putAll(a, WEB_AND_TWO));
  return { hostB, a, b };
}

describe("a fleet node's kernel ledger", () => {
  test("a backend deleted through A while B was down is removed from B's kernel at B's restart; one added by hand is reported and left serving", async () => {
    const prefix = `/ledger${++prefixes}`;
    const { hostB, a, ...first } = await webOnAAndB(prefix);
    let b = first.b;
    expect(destinations(hostB.driver, "10.0.0.1", 80)).toEqual(["10.1.0.1:80", "10.1.0.2:80"]);

    await b.stop();
    const deleted = await a.call("DELETE", "/service/web/b2");
    expect(deleted.status).toBe(200);
    await hostB.driver.addDestination(WEB, BY_HAND); // by hand, while B is down: not gorb's

    b = await node(hostB, prefix);
    expect(destinations(hostB.driver, "10.0.0.1", 80)).toEqual(["10.1.0.1:80", "10.1.0.99:80"]);
    expect(b.report.removedDeleted).toEqual(['10.1.0.2:80 in service "web"']);
    expect(b.report.unknown).toEqual(['10.1.0.99:80 in service "web"']);
    expect(b.logger.lines).toContain('warn restore: IPVS serves 10.1.0.99:80 in service "web", which the saved state does not know; leaving it (--unknown-destinations report)');

    // The destination by hand is still left alone by the reconcile, and B serves what etcd has.
    await b.gorb.reconcile();
    expect(destinations(hostB.driver, "10.0.0.1", 80)).toEqual(["10.1.0.1:80", "10.1.0.99:80"]);
    expect((await b.gorb.getService("web")).backends).toEqual(["b1"]);
  }, 15000);

  test("a service deleted through A while B was down is removed from B's kernel with the VIP B added for it; another program's service and address stay", async () => {
    const prefix = `/ledger${++prefixes}`;
    const hostB = host();
    const a = await node(host(), prefix);
    let b = await node(hostB, prefix);
    expect((await a.call("PUT", "/service/web", { host: "10.0.0.1", port: 80 })).status).toBe(200);
    expect((await a.call("PUT", "/service/web/b1", { host: "10.1.0.1", port: 80 })).status).toBe(200);
    expect((await a.call("PUT", "/service/api", { host: "10.0.0.2", port: 443 })).status).toBe(200);
    const last = await a.call("PUT", "/service/api/b1", { host: "10.1.0.5", port: 443 });
    expect(await b.store.waitApplied(last.revision, 5000)).toBe(true);
    await b.gorb.idle();
    expect(hostB.vip.addresses()).toEqual(["10.0.0.1", "10.0.0.2"]);

    await b.stop();
    expect((await a.call("DELETE", "/service/web")).status).toBe(200);
    // By hand, while B is down: another program's service, and an address of its own on the interface.
    await hostB.driver.addService(FOREIGN);
    await hostB.vip.add("10.0.0.53", "inet");

    b = await node(hostB, prefix);
    expect(destinations(hostB.driver, "10.0.0.1", 80)).toBeNull();
    expect(destinations(hostB.driver, "10.0.0.2", 443)).toEqual(["10.1.0.5:443"]);
    expect(destinations(hostB.driver, "10.0.0.53", 53)).toEqual([]);
    expect(hostB.vip.addresses()).toEqual(["10.0.0.2", "10.0.0.53"]);
    expect(b.report.removedDeleted).toEqual(["tcp 10.0.0.1:80"]);
    expect(b.report.unknown).toEqual([]);
    expect(b.logger.lines).toContain("warn restore: removed VIP 10.0.0.1, which this node added for a service the shared state no longer has");

    // The ledger followed: api, deleted now through A while B runs, takes its VIP with it; a third start finds
    // nothing of gorb's to remove.
    const gone = await a.call("DELETE", "/service/api");
    expect(await b.store.waitApplied(gone.revision, 5000)).toBe(true);
    await b.gorb.idle();
    expect(hostB.vip.addresses()).toEqual(["10.0.0.53"]);
    await b.stop();
    b = await node(hostB, prefix);
    expect(b.report.removedDeleted).toEqual([]);
    expect(hostB.driver.peek().map((s) => s.service.key)).toEqual([FOREIGN.key]);
  }, 15000);

  test("a VIP someone else removed already is not reported removed at B's restart, and the ledger forgets it", async () => {
    const prefix = `/ledger${++prefixes}`;
    const hostB = host();
    const a = await node(host(), prefix);
    let b = await node(hostB, prefix);
    const put = await a.call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    expect(await b.store.waitApplied(put.revision, 5000)).toBe(true);
    await b.gorb.idle();
    expect(hostB.vip.addresses()).toEqual(["10.0.0.1"]);

    await b.stop();
    expect((await a.call("DELETE", "/service/web")).status).toBe(200);
    await hostB.vip.remove("10.0.0.1", "inet"); // ip addr del, while B is down

    b = await node(hostB, prefix);
    expect(b.report.removedDeleted).toEqual(["tcp 10.0.0.1:80"]);
    expect(b.logger.lines.filter((l) => l.includes("removed VIP"))).toEqual([]);
    // Forgotten: an address put there by hand later is not taken for B's at the next start.
    await hostB.vip.add("10.0.0.1", "inet");
    await b.stop();
    b = await node(hostB, prefix);
    expect(hostB.vip.addresses()).toEqual(["10.0.0.1"]);
    await b.stop();
  }, 15000);

  test("a destination B's kernel refused to add is not recorded as B's: one added there by hand later is reported, not removed, once the backend is deleted", async () => {
    const prefix = `/ledger${++prefixes}`;
    const hostB = host();
    const a = await node(host(), prefix);
    let b = await node(hostB, prefix);
    expect((await a.call("PUT", "/service/web", { host: "10.0.0.1", port: 80 })).status).toBe(200);
    const web = await a.call("PUT", "/service/web/b1", { host: "10.1.0.1", port: 80 });
    expect(await b.store.waitApplied(web.revision, 5000)).toBe(true);
    hostB.driver.failNext("add-destination", "ENOMEM");
    const refused = await a.call("PUT", "/service/web/b2", { host: "10.1.0.2", port: 80 });
    expect(await b.store.waitApplied(refused.revision, 5000)).toBe(true);
    await b.gorb.idle();
    expect(destinations(hostB.driver, "10.0.0.1", 80)).toEqual(["10.1.0.1:80"]);

    await b.stop();
    await hostB.driver.addDestination(WEB, { ...BY_HAND, address: "10.1.0.2" }); // by hand: not gorb's
    expect((await a.call("DELETE", "/service/web/b2")).status).toBe(200);
    b = await node(hostB, prefix);
    expect(b.report.removedDeleted).toEqual([]);
    expect(b.report.unknown).toEqual(['10.1.0.2:80 in service "web"']);
    expect(destinations(hostB.driver, "10.0.0.1", 80)).toEqual(["10.1.0.1:80", "10.1.0.2:80"]);
  }, 15000);

  test("a node started without a ledger (an upgrade) records what it serves at restore: a backend deleted while it is down next is removed", async () => {
    const prefix = `/ledger${++prefixes}`;
    const hostB = host();
    const a = await node(host(), prefix);
    await putAll(a, WEB_AND_TWO);
    // B's kernel has web as an earlier gorb left it, and B's state directory no ledger.
    await hostB.driver.apply([...a.driver.peek()].flatMap((s) => [{ op: "add-service" as const, service: s.service }, ...s.destinations.map((d) => ({ op: "add-destination" as const, service: s.service.key, destination: d }))]));
    let b = await node(hostB, prefix);
    expect(b.report.unknown).toEqual([]);
    await b.stop();
    expect((await a.call("DELETE", "/service/web/b2")).status).toBe(200);
    b = await node(hostB, prefix);
    expect(b.report.removedDeleted).toEqual(['10.1.0.2:80 in service "web"']);
    expect(destinations(hostB.driver, "10.0.0.1", 80)).toEqual(["10.1.0.1:80"]);
  }, 15000);

  // A service etcd still has, whose row this node cannot read at its restart (written by a newer gorb, or damaged),
  // was not deleted: it is left as it is, with its VIP, as before the ledger.
  for (const [what, value] of [
    ["not JSON", "{not json"],
    ["fields this gorb cannot read", JSON.stringify({ source: "api", fields: { host: "10.0.0.1", port: 80, persistent: "for a while" }, key: WEB, vip: true })],
  ] as const) {
    test(`a service B created whose row in etcd it cannot read at its restart (${what}) is left in its kernel with its VIP, not removed as deleted`, async () => {
      const prefix = `/ledger${++prefixes}`;
      const hostB = host();
      const a = await node(host(), prefix);
      let b = await node(hostB, prefix);
      expect((await a.call("PUT", "/service/web", { host: "10.0.0.1", port: 80 })).status).toBe(200);
      const last = await a.call("PUT", "/service/web/b1", { host: "10.1.0.1", port: 80 });
      expect(await b.store.waitApplied(last.revision, 5000)).toBe(true);
      await b.gorb.idle();
      await b.stop();
      await a.store.client.put(`${prefix}/services/web`, value);

      b = await node(hostB, prefix);
      expect(b.report.removedDeleted).toEqual([]);
      expect(destinations(hostB.driver, "10.0.0.1", 80)).toEqual(["10.1.0.1:80"]);
      expect(hostB.vip.addresses()).toEqual(["10.0.0.1"]);
    }, 15000);
  }

  test("an address B's interface had before gorb is never B's: a service on it that A created and then deleted, B restarted in between, leaves it there", async () => {
    const prefix = `/ledger${++prefixes}`;
    const hostB = host();
    await hostB.vip.add("10.0.0.1", "inet"); // the operator's own address on B
    const a = await node(host(), prefix);
    let b = await node(hostB, prefix);
    const web = await a.call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    expect(await b.store.waitApplied(web.revision, 5000)).toBe(true);
    await b.gorb.idle();
    await b.stop();
    b = await node(hostB, prefix);
    expect(hostB.vip.addresses()).toEqual(["10.0.0.1"]);

    const gone = await a.call("DELETE", "/service/web");
    expect(await b.store.waitApplied(gone.revision, 5000)).toBe(true);
    await b.gorb.idle();
    expect(destinations(hostB.driver, "10.0.0.1", 80)).toBeNull();
    expect(hostB.vip.addresses()).toEqual(["10.0.0.1"]);
  }, 15000);

  test("a full disk: a write through B that its ledger cannot record answers 503 and changes nothing; another node's change B cannot record is listed failed, nothing of it applied, and applied once the disk takes writes", async () => {
    const prefix = `/ledger${++prefixes}`;
    const disk = new Disk();
    const hostB = host();
    const a = await node(host(), prefix);
    const b = await node(hostB, prefix, etcd.endpoint, disk);
    const web = await a.call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    expect(await b.store.waitApplied(web.revision, 5000)).toBe(true);
    await b.gorb.idle();
    disk.full = true;

    const before = b.store.committedRevision;
    const refused = await b.call("PUT", "/service/web/b1", { host: "10.1.0.1", port: 80 });
    expect(refused.status).toBe(503);
    expect(b.store.committedRevision).toBe(before);
    expect(destinations(hostB.driver, "10.0.0.1", 80)).toEqual([]);
    expect((await b.gorb.getService("web")).backends).toEqual([]);
    const api = await b.call("PUT", "/service/api", { host: "10.0.0.2", port: 80 });
    expect(api.status).toBe(503);
    expect(hostB.vip.addresses()).toEqual(["10.0.0.1"]);
    expect(b.gorb.listServices()).toEqual(["web"]);

    const remote = await a.call("PUT", "/service/web/b2", { host: "10.1.0.2", port: 80 });
    expect(await b.store.waitApplied(remote.revision, 5000)).toBe(true);
    await b.gorb.idle();
    expect(b.store.status().failed.map((f) => f.service)).toEqual(["web"]);
    expect(destinations(hostB.driver, "10.0.0.1", 80)).toEqual([]);
    expect((await b.gorb.getService("web")).backends).toEqual([]);

    disk.full = false;
    const next = await a.call("PUT", "/service/other", { host: "10.0.0.3", port: 80 });
    expect(await b.store.waitApplied(next.revision, 5000)).toBe(true);
    await b.gorb.idle();
    expect(b.store.status().failed).toEqual([]);
    expect(destinations(hostB.driver, "10.0.0.1", 80)).toEqual(["10.1.0.2:80"]);
  }, 15000);

  // The ledger says "deleted" only while etcd's history goes on from the one it followed: another cluster, or a
  // revision gone back (a wipe, a restore from a backup), leaves what etcd lacks to --unknown-destinations.
  test("etcd wiped while B was down (its revision gone back): B removes nothing on its ledger's word, reports what etcd lacks, and follows the new history from then on", async () => {
    const prefix = `/ledger${++prefixes}`;
    let { hostB, a, b } = await webOnAAndB(prefix);
    // Restarted once, B's ledger follows the revision of the state with both backends.
    await b.stop();
    b = await node(hostB, prefix);
    const followed = (await b.store.load()).revision;
    await b.stop();
    await a.stop();

    await etcd.wipe();
    a = await node(host(), prefix);
    expect((await a.call("PUT", "/service/web", { host: "10.0.0.1", port: 80 })).status).toBe(200);
    const now = await a.call("PUT", "/service/web/b1", { host: "10.1.0.1", port: 80 });
    expect(now.revision).toBeLessThan(followed);

    b = await node(hostB, prefix);
    expect(b.report.removedDeleted).toEqual([]);
    expect(b.report.unknown).toEqual(['10.1.0.2:80 in service "web"']);
    expect(destinations(hostB.driver, "10.0.0.1", 80)).toEqual(["10.1.0.1:80", "10.1.0.2:80"]);
    // The revision its ledger followed is that of its restore, just before it recorded the restore (PREFIX/restores/).
    expect(b.logger.lines.some((line) => line.includes(`etcd's revision ${now.revision} is below the revision ${followed - 1} this node restored`))).toBe(true);

    // From now on the ledger follows the new history: b1, deleted while B is down, is removed; b2 is still unknown.
    await b.stop();
    expect((await a.call("DELETE", "/service/web/b1")).status).toBe(200);
    b = await node(hostB, prefix);
    expect(b.report.removedDeleted).toEqual(['10.1.0.1:80 in service "web"']);
    expect(b.report.unknown).toEqual(['10.1.0.2:80 in service "web"']);
    expect(destinations(hostB.driver, "10.0.0.1", 80)).toEqual(["10.1.0.2:80"]);
  }, 30000);

  test("B restarted on another etcd cluster: nothing removed on its ledger's word, what that state lacks is reported", async () => {
    const prefix = `/ledger${++prefixes}`;
    const { hostB, a, ...first } = await webOnAAndB(prefix);
    let b = first.b;
    await b.stop();

    const other = await startEtcd();
    cleanups.push(() => other.stop());
    const a2 = await node(host(), prefix, other.endpoint);
    expect((await a2.call("PUT", "/service/web", { host: "10.0.0.1", port: 80 })).status).toBe(200);
    expect((await a2.call("PUT", "/service/web/b1", { host: "10.1.0.1", port: 80 })).status).toBe(200);
    for (let i = 0; i < 20; i++) expect((await a2.call("PUT", `/service/s${i}`, { host: `10.0.1.${i + 1}`, port: 80 })).status).toBe(200);

    b = await node(hostB, prefix, other.endpoint);
    expect(b.report.removedDeleted).toEqual([]);
    expect(b.report.unknown).toEqual(['10.1.0.2:80 in service "web"']);
    expect(destinations(hostB.driver, "10.0.0.1", 80)).toEqual(["10.1.0.1:80", "10.1.0.2:80"]);
    expect(b.logger.lines.some((line) => line.includes("the shared state comes from another etcd cluster"))).toBe(true);
  }, 30000);

  // Found by test/unit/store/fleet-random.test.ts (seed 170054).
  test("a run with --no-state in between: B's ledger missed it, so a destination added by hand on the key of one it recorded is not removed", async () => {
    const prefix = `/ledger${++prefixes}`;
    const { hostB, a, ...first } = await webOnAAndB(prefix);
    let b = first.b;
    await b.stop();

    // B runs once without its ledger: b2 is deleted meanwhile, and B takes 10.1.0.2:80 out of its kernel.
    b = await node(hostB, prefix, etcd.endpoint, null, true);
    const deleted = await a.call("DELETE", "/service/web/b2");
    expect(deleted.status).toBe(200);
    await caughtUp(b, deleted.revision);
    expect(destinations(hostB.driver, "10.0.0.1", 80)).toEqual(["10.1.0.1:80"]);
    await b.stop();
    // Then someone adds 10.1.0.2:80 by hand: not gorb's, whatever the ledger, which still has it from before, says.
    await hostB.driver.addDestination(WEB, { ...BY_HAND, address: "10.1.0.2" });

    b = await node(hostB, prefix);
    expect(b.report.removedDeleted).toEqual([]);
    expect(b.report.unknown).toEqual(['10.1.0.2:80 in service "web"']);
    expect(destinations(hostB.driver, "10.0.0.1", 80)).toEqual(["10.1.0.1:80", "10.1.0.2:80"]);
    expect(b.logger.lines.some((line) => line.includes("it ran without this ledger since (--no-state, or another --state-dir)"))).toBe(true);

    // The ledger follows again from this start: b1, deleted while B is down, is removed at the next.
    await b.stop();
    expect((await a.call("DELETE", "/service/web/b1")).status).toBe(200);
    b = await node(hostB, prefix);
    expect(b.report.removedDeleted).toEqual(['10.1.0.1:80 in service "web"']);
    expect(destinations(hostB.driver, "10.0.0.1", 80)).toEqual(["10.1.0.2:80"]);
  }, 30000);

  // Found by test/unit/store/fleet-random.test.ts (seed 90).
  test("an apply through A that moves a service to another port of its address: A and B keep the VIP, and B's next start too", async () => {
    const prefix = `/ledger${++prefixes}`;
    const hostA = host();
    const hostB = host();
    const a = await node(hostA, prefix);
    let b = await node(hostB, prefix);
    const on = (port: number) => ({ services: { web: { host: "10.0.0.1", port, backends: { b1: { host: "10.1.0.1" } } } } });
    expect((await a.call("POST", "/apply", on(80))).status).toBe(200);
    const moved = await a.call("POST", "/apply", on(443));
    expect(moved.status).toBe(200);
    expect(await b.store.waitApplied(moved.revision, 5000)).toBe(true);
    await b.gorb.idle();
    for (const h of [hostA, hostB]) {
      expect(destinations(h.driver, "10.0.0.1", 443)).toEqual(["10.1.0.1:443"]);
      expect(h.vip.addresses()).toEqual(["10.0.0.1"]);
    }
    await b.stop();
    b = await node(hostB, prefix);
    expect(hostB.vip.addresses()).toEqual(["10.0.0.1"]);
    const gone = await a.call("POST", "/apply", { services: {} });
    expect(await b.store.waitApplied(gone.revision, 5000)).toBe(true);
    await b.gorb.idle();
    expect([hostA.vip.addresses(), hostB.vip.addresses()]).toEqual([[], []]);
  }, 15000);

  // A node's addresses at restore: its ledger's, and those it adds for the services it restores.
  for (const noState of [false, true]) {
    test(`a node that joins the fleet${noState ? " with --no-state (no ledger)" : ""} puts the VIPs of the services it restores on its interface and takes them as its own; an address its interface had is not, and stays when its service is deleted`, async () => {
      const prefix = `/ledger${++prefixes}`;
      const a = await node(host(), prefix);
      expect((await a.call("PUT", "/service/web", { host: "10.0.0.1", port: 80 })).status).toBe(200);
      expect((await a.call("PUT", "/service/api", { host: "10.0.0.2", port: 443 })).status).toBe(200);
      const hostB = host();
      await hostB.vip.add("10.0.0.2", "inet"); // the operator's, before gorb
      let b = await node(hostB, prefix, etcd.endpoint, null, noState);
      expect(hostB.driver.peek()).toHaveLength(2);
      expect(hostB.vip.addresses()).toEqual(["10.0.0.1", "10.0.0.2"]);
      if (!noState) {
        // On disk, and taken back at the next start.
        await b.stop();
        const ledger = SqliteLedgerStore.open(hostB.dir, prefix);
        expect(ledger.load().vips).toEqual(["10.0.0.1"]);
        ledger.close();
        b = await node(hostB, prefix);
        expect(hostB.vip.addresses()).toEqual(["10.0.0.1", "10.0.0.2"]);
      }

      const gone = await a.call("DELETE", "/service/web");
      const gone2 = await a.call("DELETE", "/service/api");
      expect([gone.status, gone2.status]).toEqual([200, 200]);
      expect(await b.store.waitApplied(gone2.revision, 5000)).toBe(true);
      await b.gorb.idle();
      expect(hostB.driver.peek()).toEqual([]);
      expect(hostB.vip.addresses()).toEqual(["10.0.0.2"]);
    }, 15000);
  }
});

// A service the kernel refused at restore gets its VIP once a reconcile puts it in the kernel, as a restored one does.
describe("a fleet node's VIP for a service its kernel refused at restore", () => {
  for (const noState of [false, true]) {
    test(`a node that joins${noState ? " with --no-state" : ""} puts it on its interface once a reconcile adds the service, as its own (removed with the service)`, async () => {
      const prefix = `/ledger${++prefixes}`;
      const a = await node(host(), prefix);
      expect((await a.call("PUT", "/service/web", { host: "10.0.0.1", port: 80 })).status).toBe(200);
      const hostB = host();
      hostB.driver.failNext("add-service", "ENOMEM");
      let b = await node(hostB, prefix, etcd.endpoint, null, noState);
      expect(hostB.driver.peek()).toEqual([]);
      expect(hostB.vip.addresses()).toEqual([]);

      await b.gorb.reconcile();
      expect(destinations(hostB.driver, "10.0.0.1", 80)).toEqual([]);
      expect(hostB.vip.addresses()).toEqual(["10.0.0.1"]);
      if (!noState) {
        // Recorded: a restart knows the address is this node's.
        await b.stop();
        const ledger = SqliteLedgerStore.open(hostB.dir, prefix);
        expect(ledger.load().vips).toEqual(["10.0.0.1"]);
        ledger.close();
        b = await node(hostB, prefix);
      }

      const gone = await a.call("DELETE", "/service/web");
      expect(await b.store.waitApplied(gone.revision, 5000)).toBe(true);
      await b.gorb.idle();
      expect(hostB.vip.addresses()).toEqual([]);
    }, 15000);
  }
});
