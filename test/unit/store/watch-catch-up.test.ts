/**
 * A watch that starts behind etcd (created from an older revision: a node restoring a large state while others
 * write) is sent what it missed in batches of at most 1,000 revisions, and each batch's header carries etcd's
 * current revision, not the last revision in the batch. Taken as "applied up to here", the first batch made the
 * node report (GET /cluster/revision?wait=N, its membership record) revisions whose changes were still in the
 * next batch. Against a real etcd.
 */
import { expect, test } from "bun:test";
import { EtcdStateStore } from "../../../src/store/etcd-store.ts";
import { makeGorb } from "../core/fakes.ts";
import { cleanupsAfterEach, etcdForFile } from "./etcd-process.ts";

const etcd = etcdForFile();
const cleanups = cleanupsAfterEach();

async function node(prefix: string) {
  const store = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix, retryMs: 100 });
  cleanups.push(() => store.close());
  const stack = makeGorb({ store });
  await stack.gorb.restore((await store.load()).state);
  return { ...stack, store };
}

test("a node whose watch catches up over more than 1,000 revisions reports a revision only once it has applied its changes", async () => {
  const prefix = "/catch-up";
  const a = await node(prefix);
  // b has read the snapshot, and starts watching only after 1,000 other revisions and a's change: its watch is behind.
  const b = await node(prefix);
  for (let i = 0; i < 20; i++) {
    await Promise.all(Array.from({ length: 55 }, (_, j) => a.store.client.put(`${prefix}/nodes/filler${j}`, "not a node record")));
  }
  await a.gorb.createService("web", { host: "10.0.0.1", port: 80 });
  const change = a.store.committedRevision;

  b.store.sync(b.gorb);
  expect(await b.store.waitApplied(change, 20_000)).toBe(true);
  // Checked as soon as the node says it has applied the revision.
  expect(b.gorb.listServices()).toEqual(["web"]);
}, 60_000);
