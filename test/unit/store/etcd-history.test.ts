/**
 * etcd answering from another history than the one a node followed: restarted with an empty data directory (or
 * restored from an older backup), so its revision is below the node's applied one. The node must not take the
 * empty state as "every service was deleted": it keeps its desired state and kernel, says why in status(),
 * refuses changes, and stays so even once etcd's new revisions pass its old one. Against a real etcd.
 */
import { expect, test } from "bun:test";
import { UnavailableError } from "../../../src/core/errors.ts";
import { EtcdStateStore } from "../../../src/store/etcd-store.ts";
import { makeGorb } from "../core/fakes.ts";
import { cleanupsAfterEach, startEtcd } from "./etcd-process.ts";

const cleanups = cleanupsAfterEach();

async function waitFor(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) return false;
    await Bun.sleep(20);
  }
  return true;
}

test("etcd restarted empty: the node keeps serving what it had, refuses changes, and never follows the new history", async () => {
  const etcd = await startEtcd();
  cleanups.push(() => etcd.stop());
  const store = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix: "/gorb", timeoutMs: 1000, retryMs: 50 });
  cleanups.push(() => store.close());
  const node = makeGorb({ store });
  await node.gorb.restore((await store.load()).state);
  store.sync(node.gorb);
  await node.gorb.createService("web", { host: "10.0.0.1", port: 80, method: "wrr" });
  await node.gorb.createBackend("web", "b1", { host: "10.1.0.1", port: 80 });
  await node.gorb.createBackend("web", "b2", { host: "10.1.0.2", port: 80 });
  for (let i = 0; i < 10; i++) await node.gorb.updateBackend("web", "b1", { weight: 10 + i });
  expect(await store.waitApplied(store.committedRevision, 5000)).toBe(true);
  const applied = store.status().appliedRevision;
  const kernel = await node.driver.snapshot();
  expect(kernel[0]?.destinations).toHaveLength(2);

  await etcd.wipe();
  // The broken watch makes the node read etcd again: it finds revision 1, below what it applied.
  expect(await waitFor(() => (store.status().lastError ?? "").includes(`below the revision ${applied} this node has applied`), 4000)).toBe(true);
  await node.gorb.idle();
  expect(store.status().state).toBe("degraded");
  expect(await node.driver.snapshot()).toEqual(kernel);
  expect(node.gorb.listServices()).toEqual(["web"]);

  // A change would be written into the other history: refused (503), nothing changed here.
  expect(await node.gorb.createService("api", { host: "10.0.0.2", port: 80 }).catch((e: unknown) => e)).toBeInstanceOf(UnavailableError);
  expect(node.gorb.listServices()).toEqual(["web"]);

  // The new history's revision passes the old one: still not followed.
  for (let i = 0; i <= applied; i++) await store.client.put(`/other/k${i}`, "x");
  const error = await store.probe().catch((e: unknown) => e);
  expect(error).toMatchObject({ name: "StoreDivergedError", appliedRevision: applied, revision: expect.any(Number) });
  expect(await node.gorb.createService("api", { host: "10.0.0.2", port: 80 }).catch((e: unknown) => e)).toBeInstanceOf(UnavailableError);
  expect(await node.driver.snapshot()).toEqual(kernel);
});
