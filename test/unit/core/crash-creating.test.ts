/**
 * A crash between the kernel write that creates a service and the commit that saves it: gorb records the services
 * it is about to create (StateStore.intend) before it writes them, so the next start removes the ones the saved
 * state does not hold, instead of leaving them in IPVS as services gorb does not manage (which the same request,
 * sent again, then ran into as a 409). Real SQLite store, in-memory kernel; the "crash" is a commit that never
 * comes, then the database closed and opened again, as a new process would.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Creating, SavedState, StagedCommit, StateChanges, StateStore } from "../../../src/core/state.ts";
import { MemoryVipManager } from "../../helpers/memory-vip.ts";
import { MemoryIpvsDriver } from "../../../src/ipvs/memory-driver.ts";
import type { ServiceKey } from "../../../src/ipvs/types.ts";
import { SqliteStateStore } from "../../../src/state/sqlite-store.ts";
import { makeGorb } from "./fakes.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "gorb-crash-"));
  dirs.push(dir);
  return dir;
}

/**
 * The SQLite store, but once `die()` is called every commit and staged commit hangs forever: the process "died"
 * before its commit. `intend` goes through, as it ran before the kernel write.
 */
class DyingStore implements StateStore {
  #dead = false;
  constructor(readonly inner: SqliteStateStore) {}
  get location(): string {
    return this.inner.location;
  }
  die(): void {
    this.#dead = true;
  }
  commit(changes: StateChanges): void | Promise<void> {
    if (this.#dead) return new Promise<void>(() => undefined);
    return this.inner.commit(changes);
  }
  stage(changes: StateChanges): Promise<StagedCommit> {
    if (this.#dead) return new Promise<StagedCommit>(() => undefined);
    return this.inner.stage(changes);
  }
  probe(): void | Promise<void> {
    return this.inner.probe();
  }
  intend(entries: readonly Creating[]): void | Promise<void> {
    return this.inner.intend(entries);
  }
}

const tcp = (address: string, port = 80): ServiceKey => ({ family: "inet", protocol: "tcp", address, port });

async function kernelKeys(driver: MemoryIpvsDriver): Promise<string[]> {
  return (await driver.snapshot()).map((s) => JSON.stringify(s.service.key)).sort();
}

/** Waits (turns of the event loop, bounded) until the kernel holds `n` services. */
async function untilKernelHolds(driver: MemoryIpvsDriver, n: number): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if ((await driver.snapshot()).length >= n) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  throw new Error(`the kernel never held ${n} services`);
}

/** The crash: the hung gorb is abandoned, its database closed (the lock goes with the process) and opened again. */
function reopen(store: DyingStore): { store: SqliteStateStore; saved: SavedState } {
  const dir = store.location.replace(/\/state\.db$/, "");
  store.inner.close();
  const again = SqliteStateStore.open(dir);
  return { store: again, saved: again.load() };
}

describe("a crash between the kernel write and the commit", () => {
  test("a service created over the API and never saved is removed at the next start, with the VIP gorb added for it; a foreign one stays", async () => {
    const driver = new MemoryIpvsDriver();
    const vip = new MemoryVipManager(["10.0.0.3"]); // an address the interface had: never gorb's
    const store = new DyingStore(SqliteStateStore.open(stateDir()));
    const { gorb } = makeGorb({ driver, store, vip });
    await gorb.createService("kept", { host: "10.0.0.1", port: 80 });
    const kept = driver.peek()[0]?.service;
    if (kept === undefined) throw new Error("the kernel holds no service after createService");
    await driver.addService({ ...kept, key: tcp("10.9.9.9", 53) }); // someone else's
    store.die();
    void gorb.createService("lost", { host: "10.0.0.2", port: 80 });
    void gorb.createService("lost-too", { host: "10.0.0.1", port: 443 }); // kept's address: its VIP stays
    void gorb.createService("lost-on-3", { host: "10.0.0.3", port: 80 }); // the interface's own address
    await untilKernelHolds(driver, 5);
    expect(vip.addresses()).toEqual(["10.0.0.1", "10.0.0.2", "10.0.0.3"]);

    const { store: reopened, saved } = reopen(store);
    expect(saved.services.map((s) => s.id)).toEqual(["kept"]);
    expect(saved.creating).toEqual([
      { key: tcp("10.0.0.2"), vip: true },
      { key: tcp("10.0.0.1", 443), vip: true },
      { key: tcp("10.0.0.3"), vip: false },
    ]);
    const next = makeGorb({ driver, store: reopened, vip });
    const report = await next.gorb.restore(saved);
    expect(report.removedUnsaved).toEqual(["tcp 10.0.0.2:80", "tcp 10.0.0.1:443", "tcp 10.0.0.3:80"]);
    expect(vip.addresses()).toEqual(["10.0.0.1", "10.0.0.3"]);
    expect(await kernelKeys(driver)).toEqual([JSON.stringify(tcp("10.0.0.1")), JSON.stringify(tcp("10.9.9.9", 53))].sort());
    // The record is cleared, and the same request now works (it was a 409: "a service gorb does not manage").
    expect(reopened.load().creating).toBeUndefined();
    await next.gorb.createService("lost", { host: "10.0.0.2", port: 80 });
    expect((await next.gorb.listServicesDetail()).map((s) => s.id).sort()).toEqual(["kept", "lost"]);
    reopened.close();
  });

  test("services created by requests that share one group commit are all recorded, and all removed after the crash", async () => {
    const driver = new MemoryIpvsDriver();
    const store = new DyingStore(SqliteStateStore.open(stateDir()));
    const { gorb } = makeGorb({ driver, store });
    store.die();
    // Sent together: they queue behind each other and share the group's one (never coming) commit.
    for (let i = 1; i <= 3; i++) void gorb.createService(`s${i}`, { host: `10.0.9.${i}`, port: 80 });
    await untilKernelHolds(driver, 3);

    const { store: reopened, saved } = reopen(store);
    expect(saved.creating?.map((c) => c.key)).toEqual([tcp("10.0.9.1"), tcp("10.0.9.2"), tcp("10.0.9.3")]);
    const next = makeGorb({ driver, store: reopened });
    expect((await next.gorb.restore(saved)).removedUnsaved).toEqual(["tcp 10.0.9.1:80", "tcp 10.0.9.2:80", "tcp 10.0.9.3:80"]);
    expect(await kernelKeys(driver)).toEqual([]);
    reopened.close();
  });

  test("an apply's services are recorded before its kernel batch: all of them are removed after a crash before its commit", async () => {
    const driver = new MemoryIpvsDriver();
    const store = new DyingStore(SqliteStateStore.open(stateDir()));
    const { gorb } = makeGorb({ driver, store });
    store.die();
    const declared = Array.from({ length: 3 }, (_, i) => ({
      id: `s${i}`,
      fields: new Map<string, unknown>([["host", `10.0.${i}.1`], ["port", 80]]),
      backends: [{ id: "b", fields: new Map<string, unknown>([["host", `10.1.${i}.1`]]) }],
    }));
    void gorb.apply(declared);
    await untilKernelHolds(driver, 3);

    const { store: reopened, saved } = reopen(store);
    expect(saved.services).toEqual([]);
    const next = makeGorb({ driver, store: reopened });
    const report = await next.gorb.restore(saved);
    expect([...report.removedUnsaved].sort()).toEqual(["tcp 10.0.0.1:80", "tcp 10.0.1.1:80", "tcp 10.0.2.1:80"]);
    expect(await kernelKeys(driver)).toEqual([]);
    expect((await next.gorb.apply(declared)).ok).toBe(true);
    reopened.close();
  });
});

describe("the record of services being created", () => {
  test("when it cannot be written (a full disk), the change is refused with 503 and nothing of it stays", async () => {
    const driver = new MemoryIpvsDriver();
    const vip = new MemoryVipManager();
    const store = new (class extends DyingStore {
      override intend(entries: readonly Creating[]): void {
        if (entries.length > 0) throw Object.assign(new Error("database or disk is full"), { code: "SQLITE_FULL" });
      }
    })(SqliteStateStore.open(stateDir()));
    const { gorb } = makeGorb({ driver, store, vip });
    await expect(gorb.createService("web", { host: "10.0.0.1", port: 80 })).rejects.toMatchObject({ status: 503 });
    const declared = [{ id: "api", fields: new Map<string, unknown>([["host", "10.0.0.2"], ["port", 80]]), backends: [] }];
    await expect(gorb.apply(declared)).rejects.toMatchObject({ status: 503 });
    expect(gorb.listServices()).toEqual([]);
    expect(await kernelKeys(driver)).toEqual([]);
    expect(vip.addresses()).toEqual([]);
    store.inner.close();
  });

  test("is cleared by the commit of the change that created them, and after changes the kernel refused", async () => {
    const refusing = new MemoryIpvsDriver();
    const sqlite = SqliteStateStore.open(stateDir());
    const { gorb } = makeGorb({ driver: refusing, store: sqlite });
    await gorb.createService("web", { host: "10.0.0.1", port: 80 });
    expect(sqlite.load().creating).toBeUndefined();
    // An apply whose one new service the kernel refuses: nothing to commit, and nothing left recorded.
    refusing.failNext("add-service", "EINVAL");
    const report = await gorb.apply([
      { id: "api", fields: new Map<string, unknown>([["host", "10.0.0.9"], ["port", 80]]), backends: [] },
    ]);
    expect(report.changes.map((c) => [c.service, c.status])).toEqual([["api", "failed"]]);
    expect(await kernelKeys(refusing)).toEqual([JSON.stringify(tcp("10.0.0.1"))]);
    // A PUT the kernel refuses: the same.
    refusing.failNext("add-service", "EINVAL");
    expect(gorb.createService("other", { host: "10.0.0.8", port: 80 })).rejects.toThrow();
    await gorb.idle();
    expect(sqlite.load().creating).toBeUndefined();
    sqlite.close();
  });

  test("a service the saved state holds, or the kernel does not, is left as it is at restore", async () => {
    const driver = new MemoryIpvsDriver();
    const sqlite = SqliteStateStore.open(stateDir());
    const { gorb } = makeGorb({ driver, store: sqlite });
    await gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await gorb.close();
    // Recorded, then a crash before the commit cleared them: one saved after all, one never made.
    await sqlite.intend([{ key: tcp("10.0.0.1"), vip: true }, { key: tcp("10.0.0.7"), vip: false }]);
    const saved = sqlite.load();
    expect(saved.creating).toEqual([{ key: tcp("10.0.0.1"), vip: true }, { key: tcp("10.0.0.7"), vip: false }]);
    const next = makeGorb({ driver, store: sqlite });
    const report = await next.gorb.restore(saved);
    expect(report.removedUnsaved).toEqual([]);
    expect(await kernelKeys(driver)).toEqual([JSON.stringify(tcp("10.0.0.1"))]);
    expect(sqlite.load().creating).toBeUndefined();
    sqlite.close();
  });
});
