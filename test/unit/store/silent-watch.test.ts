/**
 * The watch asks etcd for progress notifications. A watch that has sent nothing, not even those, for several of
 * etcd's progress intervals is held up somewhere (a partition, a half-open connection): the node used to wait for
 * the 5-minute relist, saying "ok" all along. Once it has seen the interval etcd sends them at, it now says
 * degraded and relists. etcd here sends them every second (--experimental-watch-progress-notify-interval).
 */
import { expect, test } from "bun:test";
import { EtcdClient } from "../../../src/store/etcd-client.ts";
import { EtcdStateStore } from "../../../src/store/etcd-store.ts";
import { cleanupsAfterEach, etcdForFile, waitFor } from "./etcd-process.ts";
import { servingNode } from "./etcd-proxy.ts";

const etcd = etcdForFile(["--experimental-watch-progress-notify-interval", "1s"]);
const cleanups = cleanupsAfterEach();

test("a watch silent for several progress intervals is taken for dead: degraded, relisted, and nothing served is removed", async () => {
  const prefix = "/silent-watch";
  const { proxy, store, node, states } = await servingNode(etcd.endpoint, prefix, cleanups);
  // Two progress notifications in a row: a key outside the prefix changes nothing the watch sends events for, so
  // the node passes its revision only with the progress notification that follows it.
  const direct = new EtcdClient({ endpoints: [etcd.endpoint] });
  for (const n of [1, 2]) expect(await store.waitApplied(await direct.put("/elsewhere", String(n)), 10_000)).toBe(true);

  const held = proxy.holdWatches();
  cleanups.push(() => held.release());
  const other = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix });
  cleanups.push(() => other.close());
  await other.load();
  const row = { source: "api", fields: { host: "10.0.0.9", port: 80, method: "wrr" }, key: { family: "inet", protocol: "tcp", address: "10.0.0.9", port: 80 }, vip: false } as const;
  await other.commit({ putServices: [{ id: "api", ...row }], deleteServices: [], putBackends: [], deleteBackends: [] });

  const kernel = async () => (await node.driver.snapshot()).map((e) => `${"address" in e.service.key ? e.service.key.address : ""} ${e.destinations.length}`).sort();
  expect(await waitFor(async () => (await kernel()).includes("10.0.0.9 0"), 20_000)).toBe(true);
  expect(await kernel()).toEqual(["10.0.0.1 1", "10.0.0.9 0"]);
  expect(states).toContain("degraded");

  held.release();
  expect(await waitFor(async () => store.status().state === "ok", 10_000)).toBe(true);
}, 40_000);
