/**
 * The kernel ledger (src/core/kernel-ledger.ts) of a node, on its SQLite store in a temporary state directory, over
 * the memory IPVS driver, across restarts of Gorb: what it holds after a batch broke off, after a record that cannot
 * be written. Two nodes on etcd: test/unit/store/fleet-ledger.test.ts.
 */
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readServices } from "../../../src/config/services.ts";
import type { LedgerStore } from "../../../src/core/kernel-ledger.ts";
import type { ServiceKey } from "../../../src/ipvs/types.ts";
import { SqliteLedgerStore } from "../../../src/state/ledger-store.ts";
import { BreakingDriver, makeGorb } from "./fakes.ts";
import { MemoryStateStore } from "./memory-store.ts";

const dirs: string[] = [];
const ledgers: SqliteLedgerStore[] = [];
afterEach(() => {
  for (const ledger of ledgers.splice(0)) ledger.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function ledgerIn(dir: string): SqliteLedgerStore {
  const ledger = SqliteLedgerStore.open(dir, "/gorb");
  ledgers.push(ledger);
  return ledger;
}

function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "gorb-kernel-ledger-"));
  dirs.push(dir);
  return dir;
}

const WEB: ServiceKey = { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 };

/**
 * The operator adds 10.1.0.1:80 to web by hand while gorb is stopped; gorb starts again on the ledger in `dir`: the
 * destination must be reported and left serving (with `others`, the destinations gorb serves there), not removed.
 */
async function handAddedIsReportedAtRestart(driver: BreakingDriver, store: MemoryStateStore, dir: string, others: readonly string[]): Promise<void> {
  await driver.addDestination(WEB, { family: "inet", address: "10.1.0.1", port: 80, forward: "nat", weight: 1, upperThreshold: 0, lowerThreshold: 0, tunnel: null });
  const second = makeGorb({ driver, store, ledger: ledgerIn(dir) });
  const report = await second.gorb.restore(store.load());
  expect(report.removedDeleted).toEqual([]);
  expect(report.unknown).toEqual(['10.1.0.1:80 in service "web"']);
  expect(driver.peek()[0]?.destinations.map((d) => `${d.address}:${d.port}`)).toEqual(["10.1.0.1:80", ...others]);
}

test("a backend's add that broke off before the kernel took it is not left in the ledger: the same destination added by hand later is reported at restart, not removed", async () => {
  const dir = stateDir();
  const driver = new BreakingDriver();
  const store = new MemoryStateStore();
  const first = makeGorb({ driver, store, ledger: ledgerIn(dir) });
  await first.gorb.createService("web", { host: "10.0.0.1", port: 80 });
  driver.breakNextAfter(0);
  await expect(first.gorb.createBackend("web", "b1", { host: "10.1.0.1" })).rejects.toThrow("netlink timeout");
  await first.gorb.close();
  ledgers.pop()?.close();
  // The operator adds it by hand, where gorb could not.
  await handAddedIsReportedAtRestart(driver, store, dir, []);
});

test("an apply of 200 services, each with its VIP, writes the ledger once (its addresses with the kernel batch's adds), and holds every address", async () => {
  const dir = stateDir();
  const sqlite = ledgerIn(dir);
  let records = 0;
  const counting: LedgerStore = {
    location: sqlite.location,
    load: () => sqlite.load(),
    record: (entries) => {
      records++;
      return sqlite.record(entries);
    },
    forget: (entries) => sqlite.forget(entries),
    origin: () => sqlite.origin(),
    setOrigin: (origin) => sqlite.setOrigin(origin),
  };
  const store = new MemoryStateStore();
  const { gorb, vip } = makeGorb({ store, ledger: counting });
  const services = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`s${i}`, { host: `10.0.1.${i + 1}`, port: 80 }]));
  const report = await gorb.apply(readServices(services));
  expect(report.ok).toBe(true);
  expect(vip.addresses()).toHaveLength(200);
  expect(records).toBe(1);
  expect(sqlite.load().vips).toHaveLength(200);
});

test("a backend deleted while the ledger cannot take it out (disk full) is taken out with the ledger's next write: the same destination added by hand later is reported at restart, not removed", async () => {
  const dir = stateDir();
  const sqlite = ledgerIn(dir);
  let full = false;
  const disk: LedgerStore = {
    location: sqlite.location,
    load: () => sqlite.load(),
    record: (entries) => sqlite.record(entries),
    forget: (entries) => {
      if (full) throw new Error("database or disk is full");
      return sqlite.forget(entries);
    },
    origin: () => sqlite.origin(),
    setOrigin: (origin) => sqlite.setOrigin(origin),
  };
  const driver = new BreakingDriver();
  const store = new MemoryStateStore();
  const first = makeGorb({ driver, store, ledger: disk });
  await first.gorb.createService("web", { host: "10.0.0.1", port: 80 });
  await first.gorb.createBackend("web", "b1", { host: "10.1.0.1" });
  full = true;
  await first.gorb.deleteBackend("web", "b1");
  full = false;
  // The disk takes writes again: the next change writes the ledger.
  await first.gorb.createBackend("web", "b2", { host: "10.1.0.2" });
  await first.gorb.close();
  ledgers.pop()?.close();
  // The operator adds b1's destination back by hand.
  await handAddedIsReportedAtRestart(driver, store, dir, ["10.1.0.2:80"]);
});
