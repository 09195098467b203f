/**
 * A relist races this node's own writes: etcd serves the relist's range at revision R, and a change this node
 * commits at R+1 is answered before the range's answer is read. The snapshot is older than the node's own
 * state: applied, it would take the change back in the kernel until the watch brought it again.
 */
import { expect, test } from "bun:test";
import type { SavedState } from "../../../src/core/state.ts";
import { EtcdStateStore, type RemoteSink } from "../../../src/store/etcd-store.ts";
import { makeGorb } from "../core/fakes.ts";
import { cleanupsAfterEach, etcdForFile } from "./etcd-process.ts";
import { startEtcdProxy } from "./etcd-proxy.ts";

const etcd = etcdForFile();
const cleanups = cleanupsAfterEach();

test("a relist whose range is older than a change this node committed meanwhile does not take that change back", async () => {
  const proxy = startEtcdProxy(etcd.endpoint);
  cleanups.push(() => proxy.stop());
  const store = new EtcdStateStore({ endpoints: [proxy.endpoint], prefix: "/relist-race" });
  cleanups.push(() => store.close());
  const node = makeGorb({ store });
  await node.gorb.restore((await store.load()).state);
  // What the kernel has once the first relist was applied, before the watch that follows it starts.
  let relisted: (schedulers: string[]) => void = () => undefined;
  const relist = new Promise<string[]>((resolve) => (relisted = resolve));
  const sink: RemoteSink = {
    async applyRemote(read: () => { readonly state: SavedState; readonly ids: Iterable<string> }, onApplied?: () => void) {
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
