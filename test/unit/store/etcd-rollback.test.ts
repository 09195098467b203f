/**
 * etcd answering below the revision a node applied because it lost writes (a single member SIGKILLed may lose
 * writes it acknowledged, etcd issue 14370; here: its data directory put back from a copy). When every lost
 * write is outside the desired state (membership records under PREFIX/nodes/), the node follows etcd again from
 * its revision and keeps taking changes, and its membership record comes back; when a change of services or
 * backends was lost, it has diverged as before (refuses changes, keeps what it serves), also when etcd has since
 * numbered other writes past the lost change. Against a real etcd.
 */
import { expect, test } from "bun:test";
import { UnavailableError } from "../../../src/core/errors.ts";
import { EventBus } from "../../../src/core/events.ts";
import { EtcdClient } from "../../../src/store/etcd-client.ts";
import { EtcdStateStore } from "../../../src/store/etcd-store.ts";
import { Membership, listMembers } from "../../../src/store/membership.ts";
import { RecordingLogger, makeGorb } from "../core/fakes.ts";
import { cleanupsAfterEach, startEtcd, waitFor } from "./etcd-process.ts";

const cleanups = cleanupsAfterEach();

/** A node on its own etcd, with web (one backend) written; its store, gorb, membership events and log. */
async function node(retryMs = 50) {
  const etcd = await startEtcd();
  cleanups.push(() => etcd.stop());
  const log = new RecordingLogger();
  const store = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix: "/gorb", timeoutMs: 1000, retryMs, logger: log });
  cleanups.push(() => store.close());
  const stack = makeGorb({ store });
  await stack.gorb.restore((await store.load()).state);
  store.sync(stack.gorb);
  await stack.gorb.createService("web", { host: "10.0.0.1", port: 80 });
  await stack.gorb.createBackend("web", "b1", { host: "10.1.0.1", port: 80 });
  expect(await store.waitApplied(store.committedRevision, 5000)).toBe(true);
  return { etcd, log, store, gorb: stack.gorb };
}

const ok = (store: EtcdStateStore) => async () => store.status().state === "ok";

test("etcd lost only membership writes: the node warns, follows etcd from its revision, keeps taking changes, and its record is back", async () => {
  const { etcd, log, store, gorb } = await node();
  const events = new EventBus();
  const direct = new EtcdClient({ endpoints: [etcd.endpoint] });
  const member = new Membership({ client: store.client, prefix: "/gorb", node: "a", address: "10.0.0.1:4672", version: "test", status: () => store.status(), events, ttlSeconds: 10, logger: log });
  await member.start();
  cleanups.push(() => member.stop());
  const record = async () => (await listMembers(direct, "/gorb")).find((m) => m.node === "a");
  expect(await waitFor(async () => (await record()) !== undefined, 5000)).toBe(true);
  const kept = store.committedRevision;

  await etcd.backup();
  expect(await waitFor(ok(store), 5000)).toBe(true);
  // After the copy: membership records only (this node's, another node's).
  events.publish("backend.health", { service: "web", backend: "b1", from: "unknown", to: "up", message: "" });
  expect(await waitFor(async () => (await record())?.backends["web/b1"] === "up", 5000)).toBe(true);
  for (let i = 0; i < 3; i++) await direct.put("/gorb/nodes/other", `{"i":${i}}`);
  expect(await store.waitApplied(direct.revision, 5000)).toBe(true);
  const applied = store.status().appliedRevision;

  await etcd.restoreBackup();
  const rolledBack = (await direct.range("/gorb/nodes/")).revision;
  expect(rolledBack).toBeLessThan(applied);
  expect(rolledBack).toBeGreaterThanOrEqual(kept);
  const warned = `etcd's revision ${rolledBack} is below the revision ${applied} this node has applied, but not below revision ${kept}`;
  expect(await waitFor(async () => log.lines.some((l) => l.startsWith("warn ") && l.includes(warned)), 5000)).toBe(true);
  expect(await waitFor(ok(store), 5000)).toBe(true);

  // Changes go on, and are followed: etcd numbers them from its revision again.
  await gorb.createService("api", { host: "10.0.0.2", port: 80 });
  await gorb.updateBackend("web", "b1", { weight: 7 });
  expect(store.committedRevision).toBeLessThanOrEqual(applied);
  expect(await store.waitApplied(store.committedRevision, 5000)).toBe(true);
  // Another client's change at a revision the node had applied before the loss: followed.
  await direct.deleteRange("/gorb/services/api");
  expect(await waitFor(async () => !gorb.listServices().includes("api"), 5000)).toBe(true);
  expect(gorb.listServices()).toEqual(["web"]);
  expect(store.status()).toMatchObject({ state: "ok", lastError: null });

  // The record the loss took back is written again.
  expect(await waitFor(async () => (await record())?.backends["web/b1"] === "up", 10_000)).toBe(true);
  expect(log.lines.filter((l) => l.includes("is registered by"))).toEqual([]);
}, 60_000);

