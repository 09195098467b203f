/**
 * A node's own write moves its change revision at once, and its applied revision once its watch passes the write.
 * A membership record published in between (the watch behind, say on a loaded etcd) says change R, applied R-1. The
 * record must follow the applied revision once the watch catches up: it used to keep R-1 until the next change of
 * services or backends, so GET /cluster showed a node that had applied everything as not converged for as long.
 */
import { expect, test } from "bun:test";
import { listMembers } from "../../../src/store/membership.ts";
import { cleanupsAfterEach, etcdForFile, waitFor } from "./etcd-process.ts";
import { memberA, proxiedNode } from "./etcd-proxy.ts";

const etcd = etcdForFile();
const cleanups = cleanupsAfterEach();

test("a record published while the node's watch was behind its own write says converged once the watch catches up", async () => {
  const prefix = "/membership-converged";
  const { proxy, store, node } = await proxiedNode(etcd.endpoint, prefix, cleanups);
  store.sync(node.gorb);
  const member = await memberA(store, prefix, cleanups);

  const held = proxy.holdWatches();
  await node.gorb.createService("web", { host: "10.0.0.1", port: 80 });
  const change = store.status().changeRevision;
  const record = async () => (await listMembers(store.client, prefix)).find((m) => m.node === "a");
  // Published on a renewal while the watch is held: the change, not yet applied.
  expect(await waitFor(async () => (await record())?.changeRevision === change, 10_000)).toBe(true);
  expect((await record())?.appliedRevision).toBeLessThan(change);

  held.release();
  expect(await store.waitApplied(change, 10_000)).toBe(true);
  expect(await waitFor(async () => ((await record())?.appliedRevision ?? 0) >= change, 10_000)).toBe(true);
}, 30_000);
