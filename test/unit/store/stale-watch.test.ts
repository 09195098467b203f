/**
 * A watch that says nothing (held up by the network: a half-open connection, a partition) is no evidence that
 * nothing changed. A node whose membership lease expired, or whose keepalives went unanswered for longer than the
 * lease, has lost touch with etcd for that long: it used to stay "ok" (gorb_store_up 1) and miss other nodes'
 * changes until the watch spoke again or the 5-minute relist ran. It now says degraded and relists at once.
 */
import { expect, test } from "bun:test";
import { EtcdClient } from "../../../src/store/etcd-client.ts";
import { EtcdStateStore } from "../../../src/store/etcd-store.ts";
import { cleanupsAfterEach, etcdForFile, waitFor } from "./etcd-process.ts";
import { memberA, servingNode } from "./etcd-proxy.ts";

const etcd = etcdForFile();
const cleanups = cleanupsAfterEach();

const api = { source: "api", fields: { host: "10.0.0.9", port: 80, method: "wrr" }, key: { family: "inet", protocol: "tcp", address: "10.0.0.9", port: 80 }, vip: false } as const;

/**
 * Node "a" behind a proxy, following the store with its membership (TTL 2 s) wired as gorb serve wires it, serving
 * web with backend b1; another node's store on etcd directly. `states` gets the store's state at each apply.
 */
async function partitioned(prefix: string) {
  const { proxy, store, node, states } = await servingNode(etcd.endpoint, prefix, cleanups);
  const member = await memberA(store, prefix, cleanups, (reason) => store.resync(reason));
  const other = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix });
  cleanups.push(() => other.close());
  await other.load();
  const held = proxy.holdWatches();
  cleanups.push(() => held.release());
  const kernel = async () => (await node.driver.snapshot()).map((e) => `${"address" in e.service.key ? e.service.key.address : ""} ${e.destinations.length}`).sort();
  return { proxy, store, node, other, states, kernel };
}

test("a node whose lease expired while its watch said nothing relists, degraded until then, and keeps what it serves", async () => {
  const prefix = "/stale-lease";
  const { store, other, states, kernel } = await partitioned(prefix);
  expect(await kernel()).toEqual(["10.0.0.1 1"]);

  await other.commit({ putServices: [{ id: "api", ...api }], deleteServices: [], putBackends: [], deleteBackends: [] });
  // The lease goes (as when etcd loses the node for longer than its TTL); the node's watch is still held.
  const direct = new EtcdClient({ endpoints: [etcd.endpoint] });
  const lease = (await direct.range(`${prefix}/nodes/a`)).kvs[0]?.lease;
  expect(lease).toBeDefined();
  await direct.leaseRevoke(lease ?? "");

  expect(await waitFor(async () => (await kernel()).includes("10.0.0.9 0"), 20_000)).toBe(true);
  expect(await kernel()).toEqual(["10.0.0.1 1", "10.0.0.9 0"]);
  // The relist that applied api ran while the store said degraded, and the store says ok once it is applied.
  expect(states).toContain("degraded");
  expect(await waitFor(async () => store.status().state === "ok", 5000)).toBe(true);
  expect(store.status().lastError).toBeNull();
}, 30_000);

test("a node cut off etcd for longer than its lease says degraded, and relists once it reaches etcd again", async () => {
  const prefix = "/stale-keepalive";
  const { proxy, store, other, kernel } = await partitioned(prefix);

  const cut = proxy.partition();
  cleanups.push(() => cut.heal());
  await other.commit({ putServices: [{ id: "api", ...api }], deleteServices: [], putBackends: [], deleteBackends: [] });
  expect(await waitFor(async () => store.status().state === "degraded", 15_000)).toBe(true);
  expect(store.status().lastError).toContain("has not renewed the membership lease of node a");
  expect(await kernel()).toEqual(["10.0.0.1 1"]);
  cut.heal();

  expect(await waitFor(async () => (await kernel()).includes("10.0.0.9 0"), 20_000)).toBe(true);
  expect(await kernel()).toEqual(["10.0.0.1 1", "10.0.0.9 0"]);
  expect(await waitFor(async () => store.status().state === "ok", 10_000)).toBe(true);
}, 60_000);
