/**
 * Requests queued together on one node share one etcd transaction (group commit). etcd refused that transaction
 * for one request (another node had changed its service first) or for the group's size (more operations than
 * --max-txn-ops), and every request of the group answered that refusal: a 409 for a service no other node touched,
 * a 413 for each of 70 one-service creates. Now the group is run again in halves, down to the requests the refusal
 * is about; against a real etcd, node A's watch held by a proxy.
 */
import { expect, test } from "bun:test";
import { ConflictError } from "../../../src/core/errors.ts";
import { EtcdClient, prefixEnd } from "../../../src/store/etcd-client.ts";
import { cleanupsAfterEach, etcdForFile } from "./etcd-process.ts";
import { directNode, servingNode } from "./etcd-proxy.ts";

const etcd = etcdForFile();
const cleanups = cleanupsAfterEach();

const node = (prefix: string) => directNode(etcd.endpoint, prefix, cleanups);

function settled(work: Promise<void>): Promise<unknown> {
  return work.then(
    () => "ok",
    (error: unknown) => error,
  );
}

/** The service rows under `prefix` in etcd, by id. */
async function serviceRows(prefix: string): Promise<Map<string, unknown>> {
  const { kvs } = await new EtcdClient({ endpoints: [etcd.endpoint] }).range(`${prefix}/services/`, prefixEnd(`${prefix}/services/`));
  return new Map(kvs.map((kv) => [kv.key.slice(`${prefix}/services/`.length), JSON.parse(kv.value) as unknown]));
}

test("a request queued with one another node changed the service of first is committed and served; only the other is a 409", async () => {
  const prefix = "/group-conflict";
  const a = await servingNode(etcd.endpoint, prefix, cleanups);
  await a.node.gorb.createService("api", { host: "10.0.0.2", port: 80, method: "rr" });
  const b = await node(prefix);
  const held = a.proxy.holdWatches();
  cleanups.push(() => held.release());
  await b.gorb.updateService("web", { method: "wrr" });

  // Queued in the same turn: one group on A.
  const [web, api] = await Promise.all([
    settled(a.node.gorb.updateService("web", { method: "lc" })),
    settled(a.node.gorb.updateService("api", { method: "lc" })),
  ]);
  expect(web).toBeInstanceOf(ConflictError);
  expect(api).toBe("ok");
  expect(await serviceRows(prefix)).toMatchObject(
    new Map([
      ["api", { fields: { method: "lc" } }],
      ["web", { fields: { method: "wrr" } }],
    ]),
  );
  const schedulers = (await a.node.driver.snapshot()).map((s) => s.service.scheduler);
  expect(schedulers.sort()).toEqual(["lc", "rr"]);

  held.release();
  expect(await b.store.waitApplied(a.store.committedRevision, 5000)).toBe(true);
  await b.gorb.idle();
  expect((await b.driver.snapshot()).find((s) => s.service.scheduler === "lc")).toBeDefined();
});

test("70 services created at once through one node, more keys together than etcd's --max-txn-ops, are each committed", async () => {
  const prefix = "/group-size";
  const a = await node(prefix);
  const results = await Promise.all(Array.from({ length: 70 }, (_, i) => settled(a.gorb.createService(`s${i}`, { host: `10.0.1.${i + 1}`, port: 80 }))));
  expect(results.filter((r) => r !== "ok")).toEqual([]);
  expect((await serviceRows(prefix)).size).toBe(70);
  expect((await a.driver.snapshot()).length).toBe(70);
});
