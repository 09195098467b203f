/**
 * Fleet membership (src/store/membership.ts). A record write etcd applies but answers with gRPC Unavailable
 * ("request timed out": its proposal committed after the request's deadline) leaves the node's record written by
 * its own lease at a revision the node did not learn: the node must take that record as its own and go on
 * updating it, not take it for another holder's. And the record holds the health of backends checked before the
 * node registered, which no later event would bring.
 */
import { expect, test } from "bun:test";
import { EventBus } from "../../../src/core/events.ts";
import { EtcdClient } from "../../../src/store/etcd-client.ts";
import { Membership, type MembershipOptions, listMembers } from "../../../src/store/membership.ts";
import { RecordingLogger } from "../core/fakes.ts";
import { cleanupsAfterEach, etcdForFile, waitFor } from "./etcd-process.ts";
import { startEtcdProxy } from "./etcd-proxy.ts";

const etcd = etcdForFile();
const cleanups = cleanupsAfterEach();

/** Node "a"'s membership, started (and stopped after the test), with the given client, prefix and events. */
async function started(options: Pick<MembershipOptions, "client" | "prefix" | "events" | "logger" | "health">): Promise<Membership> {
  const member = new Membership({
    node: "a",
    address: "10.0.0.1:4672",
    version: "test",
    status: () => ({ appliedRevision: 1, changeRevision: 1, state: "ok" }),
    ttlSeconds: 3,
    ...options,
  });
  await member.start();
  cleanups.push(() => member.stop());
  return member;
}

test("a record write etcd applied but answered 'request timed out' does not lock the node out of its own record", async () => {
  const proxy = startEtcdProxy(etcd.endpoint);
  cleanups.push(() => proxy.stop());
  const prefix = "/membership-outcome";
  const events = new EventBus();
  const log = new RecordingLogger();
  const client = new EtcdClient({ endpoints: [proxy.endpoint] });
  await started({ client, prefix, events, logger: log });
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

test("the record holds the health of backends checked before the node registered, not those deleted meanwhile", async () => {
  const prefix = "/membership-seed";
  const events = new EventBus();
  const client = new EtcdClient({ endpoints: [etcd.endpoint] });
  // Checked before the membership starts (a restored backend with pulse none is up at once): no event will say it.
  events.publish("backend.health", { service: "web", backend: "b1", from: "unknown", to: "up", message: "" });
  await started({
    client,
    prefix,
    events,
    health: async () => {
      const health = [["web/b1", "up"], ["web/b2", "down"], ["api/b1", "down"]] as const;
      // Deleted while the health was read: the event is newer.
      events.publish("backend.deleted", { service: "web", backend: "b2" });
      events.publish("service.deleted", { service: "api" });
      return health;
    },
  });
  const record = (await listMembers(client, prefix)).find((m) => m.node === "a");
  expect(record?.backends).toEqual({ "web/b1": "up" });
});