test("etcd lost only membership writes, then another node's change and this node's own land before its relist: it follows, not diverged", async () => {
  // The relist waits 5 s after etcd went away: the two writes below come first. This node's own commit moves the
  // last desired change it has seen past the other node's, which it has not seen yet; the relist's check must not
  // take that change (in etcd, not in what this node saw) for a loss.
  const { etcd, log, store, gorb } = await node(5000);
  const direct = new EtcdClient({ endpoints: [etcd.endpoint] });
  await etcd.backup();
  expect(await waitFor(ok(store), 10_000)).toBe(true);
  for (let i = 0; i < 5; i++) await direct.put("/gorb/nodes/other", `{"i":${i}}`);
  expect(await store.waitApplied(direct.revision, 5000)).toBe(true);

  await etcd.restoreBackup();
  const other = { source: "api", fields: { host: "10.0.0.3", port: 80 }, key: { family: "inet", protocol: "tcp", address: "10.0.0.3", port: 80 }, vip: false };
  await direct.put("/gorb/services/other", JSON.stringify(other));
  await gorb.createService("api", { host: "10.0.0.2", port: 80 });
  expect(await waitFor(async () => gorb.listServices().includes("other"), 15_000)).toBe(true);
  expect(store.status()).toMatchObject({ state: "ok", lastError: null });
  expect(gorb.listServices().sort()).toEqual(["api", "other", "web"]);
  expect(log.lines.filter((l) => l.includes("no longer follows etcd"))).toEqual([]);
}, 60_000);

test("etcd lost a change of services: the node has diverged, refuses changes and keeps what it has", async () => {
  const { etcd, store, gorb } = await node();
  await etcd.backup();
  expect(await waitFor(ok(store), 5000)).toBe(true);
  await gorb.createService("api", { host: "10.0.0.2", port: 80 });
  const lost = store.committedRevision;
  expect(await store.waitApplied(lost, 5000)).toBe(true);

  await etcd.restoreBackup();
  expect(await waitFor(async () => (store.status().lastError ?? "").includes(`below revision ${lost} of the last change`), 5000)).toBe(true);
  expect(await gorb.createService("db", { host: "10.0.0.3", port: 80 }).catch((e: unknown) => e)).toBeInstanceOf(UnavailableError);
  expect(gorb.listServices().sort()).toEqual(["api", "web"]);
}, 60_000);

test("etcd lost a change of services and then numbered other writes past it: the node has diverged, it does not follow", async () => {
  const { etcd, store, gorb } = await node();
  const direct = new EtcdClient({ endpoints: [etcd.endpoint] });
  await etcd.backup();
  expect(await waitFor(ok(store), 5000)).toBe(true);
  for (let i = 0; i < 3; i++) await direct.put("/gorb/nodes/other", `{"i":${i}}`);
  await gorb.createService("api", { host: "10.0.0.2", port: 80 });
  const lost = store.committedRevision;
  for (let i = 0; i < 3; i++) await direct.put("/gorb/nodes/other", `{"j":${i}}`);
  expect(await store.waitApplied(direct.revision, 5000)).toBe(true);
  await store.close();

  // Restored, and written again up to the lost change's revision before the node asks: below the applied one, not
  // below the lost change.
  await etcd.restoreBackup();
  while ((await direct.range("/gorb/nodes/")).revision < lost) await direct.put("/gorb/nodes/other", "{}");
  store.sync(gorb);
  await store.probe();
  expect(await waitFor(async () => (store.status().lastError ?? "").includes(`at revision ${lost} are not the ones this node applied`), 5000)).toBe(true);
  expect(await gorb.createService("db", { host: "10.0.0.3", port: 80 }).catch((e: unknown) => e)).toBeInstanceOf(UnavailableError);
  expect(gorb.listServices().sort()).toEqual(["api", "web"]);
}, 60_000);

test("a membership record rolled back to this process's older record on another lease is taken over, not waited out", async () => {
  const etcd = await startEtcd();
  cleanups.push(() => etcd.stop());
  const log = new RecordingLogger();
  const client = new EtcdClient({ endpoints: [etcd.endpoint] });
  const events = new EventBus();
  const member = new Membership({ client, prefix: "/m", node: "a", address: "10.0.0.1:4672", version: "test", status: () => ({ appliedRevision: 1, changeRevision: 1, state: "ok" }), events, ttlSeconds: 6, logger: log });
  await member.start();
  cleanups.push(() => member.stop());
  const held = async () => (await client.range("/m/nodes/a")).kvs[0];
  const first = await held();
  expect(first).toBeDefined();

  await etcd.backup();
  // The lease goes (and the record with it): the node registers again on a new lease.
  await client.leaseRevoke(first?.lease ?? "");
  expect(await waitFor(async () => (await held()) !== undefined, 20_000)).toBe(true);

  // Back to the record on the first lease, which the restored etcd keeps alive for its 6 s.
  await etcd.restoreBackup();
  events.publish("backend.health", { service: "web", backend: "b1", from: "unknown", to: "up", message: "" });
  expect(await waitFor(async () => (await listMembers(client, "/m")).find((m) => m.node === "a")?.backends["web/b1"] === "up", 15_000)).toBe(true);
  expect(log.lines.filter((l) => l.includes("is registered by"))).toEqual([]);
}, 60_000);
