/**
 * A watch whose member goes silent while the node's other requests still reach etcd. It used to be noticed only
 * by the 5-minute relist (or, with etcd's --experimental-watch-progress-notify-interval, after three intervals):
 * a watch that connected and got no first message waited for good. Now the watch's connection and first message
 * have the client's request timeout. etcd here sends no progress notifications (10 minutes, its default).
 */
import { expect, test } from "bun:test";
import { EtcdStateStore } from "../../../src/store/etcd-store.ts";
import { cleanupsAfterEach, etcdForFile } from "./etcd-process.ts";
import { servingNode } from "./etcd-proxy.ts";

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
  proxy.breakWatches();

  const other = await otherNode(prefix);
  expect(await store.waitApplied(await createApi(other), 15_000)).toBe(true);
  expect(store.client.endpoint).toBe(etcd.endpoint);
}, 30_000);
