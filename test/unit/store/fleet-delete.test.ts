/**
 * Deleting a service deletes every key under its backends' prefix in one transaction. It used to take along a
 * backend another node had added (or changed) that this node had not seen yet (its watch had not brought it), with
 * no 409, while every other write is a 409 when another node changed the same keys first. Now the delete is a 409
 * unless etcd holds there just what this node has applied; against a real etcd, node A's watch held by a proxy.
 */
import { expect, test } from "bun:test";
import { ConflictError } from "../../../src/core/errors.ts";
import { EtcdClient, prefixEnd } from "../../../src/store/etcd-client.ts";
import { cleanupsAfterEach, etcdForFile } from "./etcd-process.ts";
import { directNode, servingNode } from "./etcd-proxy.ts";

const etcd = etcdForFile();
const cleanups = cleanupsAfterEach();

const nodeB = (prefix: string) => directNode(etcd.endpoint, prefix, cleanups);

/** Node A serving web with b1 (its watch through a proxy) and node B, which has applied web. */
async function fleet(prefix: string) {
  const a = await servingNode(etcd.endpoint, prefix, cleanups);
  const b = await nodeB(prefix);
  return { a, b };
}

/** The keys under `prefix` in etcd. */
async function keys(prefix: string): Promise<string[]> {
  const { kvs } = await new EtcdClient({ endpoints: [etcd.endpoint] }).range(`${prefix}/`, prefixEnd(`${prefix}/`));
  return kvs.map((kv) => kv.key.slice(prefix.length)).filter((key) => !key.startsWith("/nodes/"));
}

function settled(work: Promise<void>): Promise<unknown> {
  return work.then(
    () => null,
    (error: unknown) => error,
  );
}

test("deleting a service on a node that has not seen a backend another node added is a 409 that deletes nothing, and goes through once it has", async () => {
  const prefix = "/delete-unseen";
  const { a, b } = await fleet(prefix);
  const held = a.proxy.holdWatches();
  cleanups.push(() => held.release());
  await b.gorb.createBackend("web", "b2", { host: "10.1.0.2", port: 80 });
  expect(a.store.appliedRevision).toBeLessThan(b.store.committedRevision);

  const refused = await settled(a.node.gorb.deleteService("web"));
  expect(refused).toBeInstanceOf(ConflictError);
  expect(await keys(prefix)).toEqual(["/addresses/inet/tcp/10.0.0.1/80", "/backends/web/b1", "/backends/web/b2", "/services/web"]);

  held.release();
  expect(await a.store.waitApplied(b.store.committedRevision, 5000)).toBe(true);
  await a.node.gorb.deleteService("web");
  expect(await keys(prefix)).toEqual([]);
});

test("deleting a service on a node that has not seen another node's change of a backend it knows is a 409", async () => {
  const prefix = "/delete-changed";
  const { a, b } = await fleet(prefix);
  const held = a.proxy.holdWatches();
  cleanups.push(() => held.release());
  await b.gorb.updateBackend("web", "b1", { weight: 50 });

  expect(await settled(a.node.gorb.deleteService("web"))).toBeInstanceOf(ConflictError);
  expect(await keys(prefix)).toEqual(["/addresses/inet/tcp/10.0.0.1/80", "/backends/web/b1", "/services/web"]);
});

test("a node deletes a service whose backends it has all seen, its own writes that its watch has not brought back included", async () => {
  const prefix = "/delete-own";
  const { a } = await fleet(prefix);
  const held = a.proxy.holdWatches();
  cleanups.push(() => held.release());
  // Written by A, in byte order on both sides of b1 (the compares split the prefix around them).
  await a.node.gorb.createBackend("web", "a0", { host: "10.1.0.3", port: 80 });
  await a.node.gorb.createBackend("web", "c\u00e9", { host: "10.1.0.4", port: 80 });
  await a.node.gorb.updateBackend("web", "b1", { weight: 7 });
  expect(a.store.appliedRevision).toBeLessThan(a.store.committedRevision);

  await a.node.gorb.deleteService("web");
  expect(await keys(prefix)).toEqual([]);

  // And a service without backends.
  await a.node.gorb.createService("api", { host: "10.0.0.2", port: 80 });
  await a.node.gorb.deleteService("api");
  expect(await keys(prefix)).toEqual([]);
});

test("deleting a service on a node whose kernel refused another node's backend is a 409 until that backend is applied", async () => {
  const prefix = "/delete-failed";
  const { a, b } = await fleet(prefix);
  a.node.driver.failNext("add-destination", "ENOMEM");
  await b.gorb.createBackend("web", "b2", { host: "10.1.0.2", port: 80 });
  expect(await a.store.waitApplied(b.store.committedRevision, 5000)).toBe(true);
  await a.node.gorb.idle();
  expect(a.store.status().failed.map((f) => f.service)).toEqual(["web"]);

  expect(await settled(a.node.gorb.deleteService("web"))).toBeInstanceOf(ConflictError);
  expect(await keys(prefix)).toEqual(["/addresses/inet/tcp/10.0.0.1/80", "/backends/web/b1", "/backends/web/b2", "/services/web"]);

  // The conflict had A try B's change again; its kernel takes it now, and the delete goes through.
  await a.node.gorb.idle();
  expect(a.store.status().failed).toEqual([]);
  await a.node.gorb.deleteService("web");
  expect(await keys(prefix)).toEqual([]);
});
