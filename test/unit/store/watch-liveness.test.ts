/**
 * A watch whose member goes silent while the node's other requests still reach etcd. It used to be noticed only
 * by the 5-minute relist (or, with etcd's --experimental-watch-progress-notify-interval, after three intervals):
 * a watch that connected and got no first message waited for good, and one that stopped delivering (a partition,
 * a half-open connection) said "ok" while keepalives went on. Now the watch's connection and first message have
 * the client's request timeout, and a watch that says nothing while etcd's revision (every answer's header) is
 * ahead of it and etcd has changes under the prefix is taken for stale: degraded, relisted and watched again on
 * the next endpoint. etcd here sends no progress notifications (10 minutes, its default).
 */
import { expect, test } from "bun:test";
import { EtcdClient } from "../../../src/store/etcd-client.ts";
import { EtcdStateStore } from "../../../src/store/etcd-store.ts";
import { cleanupsAfterEach, etcdForFile, waitFor } from "./etcd-process.ts";
import { memberA, servingNode } from "./etcd-proxy.ts";

const etcd = etcdForFile();
const cleanups = cleanupsAfterEach();

const api = { source: "api", fields: { host: "10.0.0.9", port: 80, method: "wrr" }, key: { family: "inet", protocol: "tcp", address: "10.0.0.9", port: 80 }, vip: false } as const;

/** Another node's store on etcd directly, under `prefix`. */
async function otherNode(prefix: string): Promise<EtcdStateStore> {
  const other = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix });
  cleanups.push(() => other.close());
  await other.load();
  return other;
}

async function createApi(other: EtcdStateStore): Promise<number> {
  await other.commit({ putServices: [{ id: "api", ...api }], deleteServices: [], putBackends: [], deleteBackends: [] });
  return other.committedRevision;
}

test("a watch that connects and sends nothing times out and watches on the next endpoint", async () => {
  const prefix = "/watch-connect";
  const { proxy, store } = await servingNode(etcd.endpoint, prefix, cleanups, { fallback: [etcd.endpoint] });
  // Every watch through the proxy from now on connects and hears nothing; the one running ends.
  const held = proxy.holdWatches();
  cleanups.push(() => held.release());
  const relists = store.status().relists;
  proxy.breakWatches();
  // The relist that follows the break is over (its range would otherwise bring the change below): from now on only
  // a watch brings it, and through the proxy none does.
  expect(await waitFor(async () => store.status().relists > relists, 10_000)).toBe(true);

  const other = await otherNode(prefix);
  expect(await store.waitApplied(await createApi(other), 15_000)).toBe(true);
  expect(store.client.endpoint).toBe(etcd.endpoint);
}, 30_000);

test("a watch silent while keepalives show etcd ahead with changes under the prefix is stale: degraded, relisted, watched on the next endpoint", async () => {
  const prefix = "/watch-silent";
  const { proxy, store, node, states } = await servingNode(etcd.endpoint, prefix, cleanups, { fallback: [etcd.endpoint] });
  await memberA(store, prefix, cleanups, (reason) => store.resync(reason));
  const held = proxy.holdWatches();
  cleanups.push(() => held.release());

  const other = await otherNode(prefix);
  const revision = await createApi(other);
  const started = Date.now();
  expect(await store.waitApplied(revision, 15_000)).toBe(true);
  expect(Date.now() - started).toBeLessThan(12_000);
  const kernel = (await node.driver.snapshot()).map((e) => ("address" in e.service.key ? e.service.key.address : "")).sort();
  expect(kernel).toEqual(["10.0.0.1", "10.0.0.9"]);
  expect(states).toContain("degraded");
  // The proxy still holds every watch: the node follows etcd on the next endpoint, and says ok there.
  expect(await waitFor(async () => store.status().state === "ok", 10_000)).toBe(true);
  expect(store.client.endpoint).toBe(etcd.endpoint);
  await other.commit({ putServices: [], deleteServices: ["api"], putBackends: [], deleteBackends: [] });
  expect(await store.waitApplied(other.committedRevision, 5000)).toBe(true);
}, 40_000);

test("a live watch of a quiet prefix, etcd moving elsewhere, is asked about and never taken for stale", async () => {
  const prefix = "/watch-quiet";
  const { proxy, store } = await servingNode(etcd.endpoint, prefix, cleanups, { watchLagMs: 300 });
  await memberA(store, prefix, cleanups, (reason) => store.resync(reason));
  const relists = store.status().relists;
  const seen = new Set<string>();
  const sampler = setInterval(() => seen.add(store.status().state), 20);
  cleanups.push(() => clearInterval(sampler));

  const direct = new EtcdClient({ endpoints: [etcd.endpoint] });
  const other = await otherNode(prefix);
  for (let i = 0; i < 4; i++) {
    // Another client's keys outside the prefix: etcd moves, the node's keepalives tell it, the watch rightly says
    // nothing, and the node asks etcd whether anything changed under the prefix.
    const asked = proxy.changedKeyRanges();
    const askedAbout = waitFor(async () => {
      if (proxy.changedKeyRanges() > asked) return true;
      await direct.put(`/elsewhere/${i}`, String(i));
      return false;
    }, 10_000);
    expect(await askedAbout).toBe(true);
    // A change under the prefix in the middle: the live watch delivers it.
    if (i === 1) expect(await store.waitApplied(await createApi(other), 5000)).toBe(true);
  }
  expect(store.status().relists).toBe(relists);
  expect([...seen]).toEqual(["ok"]);
}, 40_000);
