/**
 * A drain in a fleet: two nodes (real Gorbs over the in-memory driver with test-set connection counts, each with
 * its own etcd store) on one real etcd. The drain is desired state: both nodes hold the backend at weight 0 at
 * once; only the node that started it ends it, and its removal reaches the other. With membership (as the daemon
 * runs), it ends it only once the other nodes' published counts say their connections have ended too.
 */
import { describe, expect, test } from "bun:test";
import type { EventPayloads, GorbEvent } from "../../../src/core/events.ts";
import type { Gorb } from "../../../src/core/gorb.ts";
import type { ConnCounts } from "../../../src/core/drain.ts";
import { EtcdStateStore } from "../../../src/store/etcd-store.ts";
import { Membership, drainPeerReader, listMembers } from "../../../src/store/membership.ts";
import { ConnsDriver, makeGorb } from "../core/fakes.ts";
import { etcdForFile, cleanupsAfterEach, waitFor } from "./etcd-process.ts";

const etcd = etcdForFile();

const cleanups = cleanupsAfterEach();

async function node(name: string, prefix: string, options: { readonly now?: () => number } = {}) {
  const driver = new ConnsDriver();
  const store = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix, timeoutMs: 1000, retryMs: 100 });
  const stack = makeGorb({ driver, store, nodeId: name, drainPollMs: 5, ...options });
  await stack.gorb.restore((await store.load()).state);
  store.sync(stack.gorb);
  cleanups.push(() => store.close(), () => stack.gorb.close());
  return { ...stack, driver, store };
}

/** The first event on `gorb`'s bus that `match` accepts, from now on. */
function next<T>(gorb: Gorb, match: (e: GorbEvent) => T | undefined): Promise<T> {
  return new Promise((resolve) => {
    const sub = gorb.events.subscribe((e) => {
      const found = match(e);
      if (found === undefined) return;
      sub.unsubscribe();
      resolve(found);
    });
  });
}

const drainPhase = (phase: EventPayloads["backend.drain"]["phase"]) => (e: GorbEvent) =>
  e.type === "backend.drain" && e.data.phase === phase ? e.data : undefined;

function weights(driver: ConnsDriver): Record<string, number> {
  return Object.fromEntries(driver.peek().flatMap((s) => s.destinations.map((d) => [d.address, d.weight])));
}

/** Service web with backend b1 (pulse none) created through `a`, once `b` has it. */
async function webWithB1(a: { readonly gorb: Gorb }, b: { readonly gorb: Gorb }): Promise<void> {
  const created = next(b.gorb, (e) => (e.type === "backend.created" && e.data.backend === "b1" ? true : undefined));
  await a.gorb.createService("web", { host: "10.0.0.1", port: 80 });
  await a.gorb.createBackend("web", "b1", { host: "10.1.0.1", pulse: { type: "none" } });
  await created;
}

/** Nodes a and b on `prefix`, service web with backend b1 (pulse none) created through a, once b has it. */
async function twoNodesWithB1(prefix: string) {
  const a = await node("a", prefix);
  const b = await node("b", prefix);
  await webWithB1(a, b);
  return { a, b };
}

type FleetNode = Awaited<ReturnType<typeof node>>;

/**
 * A node as the daemon runs one: registered in the fleet (membership, publishing its drain counts), its drains
 * ending only once the other nodes' counts say so (drainPeers, read from their records). Each answer the other
 * nodes' counts gave is passed to `asked`.
 */
async function memberNode(name: string, prefix: string, asked: (peers: ConnCounts | null) => void = () => {}, options: { readonly joinLater?: boolean } = {}) {
  const driver = new ConnsDriver();
  const store = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix, timeoutMs: 1000, retryMs: 100 });
  const read = drainPeerReader(store.client, prefix, name);
  const stack = makeGorb({
    driver,
    store,
    nodeId: name,
    drainPollMs: 5,
    drainPeers: async (service, backend, drain) => {
      const peers = await read(service, backend, new Date(drain.deadline).toISOString());
      asked(peers);
      return peers;
    },
  });
  await stack.gorb.restore((await store.load()).state);
  store.sync(stack.gorb);
  const membership = new Membership({
    client: store.client,
    prefix,
    node: name,
    address: `${name}:4672`,
    version: "test",
    events: stack.gorb.events,
    status: () => store.status(),
    draining: () => stack.gorb.drainingBackends(),
  });
  cleanups.push(() => store.close(), () => stack.gorb.close(), () => membership.stop());
  // As the daemon joins: once registered, the drains it watches publish their counts again for the record.
  const join = async (announce = true) => {
    await membership.start();
    if (announce) stack.gorb.announceDrainCounts();
  };
  if (options.joinLater !== true) await join();
  return { ...stack, driver, store, join };
}

