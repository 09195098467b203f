/**
 * A remote change a node cannot apply (its kernel refuses it) leaves that node's desired state as it was. Its
 * writes to that service must then be conflicts, as for any change it has not applied: a write that went through
 * would put the node's older rows back in etcd, and take the other node's change back on every node.
 */
import { expect, test } from "bun:test";
import { readServices } from "../../../src/config/services.ts";
import { ConflictError } from "../../../src/core/errors.ts";
import { EtcdClient } from "../../../src/store/etcd-client.ts";
import { cleanupsAfterEach, etcdForFile } from "./etcd-process.ts";
import { directNode } from "./etcd-proxy.ts";

const etcd = etcdForFile();
const cleanups = cleanupsAfterEach();

const node = (prefix: string) => directNode(etcd.endpoint, prefix, cleanups);

/** Two nodes on `prefix`, with web/b1 (weight 100) created through A and applied by B. */
async function twoNodesWithB1(prefix: string) {
  const a = await node(prefix);
  const b = await node(prefix);
  await a.gorb.createService("web", { host: "10.0.0.1", port: 80 });
  await a.gorb.createBackend("web", "b1", { host: "10.1.0.1", port: 80, weight: 100 });
  expect(await b.store.waitApplied(a.store.committedRevision, 5000)).toBe(true);
  return { a, b };
}

test("a node whose kernel refused another node's change answers 409 to a write of that service, and does not undo the change in etcd", async () => {
  const prefix = "/failed-remote";
  const { a, b } = await twoNodesWithB1(prefix);

  // B changes b1's weight; A's kernel refuses the change, so A keeps weight 100.
  a.driver.failNext("update-destination", "ENOMEM");
  await b.gorb.updateBackend("web", "b1", { weight: 50 });
  expect(await a.store.waitApplied(b.store.committedRevision, 5000)).toBe(true);
  await a.gorb.idle();
  expect(a.logger.lines.some((l) => l.startsWith('error cannot apply the shared state of service "web" to IPVS'))).toBe(true);
  expect((await a.gorb.getBackend("web", "b1")).options.weight).toBe(100);

  // A write of b1 through A: A has not applied B's change, so it is a conflict, and etcd keeps weight 50.
  const write = await a.gorb.updateBackend("web", "b1", { pulse: { type: "tcp" } }).then(
    () => null,
    (error: unknown) => error,
  );
  expect(write).toBeInstanceOf(ConflictError);
  const row = (await new EtcdClient({ endpoints: [etcd.endpoint] }).range(`${prefix}/backends/web/b1`)).kvs[0];
  expect(JSON.parse(row?.value ?? "{}")).toMatchObject({ fields: { weight: 50 } });

  // The conflict had A try B's change again; its kernel takes it now, and A's next write goes through.
  await a.gorb.idle();
  expect((await a.gorb.getBackend("web", "b1")).options.weight).toBe(50);
  await a.gorb.updateBackend("web", "b1", { pulse: { type: "tcp" } });
  const after = (await new EtcdClient({ endpoints: [etcd.endpoint] }).range(`${prefix}/backends/web/b1`)).kvs[0];
  expect(JSON.parse(after?.value ?? "{}")).toMatchObject({ fields: { weight: 50, pulse: { type: "tcp" } } });
  expect(await b.store.waitApplied(a.store.committedRevision, 5000)).toBe(true);
  await b.gorb.idle();
  expect(await b.driver.snapshot()).toEqual(await a.driver.snapshot());
});

test("a service a node failed to apply leaves its `failed` list when another node deletes it", async () => {
  const prefix = "/failed-deleted";
  const a = await node(prefix);
  const b = await node(prefix);
  b.driver.failNext("add-service", "ENOMEM");
  await a.gorb.createService("web", { host: "10.0.0.1", port: 80 });
  // B's watch brings the create, which its kernel refuses: applied (handed to gorb), not served.
  expect(await b.store.waitApplied(a.store.committedRevision, 5000)).toBe(true);
  expect(b.store.status().failed.map((f) => f.service)).toEqual(["web"]);

  await a.gorb.deleteService("web");
  expect(await b.store.waitServed(a.store.committedRevision, 5000)).toBe(true);
  expect(b.store.status().failed).toEqual([]);
  expect(b.driver.peek()).toEqual([]);
});

test("a write or an apply through a node that could not apply a service says so, not 'retry', while its kernel keeps refusing", async () => {
  const prefix = "/failed-remote-says";
  const { a, b } = await twoNodesWithB1(prefix);

  // A's kernel refuses B's change of b1 again and again (each retry of A's).
  a.driver.failNext("update-destination", "ENOMEM", 1000);
  await b.gorb.updateBackend("web", "b1", { weight: 50 });
  expect(await a.store.waitApplied(b.store.committedRevision, 5000)).toBe(true);
  await a.gorb.idle();
  expect(a.store.status().failed.map((f) => f.service)).toEqual(["web"]);

  const refusal = (error: unknown) => (error instanceof ConflictError ? error.message : `not a conflict: ${String(error)}`);
  const says = 'this node could not apply the latest change of service "web" (its kernel refused it: this node\'s log says why, GET /cluster lists it)';
  // A write of that service through A.
  expect(await a.gorb.updateBackend("web", "b1", { pulse: { type: "tcp" } }).then(() => "accepted", refusal)).toStartWith(says);
  // An apply through A, which plans from every service A has: the same, whatever it declares.
  const apply = await a.gorb.apply(readServices({ api: { host: "10.0.0.9", port: 80 } })).then(() => "accepted", refusal);
  expect(apply).toStartWith(says);
  // Through B, which applied it, both go through.
  await b.gorb.updateBackend("web", "b1", { weight: 60 });
});
