/**
 * A node's view of etcd races its own writes. A relist: etcd serves its range at revision R, and a change this node
 * commits at R+1 is answered before the range's answer is read. The snapshot is older than the node's own
 * state: applied, it would take the change back in the kernel until the watch brought it again. A watch behind
 * the node's commits: another node's create and delete of a service, then this node's create of it; the delete's
 * event, applied, would delete this node's service until its own event came.
 */
import { expect, test } from "bun:test";
import type { SavedState } from "../../../src/core/state.ts";
import { EtcdStateStore, type RemoteSink } from "../../../src/store/etcd-store.ts";
import { cleanupsAfterEach, etcdForFile } from "./etcd-process.ts";
import { proxiedNode } from "./etcd-proxy.ts";

const etcd = etcdForFile();
const cleanups = cleanupsAfterEach();

test("a relist whose range is older than a change this node committed meanwhile does not take that change back", async () => {
  const { proxy, store, node } = await proxiedNode(etcd.endpoint, "/relist-race", cleanups);
  // What the kernel has once the first relist was applied, before the watch that follows it starts.
  let relisted: (schedulers: string[]) => void = () => undefined;
  const relist = new Promise<string[]>((resolve) => (relisted = resolve));
  const sink: RemoteSink = {
    async applyRemote(read: () => { readonly state: SavedState; readonly ids: Iterable<string> }, onApplied?: (failed: ReadonlySet<string>) => void) {
      const result = await node.gorb.applyRemote(read, onApplied);
      if (store.status().relists === 1) relisted((await node.driver.snapshot()).map((e) => e.service.scheduler));
      return result;
    },
  };
  store.sync(sink);
  await node.gorb.createService("web", { host: "10.0.0.1", port: 80, method: "rr" });
  expect(await store.waitApplied(store.committedRevision, 5000)).toBe(true);

  const held = proxy.holdNextRange();
  proxy.breakWatches();
  await held.served;
  await node.gorb.updateService("web", { method: "wrr" });
  held.release();
  expect(await relist).toEqual(["wrr"]);
  // The node's next write compares what it committed, not the snapshot's older revision.
  await node.gorb.updateService("web", { method: "lc" });
  expect((await node.driver.snapshot()).map((e) => e.service.scheduler)).toEqual(["lc"]);
});

test("a watch behind this node's own writes does not apply the older events of a key it has written since", async () => {
  const prefix = "/watch-behind";
  const { proxy, store, node } = await proxiedNode(etcd.endpoint, prefix, cleanups);
  const other = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix });
  cleanups.push(() => other.close());
  await other.load();
  // The services in the kernel after each batch the watch applied.
  const kernels: string[][] = [];
  const sink: RemoteSink = {
    async applyRemote(read: () => { readonly state: SavedState; readonly ids: Iterable<string> }, onApplied?: (failed: ReadonlySet<string>) => void) {
      const result = await node.gorb.applyRemote(read, onApplied);
      kernels.push((await node.driver.snapshot()).map((e) => `${e.service.scheduler} ${"address" in e.service.key ? e.service.key.address : ""}`));
      return result;
    },
  };
  store.sync(sink);
  const held = proxy.holdWatches();
  // Another node creates web and deletes it; this node, whose watch has not brought either, creates its own web.
  const row = { source: "api", fields: { host: "10.0.0.9", port: 80, method: "wrr" }, key: { family: "inet", protocol: "tcp", address: "10.0.0.9", port: 80 }, vip: false } as const;
  await other.commit({ putServices: [{ id: "web", ...row }], deleteServices: [], putBackends: [], deleteBackends: [] });
  await other.commit({ putServices: [], deleteServices: ["web"], putBackends: [], deleteBackends: [] });
  await node.gorb.createService("web", { host: "10.0.0.1", port: 80, method: "rr" });
  held.release();
  expect(await store.waitApplied(store.committedRevision, 5000)).toBe(true);
  await node.gorb.idle();
  expect(kernels.filter((k) => JSON.stringify(k) !== JSON.stringify(["rr 10.0.0.1"]))).toEqual([]);
  expect((await node.driver.snapshot()).map((e) => e.service.scheduler)).toEqual(["rr"]);
});
