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
import { Membership, type MembershipOptions, drainPeerReader, listMembers } from "../../../src/store/membership.ts";
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

test("the record holds the health a backend starts with: up for one created with pulse none, which no check announces", async () => {
  const prefix = "/membership-created";
  const events = new EventBus();
  const client = new EtcdClient({ endpoints: [etcd.endpoint] });
  await started({ client, prefix, events });
  events.publish("backend.created", { service: "web", backend: "b1", source: "api", health: "up" });
  events.publish("backend.created", { service: "web", backend: "b2", source: "api", health: "unknown" });
  const record = async () => (await listMembers(client, prefix)).find((m) => m.node === "a")?.backends;
  expect(await waitFor(async () => (await record())?.["web/b2"] !== undefined, 10_000)).toBe(true);
  expect(await record()).toEqual({ "web/b1": "up", "web/b2": "unknown" });
}, 30_000);

test("the record carries this node's counts of the drains it watches, until they end; drainPeerReader sums the others'", async () => {
  const prefix = "/membership-drains";
  const events = new EventBus();
  const client = new EtcdClient({ endpoints: [etcd.endpoint] });
  await started({ client, prefix, events });
  const deadline = "2026-12-05T20:00:00.000Z";
  const drain = (phase: "started" | "progress" | "drained", active: number | null, inactive: number | null) =>
    events.publish("backend.drain", { service: "web", backend: "b1", phase, then: "remove", deadline, active, inactive });
  const recordOf = async (node: string) => (await listMembers(client, prefix)).find((m) => m.node === node);
  // What node `self` reads of the others, from a fresh read of the records each time (no reuse).
  const peersOf = (self: string) => drainPeerReader(client, prefix, self, 0);

  drain("started", null, null);
  drain("progress", 2, 1);
  // Published at once when a count leaves zero or reaches it, not at the next renewal (ttl 3 s: every second).
  expect(await waitFor(async () => (await recordOf("a"))?.drains?.["web/b1"]?.active === 2, 5000)).toBe(true);
  expect((await recordOf("a"))?.drains).toEqual({ "web/b1": { deadline, active: 2, inactive: 1 } });
  // What node b reads of the others: a's counts for that drain; a drain with another deadline is another drain.
  expect(await peersOf("b")("web", "b1", deadline)).toEqual({ active: 2, inactive: 1 });
  expect(await peersOf("b")("web", "b1", "2026-12-05T21:00:00.000Z")).toBeNull();
  expect(await peersOf("b")("web", "b2", deadline)).toBeNull();
  // Its own record is not counted: node a asking sees nobody else.
  expect(await peersOf("a")("web", "b1", deadline)).toEqual({ active: 0, inactive: 0 });

  // A third node's record with counts that are not counts says nothing: it keeps the drain waiting.
  const c = { node: "c", address: "c:4672", version: "test", startedAt: deadline, appliedRevision: 1, store: "ok", backends: {}, drains: { "web/b1": { deadline, active: "0" } } };
  await client.txn([], [{ put: { key: `${prefix}/nodes/c`, value: JSON.stringify(c) } }]);
  expect((await recordOf("c"))?.drains).toEqual({});
  expect(await peersOf("b")("web", "b1", deadline)).toBeNull();
  await client.deleteRange(`${prefix}/nodes/c`);

  drain("progress", 0, 0);
  expect(await waitFor(async () => (await recordOf("a"))?.drains?.["web/b1"]?.active === 0, 5000)).toBe(true);
  expect(await peersOf("b")("web", "b1", deadline)).toEqual({ active: 0, inactive: 0 });
  // Ended: gone from the record at the next publication.
  drain("drained", 0, 0);
  expect(await waitFor(async () => (await recordOf("a"))?.drains === undefined, 5000)).toBe(true);
});

test("one read of the records answers for every drain asked about within reuseMs; a failed read is not reused", async () => {
  let reads = 0;
  let fail = false;
  const client = new EtcdClient({ endpoints: [etcd.endpoint] });
  const counting = new Proxy(client, {
    get(target, name, receiver) {
      if (name !== "range") return Reflect.get(target, name, receiver);
      return async (...args: Parameters<EtcdClient["range"]>) => {
        reads++;
        if (fail) throw new Error("etcd unreachable");
        return target.range(...args);
      };
    },
  });
  const peers = drainPeerReader(counting, "/membership-reuse", "a", 60_000);
  expect(await Promise.all([peers("web", "b1", "d"), peers("web", "b2", "d"), peers("api", "x", "d")])).toEqual([
    { active: 0, inactive: 0 },
    { active: 0, inactive: 0 },
    { active: 0, inactive: 0 },
  ]);
  expect(reads).toBe(1);
  const failing = drainPeerReader(counting, "/membership-reuse", "a", 60_000);
  fail = true;
  await expect(failing("web", "b1", "d")).rejects.toThrow("etcd unreachable");
  fail = false;
  expect(await failing("web", "b1", "d")).toEqual({ active: 0, inactive: 0 });
  expect(reads).toBe(3);
});
