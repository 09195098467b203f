/**
 * An apply makes the file-owned services exactly its set: those it leaves out are deleted. Planned on a node whose
 * watch had not brought another node's change yet, it used to go through on that stale view: a service another node
 * had just applied stayed beside the set (both applies answered, the fleet matching neither), a backend changed
 * there was not looked at. Now such an apply is a 409 that changes nothing, and goes through once the node has
 * applied that change; against a real etcd, node A's watch held by a proxy.
 */
import { expect, test } from "bun:test";
import { readServices } from "../../../src/config/services.ts";
import { ConflictError } from "../../../src/core/errors.ts";
import { EtcdClient, prefixEnd } from "../../../src/store/etcd-client.ts";
import { EtcdStateStore } from "../../../src/store/etcd-store.ts";
import { makeGorb } from "../core/fakes.ts";
import { cleanupsAfterEach, etcdForFile } from "./etcd-process.ts";
import { servingNode } from "./etcd-proxy.ts";

const etcd = etcdForFile();
const cleanups = cleanupsAfterEach();

/** Node A serving web with b1 (its watch through a proxy, held) and node B on etcd directly, which has applied web. */
async function fleet(prefix: string) {
  const a = await servingNode(etcd.endpoint, prefix, cleanups);
  const store = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix, retryMs: 100 });
  const b = { ...makeGorb({ store }), store };
  await b.gorb.restore((await store.load()).state);
  store.sync(b.gorb);
  cleanups.push(() => store.close());
  expect(await store.waitApplied(a.store.committedRevision, 5000)).toBe(true);
  const held = a.proxy.holdWatches();
  cleanups.push(() => held.release());
  return { a, b, held };
}

/** The keys of services and backends under `prefix` in etcd. */
async function keys(prefix: string): Promise<string[]> {
  const { kvs } = await new EtcdClient({ endpoints: [etcd.endpoint] }).range(`${prefix}/`, prefixEnd(`${prefix}/`));
  return kvs.map((kv) => kv.key.slice(prefix.length)).filter((key) => key.startsWith("/services/") || key.startsWith("/backends/"));
}

function settled(work: Promise<unknown>): Promise<unknown> {
  return work.then(
    () => null,
    (error: unknown) => error,
  );
}

const web2 = readServices({ web2: { host: "10.0.0.4", port: 80 } });

test("an apply through a node that has not seen a service another node applied is a 409 that changes nothing, and goes through once it has", async () => {
  const prefix = "/apply-unseen";
  const { a, b, held } = await fleet(prefix);
  await b.gorb.apply(readServices({ db: { host: "10.0.0.3", port: 80 } }));
  const before = await keys(prefix);
  const kernel = await a.node.driver.snapshot();

  const refused = await settled(a.node.gorb.apply(web2));
  expect(refused).toBeInstanceOf(ConflictError);
  expect((refused as Error).message).toContain(`${prefix}/services/db`);
  expect(await keys(prefix)).toEqual(before);
  expect(await a.node.driver.snapshot()).toEqual(kernel);

  // Once A has db, the same set replaces it: db is file-owned and not in the set.
  held.release();
  expect(await a.store.waitApplied(b.store.committedRevision, 5000)).toBe(true);
  await a.node.gorb.apply(web2);
  expect(await keys(prefix)).toEqual(["/backends/web/b1", "/services/web", "/services/web2"]);
});

test("an apply through a node that has not seen another node's change of a backend is a 409", async () => {
  const prefix = "/apply-backend";
  const { a, b } = await fleet(prefix);
  await b.gorb.updateBackend("web", "b1", { weight: 5 });
  expect(await settled(a.node.gorb.apply(web2))).toBeInstanceOf(ConflictError);
  expect(await keys(prefix)).toEqual(["/backends/web/b1", "/services/web"]);
});

test("an apply right after the node's own writes, before its watch brought them back, goes through", async () => {
  const prefix = "/apply-own";
  const { a } = await fleet(prefix);
  await a.node.gorb.createBackend("web", "b2", { host: "10.1.0.2", port: 80 });
  await a.node.gorb.apply(readServices({ db: { host: "10.0.0.3", port: 80 } }));
  expect(a.store.appliedRevision).toBeLessThan(a.store.committedRevision);
  await a.node.gorb.apply(web2);
  expect(await keys(prefix)).toEqual(["/backends/web/b1", "/backends/web/b2", "/services/web", "/services/web2"]);
});
