/**
 * X-Gorb-Revision names a revision that holds what the answer says is so. A write that found the state already as
 * asked (an apply with nothing left to change, because another node made the same changes) commits nothing: its
 * answer must still name the revision of the change it found, so that GET /cluster/revision?wait=N on a third node
 * answers only once that node serves it too. It used to name this node's own last commit (0 on a node that never
 * wrote), which every node has "reached" at once.
 */
import { expect, test } from "bun:test";
import { createApp } from "../../../src/api/app.ts";
import type { ClusterApi } from "../../../src/api/cluster.ts";
import { EtcdStateStore } from "../../../src/store/etcd-store.ts";
import { makeGorb } from "../core/fakes.ts";
import { cleanupsAfterEach, etcdForFile } from "./etcd-process.ts";

const etcd = etcdForFile();
const cleanups = cleanupsAfterEach();

async function node(name: string, prefix: string) {
  const store = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix, timeoutMs: 1000, retryMs: 100 });
  const stack = makeGorb({ store });
  await stack.gorb.restore((await store.load()).state);
  store.sync(stack.gorb);
  cleanups.push(() => store.close());
  const cluster: ClusterApi = {
    node: name,
    committedRevision: () => store.committedRevision,
    status: () => store.status(),
    waitApplied: (revision, ms) => store.waitServed(revision, ms),
    members: () => Promise.resolve([]),
  };
  const app = createApp({ gorb: stack.gorb, logger: stack.logger, cluster });
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await app.handle(new Request(`http://gorb.test${path}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) }));
    const text = await response.text();
    return { status: response.status, revision: Number(response.headers.get("X-Gorb-Revision")), body: text === "" ? null : (JSON.parse(text) as unknown) };
  };
  return { ...stack, store, call };
}

test("an apply that finds every change already made by another node answers that change's revision, not its own last commit", async () => {
  const a = await node("a", "/header1");
  const b = await node("b", "/header1");
  const doc = { services: { web: { host: "10.0.0.1", port: 80, backends: { b1: { host: "10.1.0.1", port: 80, weight: 20 } } } } };
  const first = await a.call("POST", "/apply", doc);
  expect(first.status).toBe(200);
  expect(await b.store.waitApplied(first.revision, 5000)).toBe(true);
  await b.gorb.idle();

  const again = await b.call("POST", "/apply", doc);
  expect(again).toMatchObject({ status: 200, body: { ok: true, changes: [] } });
  // What the answer says holds (web with b1 at weight 20) is in etcd from first.revision on.
  expect(again.revision).toBeGreaterThanOrEqual(first.revision);
});
