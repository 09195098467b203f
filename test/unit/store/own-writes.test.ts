/**
 * A node's own write can reach its watch before the write's answer does: the watch then sees a change it has not
 * recorded as its own, and hands it to Gorb as a remote one. Meanwhile a later local change may commit first; the
 * rows handed over must be read when they are applied (under Gorb's lock), not when the event came, or the older
 * write is programmed over the newer one, and the newer one's event is then skipped as already applied. Against a
 * real etcd; the race is forced by holding the first write's answer until its event has been handed over.
 */
import { expect, test } from "bun:test";
import { EtcdStateStore } from "../../../src/store/etcd-store.ts";
import { makeGorb } from "../core/fakes.ts";
import { etcdForFile, cleanupsAfterEach } from "./etcd-process.ts";

const etcd = etcdForFile();
const cleanups = cleanupsAfterEach();

test("an own write seen by the watch before its answer never undoes a later local write", async () => {
  const store = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix: "/own" });
  cleanups.push(() => store.close());
  const node = makeGorb({ store });
  await node.gorb.restore((await store.load()).state);
  // How many hand-overs there were, and who waits for the next one.
  let handed = 0;
  let waiting: (() => void) | null = null;
  store.sync({
    applyRemote(...args: Parameters<typeof node.gorb.applyRemote>) {
      handed++;
      waiting?.();
      return node.gorb.applyRemote(...args);
    },
  });
  const handedSince = (count: number) => new Promise<void>((resolve) => (handed > count ? resolve() : (waiting = resolve)));
  await node.gorb.createService("web", { host: "10.0.0.1", port: 80 });
  await node.gorb.createBackend("web", "b1", { host: "10.1.0.1", port: 80, weight: 5 });

  // The second change is queued behind the first as the first's transaction goes out, and that transaction's
  // answer is held until the watch has handed its event over: the hand-over is applied after the second change.
  const txn = store.client.txn.bind(store.client);
  let second: Promise<void> | null = null;
  let hold = true;
  store.client.txn = async (...args: Parameters<typeof txn>) => {
    if (!hold) return txn(...args);
    hold = false;
    second = node.gorb.updateBackend("web", "b1", { weight: 20 });
    const before = handed;
    const answer = await txn(...args);
    await handedSince(before);
    return answer;
  };
  await node.gorb.updateBackend("web", "b1", { weight: 10 });
  await second;
  expect(await store.waitApplied(store.committedRevision, 5000)).toBe(true);
  await node.gorb.idle();

  const stored = JSON.parse((await store.client.range("/own/backends/web/b1")).kvs[0]?.value ?? "{}") as { fields: { weight: number } };
  expect(stored.fields.weight).toBe(20);
  expect((await node.driver.snapshot())[0]?.destinations.map((d) => d.weight)).toEqual([20]);
});