/** Resolves once `count` answers accepted by `match` were given (wrap `asked` with `.note`). */
function answers(match: (peers: ConnCounts | null) => boolean, count: number) {
  let seen = 0;
  let resolve: () => void = () => {};
  const done = new Promise<void>((r) => (resolve = r));
  return {
    done,
    note: (peers: ConnCounts | null) => {
      if (match(peers) && ++seen === count) resolve();
    },
  };
}

/** a cancels b1's drain (then keep, deadline `deadline`): b announces it cancelled and gives b1 its weight back. */
async function cancelOnA(a: FleetNode, b: FleetNode, deadline: string): Promise<void> {
  const cancelled = next(b.gorb, drainPhase("cancelled"));
  const restored = next(b.gorb, (e) => (e.type === "backend.weight" && e.data.backend === "b1" && e.data.to === 100 ? true : undefined));
  await a.gorb.undrainBackend("web", "b1");
  expect(await cancelled).toMatchObject({ service: "web", backend: "b1", phase: "cancelled", then: "keep", deadline });
  await restored;
  expect(weights(b.driver)).toEqual({ "10.1.0.1": 100 });
}

describe("a drain in a fleet", () => {
  test("every node holds weight 0; the starting node ends it from its own counts; the removal reaches every node", async () => {
    const prefix = `/fleetdrain${Date.now()}`;
    const a = await node("a", prefix);
    const b = await node("b", prefix);
    const created = next(b.gorb, (e) => (e.type === "backend.created" && e.data.backend === "b2" ? true : undefined));
    await a.gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await a.gorb.createBackend("web", "b1", { host: "10.1.0.1", pulse: { type: "none" } });
    await a.gorb.createBackend("web", "b2", { host: "10.1.0.2", pulse: { type: "none" } });
    await created;
    a.driver.conns.set("10.1.0.1:80", { active: 1, inactive: 0 });

    // B sees the drain, holds b1 at 0 and looks at its own kernel (no connection there), but it is A's drain.
    const bLooked = next(b.gorb, drainPhase("progress"));
    const view = await a.gorb.drainBackend("web", "b1", { timeout: "1h" });
    expect(view.node).toBe("a");
    expect(await bLooked).toMatchObject({ backend: "b1", active: 0, inactive: 0 });
    await b.gorb.idle();
    expect(weights(b.driver)).toEqual({ "10.1.0.1": 0, "10.1.0.2": 100 });
    expect(weights(a.driver)).toEqual({ "10.1.0.1": 0, "10.1.0.2": 100 });
    expect((await b.gorb.getBackend("web", "b1")).drain).toMatchObject({ state: "draining", node: "a" });

    // A's last connection ends: A removes b1, and the removal reaches B.
    const gone = next(b.gorb, (e) => (e.type === "backend.deleted" && e.data.backend === "b1" ? true : undefined));
    a.driver.conns.set("10.1.0.1:80", { active: 0, inactive: 0 });
    await gone;
    await b.gorb.idle();
    expect(weights(b.driver)).toEqual({ "10.1.0.2": 100 });
    expect(weights(a.driver)).toEqual({ "10.1.0.2": 100 });
  }, 30_000);

  test("a drain another node starts or cancels is announced on this node's event stream too", async () => {
    const prefix = `/fleetdrainev${Date.now()}`;
    const { a, b } = await twoNodesWithB1(prefix);
    a.driver.conns.set("10.1.0.1:80", { active: 1, inactive: 0 });

    const started = next(b.gorb, drainPhase("started"));
    const view = await a.gorb.drainBackend("web", "b1", { timeout: "1h", then: "keep" });
    expect(await started).toEqual({ service: "web", backend: "b1", phase: "started", then: "keep", deadline: view.deadline, active: null, inactive: null });

    await cancelOnA(a, b, view.deadline);
  }, 30_000);

  test("a held drain (then keep, drained) that its node ends is announced as cancelled on the other node too", async () => {
    const prefix = `/fleetdrainkept${Date.now()}`;
    const { a, b } = await twoNodesWithB1(prefix);

    // No connection on A: its drain ends at once, held at weight 0 on both nodes.
    const drained = next(a.gorb, drainPhase("drained"));
    const view = await a.gorb.drainBackend("web", "b1", { timeout: "1h", then: "keep" });
    await drained;
    expect(await b.store.waitApplied(a.store.committedRevision, 5000)).toBe(true);
    await b.gorb.idle();
    expect((await b.gorb.getBackend("web", "b1")).drain).toMatchObject({ state: "drained", node: "a" });

    await cancelOnA(a, b, view.deadline);
  }, 30_000);

  test("a node whose wall clock is far ahead does not end another node's drain (it would remove the backend at once)", async () => {
    const prefix = `/fleetdrainclock${Date.now()}`;
    const a = await node("a", prefix);
    const b = await node("b", prefix, { now: () => Date.now() + 86_400_000 });
    await webWithB1(a, b);
    a.driver.conns.set("10.1.0.1:80", { active: 1, inactive: 0 });

    // B sees A's drain and looks at it (its first look publishes progress, then decides in the same look).
    const bLooked = next(b.gorb, drainPhase("progress"));
    await a.gorb.drainBackend("web", "b1", { timeout: "1m" });
    await bLooked;
    await b.gorb.idle();
    expect((await b.gorb.getBackend("web", "b1")).drain).toMatchObject({ state: "draining", node: "a" });
    expect((await a.gorb.getBackend("web", "b1")).drain).toMatchObject({ state: "draining", node: "a" });
    expect(weights(b.driver)).toEqual({ "10.1.0.1": 0 });
  }, 30_000);

  test("the starting node waits for the other nodes' connections: anycast spreads them, and removing the backend would cut them", async () => {
    const prefix = `/fleetdrainpeers${Date.now()}`;
    let watch = answers((peers) => peers !== null && peers.active === 2, 3);
    const a = await memberNode("a", prefix, (peers) => watch.note(peers));
    const b = await memberNode("b", prefix);
    await webWithB1(a, b);
    // The clients that reach b1 through B: none through A.
    b.driver.conns.set("10.1.0.1:80", { active: 2, inactive: 0 });

    await a.gorb.drainBackend("web", "b1", { timeout: "1h" });
    // A's own count is 0 at its first look; three times it asked the others and was told B has 2 left.
    await watch.done;
    // A's view says what it waits for; B, which did not start it, asks nobody.
    expect((await a.gorb.getBackend("web", "b1")).drain).toMatchObject({ state: "draining", node: "a", others: { active: 2, inactive: 0 } });
    expect((await b.gorb.getBackend("web", "b1")).drain).toMatchObject({ state: "draining", node: "a" });
    expect((await b.gorb.getBackend("web", "b1")).drain).not.toHaveProperty("others");
    expect(weights(b.driver)).toEqual({ "10.1.0.1": 0 });

    // B's connections end: B publishes it, and A ends the drain; the removal reaches B.
    watch = answers((peers) => peers !== null && peers.active + peers.inactive === 0, 1);
    const drained = next(a.gorb, drainPhase("drained"));
    const gone = next(b.gorb, (e) => (e.type === "backend.deleted" && e.data.backend === "b1" ? true : undefined));
    b.driver.conns.set("10.1.0.1:80", { active: 0, inactive: 0 });
    expect(await drained).toMatchObject({ backend: "b1", phase: "drained", active: 0, inactive: 0 });
    await watch.done;
    await gone;
    expect(weights(a.driver)).toEqual({});
    expect(weights(b.driver)).toEqual({});
  }, 30_000);

  test("a held drain (then keep) that its node ended leaves the other node's record: it is no longer a drain being waited for", async () => {
    const prefix = `/fleetdrainheld${Date.now()}`;
    const a = await memberNode("a", prefix);
    const b = await memberNode("b", prefix);
    await webWithB1(a, b);
    const drainsOf = async (node: string) => (await listMembers(a.store.client, prefix)).find((m) => m.node === node)?.drains;

    // No connection anywhere: A ends its drain once B's record says none there either (so B published its counts).
    const drained = next(a.gorb, drainPhase("drained"));
    const view = await a.gorb.drainBackend("web", "b1", { timeout: "1h", then: "keep" });
    await drained;
    expect(await b.store.waitApplied(a.store.committedRevision, 5000)).toBe(true);
    expect((await b.gorb.getBackend("web", "b1")).drain).toMatchObject({ state: "drained", node: "a" });
    // B's record drops the counts (at its next renewal): `gorb status --cluster` would list b1 as being drained.
    expect(await waitFor(async () => (await drainsOf("b")) === undefined, 10_000)).toBe(true);
    expect(await drainsOf("a")).toBeUndefined();
    expect((await a.gorb.getBackend("web", "b1")).drain).toMatchObject({ state: "drained", deadline: view.deadline });
  }, 30_000);

  test("a live node that has not said (an older gorb: no drain counts in its record) keeps the drain waiting up to its deadline", async () => {
    const prefix = `/fleetdrainold${Date.now()}`;
    const watch = answers((peers) => peers === null, 3);
    const a = await memberNode("a", prefix, (peers) => watch.note(peers));
    // A node of an earlier gorb: its record has health, no drain counts.
    const old = { node: "old", address: "old:4672", version: "0.0.9", startedAt: new Date().toISOString(), appliedRevision: 1, store: "ok", backends: {} };
    await a.store.client.txn([], [{ put: { key: `${prefix}/nodes/old`, value: JSON.stringify(old) } }]);
    await a.gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await a.gorb.createBackend("web", "b1", { host: "10.1.0.1", pulse: { type: "none" } });

    const timedOut = next(a.gorb, drainPhase("timeout"));
    await a.gorb.drainBackend("web", "b1", { timeout: "2s" });
    await watch.done;
    expect((await a.gorb.getBackend("web", "b1")).drain).toMatchObject({ state: "draining", others: null });
    // Its own kernel had no connection left all along: the deadline ends it, not a count.
    expect(await timedOut).toMatchObject({ backend: "b1", phase: "timeout", active: 0, inactive: 0 });
  }, 30_000);

  test("a node that joins the fleet while a drain runs (a restart) publishes its counts again: the drain need not wait for them to change", async () => {
    const prefix = `/fleetdrainjoin${Date.now()}`;
    const watch = answers((peers) => peers === null, 2);
    const a = await memberNode("a", prefix, (peers) => watch.note(peers));
    // B follows the state, and registers only later.
    const b = await memberNode("b", prefix, () => {}, { joinLater: true });
    await webWithB1(a, b);

    // A still has a connection; B looks at the drain (none there) before its membership follows the events, as a
    // restarted node's drain watch does at restore.
    a.driver.conns.set("10.1.0.1:80", { active: 1, inactive: 0 });
    const bLooked = next(b.gorb, drainPhase("progress"));
    await a.gorb.drainBackend("web", "b1", { timeout: "1h" });
    expect(await bLooked).toMatchObject({ active: 0, inactive: 0 });
    await b.join(false);

    // A's connection ends; B's record says nothing of the drain, so A waits (twice asked)...
    const drained = next(a.gorb, drainPhase("drained"));
    a.driver.conns.set("10.1.0.1:80", { active: 0, inactive: 0 });
    await watch.done;
    expect((await a.gorb.getBackend("web", "b1")).drain).toMatchObject({ state: "draining" });
    // ...until B announces its counts again (the daemon does once it has joined): unchanged, they still count.
    b.gorb.announceDrainCounts();
    expect(await drained).toMatchObject({ backend: "b1", phase: "drained" });
  }, 30_000);
});
