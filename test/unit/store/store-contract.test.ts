/**
 * The store contract, one suite run against the SQLite store and against a real etcd (Debian's etcd-server on
 * loopback; missing etcd fails the test): what a commit writes reads back, updates replace, deleting a service
 * deletes its backends and never a neighbour whose id starts the same (web / web2).
 *
 * Then what only a shared store does, against the real etcd: a create made first on another node is a
 * conflict, 20 concurrent creates across two stores succeed once, a stale update is refused, a second node
 * (a real Gorb over the in-memory IPVS driver) applies another node's writes through its watch, and a node
 * whose watch start was compacted away relists and applies the deletes it missed.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConflictError, StoreTooLargeError } from "../../../src/core/errors.ts";
import type { SavedBackend, SavedService, SavedState, StateChanges, StateStore } from "../../../src/core/state.ts";
import { SqliteStateStore } from "../../../src/state/sqlite-store.ts";
import { EtcdError, prefixEnd } from "../../../src/store/etcd-client.ts";
import { EtcdStateStore } from "../../../src/store/etcd-store.ts";
import { makeGorb } from "../core/fakes.ts";
import { etcdForFile, cleanupsAfterEach } from "./etcd-process.ts";

const etcd = etcdForFile();

const service = (id: string, address: string, method = "rr"): SavedService => ({
  id,
  source: "api",
  fields: { host: address, method, port: 80 },
  key: { family: "inet", protocol: "tcp", address, port: 80 },
  vip: false,
});
const backend = (serviceId: string, id: string, address: string): SavedBackend => ({
  service: serviceId,
  id,
  source: "api",
  fields: { host: address, port: 8080, weight: 100 },
  address: { address, family: "inet" },
});
const changes = (c: Partial<StateChanges>): StateChanges => ({ putServices: [], deleteServices: [], putBackends: [], deleteBackends: [], ...c });

function summary(state: SavedState): string[] {
  return [
    ...state.services.map((s) => `service ${s.id} ${JSON.stringify(s.fields)}`),
    ...state.backends.map((b) => `backend ${b.service}/${b.id} ${JSON.stringify(b.fields)}`),
  ].sort();
}

interface Opened {
  readonly store: StateStore;
  load(): Promise<SavedState>;
}

let prefixes = 0;
const cleanups = cleanupsAfterEach();

const engines: Record<string, () => Opened> = {
  sqlite: () => {
    const dir = mkdtempSync(join(tmpdir(), "gorb-contract-"));
    const store = SqliteStateStore.open(dir);
    cleanups.push(() => {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    });
    return { store, load: () => Promise.resolve(store.load()) };
  },
  etcd: () => {
    const store = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix: `/contract${++prefixes}` });
    return { store, load: async () => (await store.load()).state };
  },
};

for (const [engine, open] of Object.entries(engines)) {
  describe(`store contract: ${engine}`, () => {
    test("a commit reads back: services and their backends", async () => {
      const { store, load } = open();
      await store.commit(changes({ putServices: [service("web", "10.0.0.1")], putBackends: [backend("web", "b1", "10.1.0.1")] }));
      expect(summary(await load())).toEqual([
        'backend web/b1 {"host":"10.1.0.1","port":8080,"weight":100}',
        'service web {"host":"10.0.0.1","method":"rr","port":80}',
      ]);
    });

    test("a backend's drain reads back with its absolute deadline; clearing it removes it", async () => {
      const { store, load } = open();
      const drain = { started: 1_700_000_000_000, deadline: 1_700_000_300_000, then: "keep" as const, phase: "draining" as const, node: "lb1" };
      await store.commit(changes({ putServices: [service("web", "10.0.0.1")], putBackends: [{ ...backend("web", "b1", "10.1.0.1"), drain }] }));
      expect((await load()).backends.map((b) => b.drain)).toEqual([drain]);
      await store.commit(changes({ putBackends: [backend("web", "b1", "10.1.0.1")] }));
      expect((await load()).backends.map((b) => b.drain ?? null)).toEqual([null]);
    });

    test("an update replaces the row", async () => {
      const { store, load } = open();
      await load();
      await store.commit(changes({ putServices: [service("web", "10.0.0.1")] }));
      await store.commit(changes({ putServices: [service("web", "10.0.0.1", "wrr")] }));
      expect(summary(await load())).toEqual(['service web {"host":"10.0.0.1","method":"wrr","port":80}']);
    });

    test("deleting web deletes its backends and leaves web2 and its backends", async () => {
      const { store, load } = open();
      await load();
      await store.commit(
        changes({
          putServices: [service("web", "10.0.0.1"), service("web2", "10.0.0.2")],
          putBackends: [backend("web", "b1", "10.1.0.1"), backend("web2", "b1", "10.1.0.2"), backend("web2", "b2", "10.1.0.3")],
        }),
      );
      await store.commit(changes({ deleteServices: ["web"] }));
      expect(summary(await load())).toEqual([
        'backend web2/b1 {"host":"10.1.0.2","port":8080,"weight":100}',
        'backend web2/b2 {"host":"10.1.0.3","port":8080,"weight":100}',
        'service web2 {"host":"10.0.0.2","method":"rr","port":80}',
      ]);
    });

    test("deleting one backend leaves the others", async () => {
      const { store, load } = open();
      await load();
      await store.commit(changes({ putServices: [service("web", "10.0.0.1")], putBackends: [backend("web", "b1", "10.1.0.1"), backend("web", "b10", "10.1.0.2")] }));
      await store.commit(changes({ deleteBackends: [{ service: "web", id: "b1" }] }));
      expect(summary(await load())).toEqual([
        'backend web/b10 {"host":"10.1.0.2","port":8080,"weight":100}',
        'service web {"host":"10.0.0.1","method":"rr","port":80}',
      ]);
    });
  });
}

describe("shared store: etcd", () => {
  const pair = async () => {
    const prefix = `/shared${++prefixes}`;
    const a = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix });
    const b = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix });
    await a.load();
    await b.load();
    cleanups.push(() => a.close(), () => b.close());
    return { a, b, prefix };
  };

  test("a create another node made first is a conflict, and the store stays writable", async () => {
    const { a, b } = await pair();
    await a.commit(changes({ putServices: [service("web", "10.0.0.1")] }));
    const refused = await b.commit(changes({ putServices: [service("web", "10.0.0.1", "wrr")] })).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ConflictError);
    expect(summary((await b.load()).state)).toEqual(['service web {"host":"10.0.0.1","method":"rr","port":80}']);
    await b.commit(changes({ putServices: [service("web2", "10.0.0.2")] }));
  });

  test("a change with more keys than etcd's --max-txn-ops (128) is refused alone; the store stays writable", async () => {
    const { a } = await pair();
    const many = Array.from({ length: 130 }, (_, i) => backend("web", `b${i}`, `10.1.${Math.floor(i / 200)}.${(i % 200) + 1}`));
    const refused = await a.commit(changes({ putServices: [service("web", "10.0.0.1")], putBackends: many })).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StoreTooLargeError);
    expect(refused).toMatchObject({ status: 413, code: "TOO_LARGE", operations: 132, reason: "too many operations in txn request" });
    expect((refused as Error).cause).toBeInstanceOf(EtcdError);
    expect(a.available()).toBe(true);
    await a.commit(changes({ putServices: [service("web", "10.0.0.1")], putBackends: many.slice(0, 100) }));
  });

  test("a change of more bytes than etcd's --max-request-bytes (1.5 MiB) is refused alone, for its size", async () => {
    const { a } = await pair();
    const big = Array.from({ length: 20 }, (_, i) => ({ ...backend("web", `b${i}`, `10.1.0.${i + 1}`), fields: { host: `10.1.0.${i + 1}`, note: "x".repeat(100_000) } }));
    const refused = await a.commit(changes({ putServices: [service("web", "10.0.0.1")], putBackends: big })).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StoreTooLargeError);
    expect(refused).toMatchObject({ operations: 22, reason: "request is too large" });
    expect(a.available()).toBe(true);
    await a.commit(changes({ putServices: [service("web", "10.0.0.1")], putBackends: big.slice(0, 2) }));
  });

  test("a change of more bytes than etcd's gRPC server takes (--max-request-bytes + 512 KiB) is refused alone, for its size", async () => {
    // 2.2 MB takes etcd's gateway a second to decode here: more time than the default 3 s on a loaded machine.
    const a = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix: `/shared${++prefixes}`, timeoutMs: 30_000 });
    await a.load();
    const big = Array.from({ length: 22 }, (_, i) => ({ ...backend("web", `b${i}`, `10.1.0.${i + 1}`), fields: { host: `10.1.0.${i + 1}`, note: "x".repeat(100_000) } }));
    const refused = await a.commit(changes({ putServices: [service("web", "10.0.0.1")], putBackends: big })).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StoreTooLargeError);
    expect((refused as StoreTooLargeError).reason).toMatch(/^received message larger than max \(\d+ vs\. 2097152\)$/);
    expect(a.available()).toBe(true);
    await a.commit(changes({ putServices: [service("web", "10.0.0.1")], putBackends: big.slice(0, 2) }));
  }, 60_000);

  test("a backend written into a service another node deleted (or deleted and created again) meanwhile is a conflict; its other changes are not", async () => {
    const { a, b, prefix } = await pair();
    await a.commit(changes({ putServices: [service("web", "10.0.0.1")] }));
    await b.load();
    // b has web; a changes its scheduler: b's backends still go in (same service).
    await a.commit(changes({ putServices: [service("web", "10.0.0.1", "wrr")] }));
    await b.commit(changes({ putBackends: [backend("web", "b1", "10.1.0.1")] }));
    // a deletes web (its backends with it) before b has applied that: b's new backend would be left behind.
    await a.load();
    await a.commit(changes({ deleteServices: ["web"] }));
    const refused = await b.commit(changes({ putBackends: [backend("web", "b2", "10.1.0.2")] })).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ConflictError);
    expect((await a.client.range(`${prefix}/backends/`, prefixEnd(`${prefix}/backends/`))).kvs).toEqual([]);
    // web created again: still another service than the one b knows.
    await a.commit(changes({ putServices: [service("web", "10.0.0.1")] }));
    expect(await b.commit(changes({ putBackends: [backend("web", "b2", "10.1.0.2")] })).catch((e: unknown) => e)).toBeInstanceOf(ConflictError);
    expect(summary((await a.load()).state)).toEqual(['service web {"host":"10.0.0.1","method":"rr","port":80}']);
  });

  test("a row a starting node cannot restore stays in the shared state: another node that serves it keeps it", async () => {
    const prefix = `/restore${++prefixes}`;
    const storeB = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix });
    cleanups.push(() => storeB.close());
    const nodeB = makeGorb({ store: storeB });
    await nodeB.gorb.restore((await storeB.load()).state);
    storeB.sync(nodeB.gorb);
    await nodeB.gorb.createService("web2", { host: "10.0.0.50", port: 80 });
    // Another node made "web" at the same address at the same moment: B cannot take it and keeps web2.
    const raced = await storeB.client.put(`${prefix}/services/web`, JSON.stringify({ source: "api", fields: { host: "10.0.0.50", port: 80 }, key: { family: "inet", protocol: "tcp", address: "10.0.0.50", port: 80 }, vip: false }));
    expect(await storeB.waitApplied(raced, 5000)).toBe(true);
    expect(nodeB.gorb.listServices()).toEqual(["web2"]);

    // Node C starts: it restores web and cannot restore web2 (same address); web2 is not C's to delete.
    const storeC = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix });
    cleanups.push(() => storeC.close());
    const nodeC = makeGorb({ store: storeC });
    await nodeC.gorb.restore((await storeC.load()).state);
    expect(nodeC.gorb.listServices()).toEqual(["web"]);
    const now = (await storeB.client.range(`${prefix}/services/`, prefixEnd(`${prefix}/services/`))).revision;
    expect(await storeB.waitApplied(now, 5000)).toBe(true);
    await nodeB.gorb.idle();
    expect(nodeB.gorb.listServices()).toEqual(["web2"]);
    expect((await nodeB.driver.snapshot()).map((e) => JSON.stringify(e.service.key))).toEqual(['{"family":"inet","protocol":"tcp","address":"10.0.0.50","port":80}']);
    expect((await storeB.client.range(`${prefix}/services/web2`)).kvs).toHaveLength(1);
    expect(nodeC.logger.lines.some((l) => l.startsWith('error cannot restore service "web2"') && l.includes("left in the shared state"))).toBe(true);
  });

  test("two services on one address through two nodes at once: the second is a conflict; a delete or a rename frees the address", async () => {
    const { a, b, prefix } = await pair();
    await a.commit(changes({ putServices: [service("web", "10.0.0.50")] }));
    // b has not seen web: its own state has nothing at 10.0.0.50, etcd has.
    const refused = await b.commit(changes({ putServices: [service("web2", "10.0.0.50")] })).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ConflictError);
    expect(summary((await a.load()).state)).toEqual(['service web {"host":"10.0.0.50","method":"rr","port":80}']);
    // Renamed in one change (an apply): the address goes from web to web3.
    await a.commit(changes({ deleteServices: ["web"], putServices: [service("web3", "10.0.0.50")] }));
    // Moved to another address: the old one is free for b.
    await a.commit(changes({ putServices: [service("web3", "10.0.0.51")] }));
    await b.load();
    await b.commit(changes({ putServices: [service("web2", "10.0.0.50")] }));
    expect(summary((await a.load()).state)).toEqual([
      'service web2 {"host":"10.0.0.50","method":"rr","port":80}',
      'service web3 {"host":"10.0.0.51","method":"rr","port":80}',
    ]);
    // Deleted: its address is free too.
    await a.commit(changes({ deleteServices: ["web3"] }));
    await b.load();
    await b.commit(changes({ putServices: [service("web4", "10.0.0.51")] }));
    expect((await a.client.range(`${prefix}/addresses/`, prefixEnd(`${prefix}/addresses/`))).kvs.map((kv) => [kv.key.slice(prefix.length), kv.value])).toEqual([
      ["/addresses/inet/tcp/10.0.0.50/80", "web2"],
      ["/addresses/inet/tcp/10.0.0.51/80", "web4"],
    ]);
    // A claim left behind (a gorb from before claims deleted its service, or moved it) does not block the address.
    await a.client.put(`${prefix}/addresses/inet/tcp/10.0.0.52/80`, "gone");
    await a.client.put(`${prefix}/addresses/inet/tcp/10.0.0.53/80`, "web2");
    await b.commit(changes({ putServices: [service("web5", "10.0.0.52"), service("web6", "10.0.0.53")] }));
    expect((await a.client.range(`${prefix}/addresses/inet/tcp/10.0.0.52/80`)).kvs[0]?.value).toBe("web5");
    expect((await a.client.range(`${prefix}/addresses/inet/tcp/10.0.0.53/80`)).kvs[0]?.value).toBe("web6");
  });

  test("a remote service refused for a local one's address is applied once that service is deleted, on every node", async () => {
    const prefix = `/retry${++prefixes}`;
    const open = async () => {
      const store = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix });
      cleanups.push(() => store.close());
      const node = makeGorb({ store });
      await node.gorb.restore((await store.load()).state);
      store.sync(node.gorb);
      return { store, node };
    };
    const a = await open();
    const b = await open();
    await b.node.gorb.createService("web2", { host: "10.0.0.50", port: 80 });
    expect(await a.store.waitApplied(b.store.committedRevision, 5000)).toBe(true);
    // "web" on the same address, written past the address claim (another program, or a gorb from before claims):
    // both nodes keep web2 and refuse web.
    const raced = await a.store.client.put(`${prefix}/services/web`, JSON.stringify({ source: "api", fields: { host: "10.0.0.50", port: 80 }, key: { family: "inet", protocol: "tcp", address: "10.0.0.50", port: 80 }, vip: false }));
    expect(await a.store.waitApplied(raced, 5000)).toBe(true);
    expect(await b.store.waitApplied(raced, 5000)).toBe(true);
    expect(a.node.gorb.listServices()).toEqual(["web2"]);
    expect(b.node.gorb.listServices()).toEqual(["web2"]);
    // web2 deleted through a: a (its own change) and b (through its watch) take web now.
    await a.node.gorb.deleteService("web2");
    expect(await b.store.waitApplied(a.store.committedRevision, 5000)).toBe(true);
    await a.node.gorb.idle();
    await b.node.gorb.idle();
    expect(a.node.gorb.listServices()).toEqual(["web"]);
    expect(b.node.gorb.listServices()).toEqual(["web"]);
  });

  test("20 concurrent creates of one service across two stores: exactly one succeeds", async () => {
    const { a, b } = await pair();
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).commit(changes({ putServices: [service("web", `10.0.0.${i + 1}`)] }))),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect(r.reason).toBeInstanceOf(ConflictError);
  });

  test("an update from a node that has not seen the latest change is refused", async () => {
    const { a, b } = await pair();
    await a.commit(changes({ putServices: [service("web", "10.0.0.1")] }));
    await b.load();
    await a.commit(changes({ putServices: [service("web", "10.0.0.1", "wrr")] }));
    const refused = await b.commit(changes({ putServices: [service("web", "10.0.0.1", "lc")] })).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ConflictError);
  });

  test("node B's kernel gets what node A wrote, through the watch; deletes too", async () => {
    const prefix = `/nodes${++prefixes}`;
    const storeA = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix });
    const storeB = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix });
    cleanups.push(() => storeA.close(), () => storeB.close());
    const nodeA = makeGorb({ store: storeA });
    const nodeB = makeGorb({ store: storeB });
    await nodeA.gorb.restore((await storeA.load()).state);
    await nodeB.gorb.restore((await storeB.load()).state);
    storeA.sync(nodeA.gorb);
    storeB.sync(nodeB.gorb);

    await nodeA.gorb.createService("web", { host: "10.0.0.1", port: 80, method: "wrr" });
    await nodeA.gorb.createBackend("web", "b1", { host: "10.1.0.1", port: 8080, weight: 50 });
    expect(await storeB.waitApplied(storeA.committedRevision, 5000)).toBe(true);
    const dump = async (driver: typeof nodeA.driver) =>
      (await driver.snapshot()).map((e) => `${e.service.scheduler} ${JSON.stringify(e.service.key)} ${e.destinations.map((d) => `${d.address}:${d.port}`).join(",")}`);
    expect(await dump(nodeB.driver)).toEqual(await dump(nodeA.driver));
    expect(await dump(nodeB.driver)).toEqual(['wrr {"family":"inet","protocol":"tcp","address":"10.0.0.1","port":80} 10.1.0.1:8080']);

    // A create of the same service through node B is a conflict (its desired state already has it).
    expect(await nodeB.gorb.createService("web", { host: "10.0.0.9", port: 80 }).catch((e: unknown) => e)).toBeInstanceOf(ConflictError);

    await nodeB.gorb.deleteService("web");
    expect(await storeA.waitApplied(storeB.committedRevision, 5000)).toBe(true);
    expect(await nodeA.driver.snapshot()).toEqual([]);
  });

  test("a node whose watch start was compacted relists and applies what it missed, deletes included", async () => {
    const prefix = `/compact${++prefixes}`;
    const writer = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix });
    const storeB = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix, logger: undefined });
    cleanups.push(() => writer.close(), () => storeB.close());
    await writer.load();
    await writer.commit(changes({ putServices: [service("gone", "10.0.0.1")], putBackends: [backend("gone", "b1", "10.1.0.1")] }));
    const nodeB = makeGorb({ store: storeB });
    await nodeB.gorb.restore((await storeB.load()).state);
    expect((await nodeB.driver.snapshot()).length).toBe(1);

    // B is "stopped": it does not watch while 50 writes happen and etcd compacts.
    await writer.commit(changes({ deleteServices: ["gone"] }));
    for (let i = 0; i < 50; i++) await writer.commit(changes({ putServices: [service(`s${i}`, `10.0.1.${i + 1}`)] }));
    await writer.client.compact(writer.committedRevision);

    storeB.sync(nodeB.gorb);
    expect(await storeB.waitApplied(writer.committedRevision, 10000)).toBe(true);
    expect(storeB.status().relists).toBeGreaterThanOrEqual(1);
    const services = (await nodeB.driver.snapshot()).map((e) => JSON.stringify(e.service.key));
    expect(services).toHaveLength(50);
    expect(services.some((k) => k.includes('"10.0.0.1"'))).toBe(false);
    expect(nodeB.gorb.listServices()).not.toContain("gone");
  });
});
