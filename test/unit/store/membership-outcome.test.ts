/**
 * A membership write etcd applies but answers with gRPC Unavailable ("request timed out": its proposal committed
 * after the request's deadline) leaves the node's record written by its own lease at a revision the node did not
 * learn. The node must take that record as its own and go on updating it, not take it for another holder's.
 */
import { expect, test } from "bun:test";
import { EventBus } from "../../../src/core/events.ts";
import { EtcdClient } from "../../../src/store/etcd-client.ts";
import { Membership, listMembers } from "../../../src/store/membership.ts";
import { RecordingLogger } from "../core/fakes.ts";
import { cleanupsAfterEach, etcdForFile } from "./etcd-process.ts";
import { startEtcdProxy } from "./etcd-proxy.ts";

const etcd = etcdForFile();
const cleanups = cleanupsAfterEach();

async function waitFor(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await Bun.sleep(100);
  }
  return false;
}

test("a record write etcd applied but answered 'request timed out' does not lock the node out of its own record", async () => {
  const proxy = startEtcdProxy(etcd.endpoint);
  cleanups.push(() => proxy.stop());
  const prefix = "/membership-outcome";
  const events = new EventBus();
  const log = new RecordingLogger();
  const client = new EtcdClient({ endpoints: [proxy.endpoint] });
  const member = new Membership({
    client,
    prefix,
    node: "a",
    address: "10.0.0.1:4672",
    version: "test",
    events,
    status: () => ({ appliedRevision: 1, changeRevision: 1, state: "ok" }),
    ttlSeconds: 3,
    logger: log,
  });
  await member.start();
  cleanups.push(() => member.stop());
  const direct = new EtcdClient({ endpoints: [etcd.endpoint] });
  const health = async () => (await listMembers(direct, prefix)).find((m) => m.node === "a")?.backends["web/b1"];

  // The next record write is applied by etcd, and answered 503 Unavailable.
  proxy.timeOutNextTxn();
  events.publish("backend.health", { service: "web", backend: "b1", from: "unknown", to: "up", message: "" });
  expect(await waitFor(async () => (await health()) === "up", 10_000)).toBe(true);

  // The next change must reach the record: it is still this node's (its lease holds it).
  events.publish("backend.health", { service: "web", backend: "b1", from: "up", to: "down", message: "" });
  expect(await waitFor(async () => (await health()) === "down", 10_000)).toBe(true);
  expect(log.lines.filter((l) => l.includes("is registered by"))).toEqual([]);
}, 30_000);
