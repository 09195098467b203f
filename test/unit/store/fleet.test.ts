/**
 * The fleet over the REST API, two nodes (real Gorbs over the in-memory IPVS driver, each with its own etcd
 * store) on one real etcd: a write through node A answers X-Gorb-Revision, node B answers
 * GET /cluster/revision?wait=N once it has applied it and then serves what A wrote; a duplicate create through
 * B is a 409; GET /cluster lists both registered nodes and a backend up on one node and down on the other;
 * a node whose lease is revoked leaves the list, and one that stops renewing leaves it after its TTL; with
 * etcd gone, writes answer 503, the kernel keeps its table and GET /cluster says the store is degraded and why
 * the nodes are not known; `gorb state export` prints what apply reads.
 */
import { describe, expect, test } from "bun:test";
import { createApp } from "../../../src/api/app.ts";
import type { ClusterApi } from "../../../src/api/cluster.ts";
import { EventBus } from "../../../src/core/events.ts";
import { readServices } from "../../../src/config/services.ts";
import { EtcdClient, prefixEnd } from "../../../src/store/etcd-client.ts";
import { EtcdStateStore } from "../../../src/store/etcd-store.ts";
import { declarativeDocument } from "../../../src/store/export.ts";
import { Membership, listMembers } from "../../../src/store/membership.ts";
import { RecordingLogger, makeGorb } from "../core/fakes.ts";
import { etcdForFile, cleanupsAfterEach, startEtcd, waitFor } from "./etcd-process.ts";

const etcd = etcdForFile();

const cleanups = cleanupsAfterEach();

let prefixes = 0;

async function node(name: string, prefix: string, endpoints = [etcd.endpoint]) {
  const events = new EventBus();
  const store = new EtcdStateStore({ endpoints, prefix, timeoutMs: 1000, retryMs: 100 });
  const stack = makeGorb({ store, events });
  await stack.gorb.restore((await store.load()).state);
  store.sync(stack.gorb);
  const membership = new Membership({
    client: store.client,
    prefix,
    node: name,
    address: `${name}:4672`,
    version: "test",
    events,
    status: () => store.status(),
    ttlSeconds: 2,
  });
  await membership.start();
  cleanups.push(() => store.close(), () => membership.stop());
  const cluster: ClusterApi = {
    node: name,
    committedRevision: () => store.committedRevision,
    status: () => store.status(),
    waitApplied: (revision, ms) => store.waitServed(revision, ms),
    members: () => listMembers(store.client, prefix),
  };
  const app = createApp({ gorb: stack.gorb, logger: stack.logger, cluster });
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await app.handle(
      new Request(`http://gorb.test${path}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) }),
    );
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text === "" ? null : (JSON.parse(text) as unknown) };
  };
  return { ...stack, store, membership, call, app };
}

describe("fleet over the API", () => {
  test("a write through A is served by B once B has applied A's revision; a duplicate create through B is 409", async () => {
    const prefix = `/fleet${++prefixes}`;
    const a = await node("a", prefix);
    const b = await node("b", prefix);
    const put = await a.call("PUT", "/service/web", { host: "10.0.0.1", port: 80, method: "wrr" });
    expect(put.status).toBe(200);
    const revision = Number(put.headers.get("X-Gorb-Revision"));
    expect(revision).toBeGreaterThan(0);
    const waited = await b.call("GET", `/cluster/revision?wait=${revision}&timeout_ms=5000`);
    expect(waited).toMatchObject({ status: 200, body: { reached: true } });
    expect((waited.body as { applied: number }).applied).toBeGreaterThanOrEqual(revision);
    expect((await b.call("GET", "/service/web")).status).toBe(200);
    expect(await b.driver.snapshot()).toEqual(await a.driver.snapshot());

    const again = await b.call("PUT", "/service/web", { host: "10.0.0.2", port: 80 });
    expect(again.status).toBe(409);
    expect(again.headers.get("X-Gorb-Revision")).toBeNull();
  });

  test("two services on one address created through two nodes at once: one is refused, and both nodes serve the other", async () => {
    const prefix = `/fleet${++prefixes}`;
    const a = await node("a", prefix);
    const b = await node("b", prefix);
    const [web, web2] = await Promise.all([
      a.call("PUT", "/service/web", { host: "10.0.0.50", port: 80 }),
      b.call("PUT", "/service/web2", { host: "10.0.0.50", port: 80 }),
    ]);
    expect([web.status, web2.status].sort()).toEqual([200, 409]);
    const winner = web.status === 200 ? web : web2;
    const revision = Number(winner.headers.get("X-Gorb-Revision"));
    expect(await a.store.waitApplied(revision, 5000)).toBe(true);
    expect(await b.store.waitApplied(revision, 5000)).toBe(true);
    await a.gorb.idle();
    await b.gorb.idle();
    const id = web.status === 200 ? "web" : "web2";
    expect(a.gorb.listServices()).toEqual([id]);
    expect(b.gorb.listServices()).toEqual([id]);
  });

  // Found by test/unit/store/fleet-random.test.ts (seed 53): both answered 200, and every node then failed to apply
  // the service (two backends on one destination), so that each refused every later write to it.
  test("two backends of one service on one destination created through two nodes at once: one is refused, and both nodes serve the other", async () => {
    const prefix = `/fleet${++prefixes}`;
    const a = await node("a", prefix);
    const b = await node("b", prefix);
    const web = await a.call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    expect(await b.store.waitApplied(Number(web.headers.get("X-Gorb-Revision")), 5000)).toBe(true);
    const [b1, b2] = await Promise.all([
      a.call("PUT", "/service/web/b1", { host: "10.1.0.1", port: 80 }),
      b.call("PUT", "/service/web/b2", { host: "10.1.0.1", port: 80 }),
    ]);
    expect([b1.status, b2.status].sort()).toEqual([200, 409]);
    const winner = b1.status === 200 ? b1 : b2;
    const revision = Number(winner.headers.get("X-Gorb-Revision"));
    for (const n of [a, b]) {
      expect(await n.store.waitApplied(revision, 5000)).toBe(true);
      await n.gorb.idle();
      expect(n.store.status().failed).toEqual([]);
      expect((await n.gorb.getService("web")).backends).toEqual([b1.status === 200 ? "b1" : "b2"]);
    }
    // The service takes writes again: its other backend, through either node.
    expect((await b.call("PUT", "/service/web/b3", { host: "10.1.0.3", port: 80 })).status).toBe(200);
  });

  test("GET /cluster lists every node, converged, and a backend up on one node and down on the other", async () => {
    const prefix = `/fleet${++prefixes}`;
    const a = await node("a", prefix);
    const b = await node("b", prefix);
    await a.call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    const put = await a.call("PUT", "/service/web/b1", { host: "10.1.0.1", port: 80, pulse: { type: "tcp" } });
    await b.call("GET", `/cluster/revision?wait=${put.headers.get("X-Gorb-Revision")}`);
    a.health.report("web", "b1", "up");
    b.health.report("web", "b1", "down");
    await a.gorb.idle();
    await b.gorb.idle();
    // Each node publishes on its next renewal; ask until both did (each answer is a real etcd read).
    type View = { nodes: { node: string; converged: boolean }[]; health_splits: unknown[] };
    let view: View | null = null;
    for (let i = 0; i < 100; i++) {
      view = (await a.call("GET", "/cluster")).body as View;
      if (view !== null && view.health_splits.length > 0) break;
      await Bun.sleep(50);
    }
    expect(view?.nodes.map((n) => n.node)).toEqual(["a", "b"]);
    expect(view?.health_splits).toEqual([{ service: "web", backend: "b1", up: ["a"], down: ["b"], unknown: [] }]);
  });

  test("every node converges once it has applied the latest change; idle nodes do not rewrite their records", async () => {
    const prefix = `/fleet${++prefixes}`;
    const a = await node("a", prefix);
    const b = await node("b", prefix);
    const put = await a.call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    const revision = Number(put.headers.get("X-Gorb-Revision"));
    expect((await b.call("GET", `/cluster/revision?wait=${revision}`)).body).toMatchObject({ reached: true });
    // Each node publishes on its next renewal (1 s here); ask until both did (each answer is a real etcd read).
    type View = { revision: number; nodes: { node: string; converged: boolean; changeRevision: number }[] };
    const settled = async () => {
      const view = (await b.call("GET", "/cluster")).body as View;
      return view.revision === revision && view.nodes.length === 2 && view.nodes.every((n) => n.converged && n.changeRevision === revision);
    };
    expect(await waitFor(settled, 5000)).toBe(true);
    // Nothing changes now: no record is written again over two renewals (each one used to move etcd's revision,
    // so every other node's applied revision, which it then published in turn).
    const nodes = `${prefix}/nodes/`;
    const from = (await a.store.client.range(nodes, prefixEnd(nodes))).revision + 1;
    const writes: string[] = [];
    await a.store.client.watch(nodes, prefixEnd(nodes), from, (events) => void writes.push(...events.map((e) => e.kv.key)), AbortSignal.timeout(2500));
    expect(writes).toEqual([]);
    expect(await settled()).toBe(true);
  }, 15000);

  test("the asked node's own row is what it serves now: converged right after a write through it, before its record's renewal", async () => {
    const prefix = `/fleet${++prefixes}`;
    const a = await node("a", prefix);
    const put = await a.call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    const revision = Number(put.headers.get("X-Gorb-Revision"));
    expect((await a.call("GET", `/cluster/revision?wait=${revision}`)).body).toMatchObject({ reached: true });
    // A's record in etcd still says what A had applied at its last renewal; its row in A's answer does not.
    type View = { revision: number; nodes: { node: string; converged: boolean; changeRevision: number; appliedRevision: number }[] };
    const view = (await a.call("GET", "/cluster")).body as View;
    expect(view.revision).toBe(revision);
    expect(view.nodes).toMatchObject([{ node: "a", converged: true, changeRevision: revision }]);
    expect(view.nodes[0]?.appliedRevision).toBeGreaterThanOrEqual(revision);
  });

  test("a node whose kernel refused a change has not reached its revision: ?wait and GET /cluster name it and the service until a retry applies it", async () => {
    const prefix = `/fleet${++prefixes}`;
    const a = await node("a", prefix);
    const b = await node("b", prefix);
    b.driver.failNext("add-service", "ENOMEM");
    const put = await a.call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    const revision = Number(put.headers.get("X-Gorb-Revision"));
    // Asked at once, so most likely waiting when B reads A's change: its kernel refuses it, so B does not serve web.
    const waited = await b.call("GET", `/cluster/revision?wait=${revision}&timeout_ms=1000`);
    expect(waited).toMatchObject({ status: 200, body: { node: "b", reached: false, failed: [{ service: "web", revision }] } });
    expect(await b.store.waitApplied(revision, 5000)).toBe(true);
    expect(b.gorb.listServices()).toEqual([]);
    // Its record says so: GET /cluster through A shows B not converged, and which service it failed to apply.
    type View = { nodes: { node: string; converged: boolean; failed?: { service: string; revision: number }[] }[] };
    const nodeB = async () => ((await a.call("GET", "/cluster")).body as View).nodes.find((n) => n.node === "b");
    expect(await waitFor(async () => (await nodeB())?.failed !== undefined, 5000)).toBe(true);
    expect(await nodeB()).toMatchObject({ converged: false, failed: [{ service: "web", revision }] });

    // Another change has B try web again; its kernel takes it now, and both waits are reached.
    const next = await a.call("PUT", "/service/web2", { host: "10.0.0.2", port: 80 });
    const later = Number(next.headers.get("X-Gorb-Revision"));
    expect((await b.call("GET", `/cluster/revision?wait=${revision}&timeout_ms=5000`)).body).toMatchObject({ reached: true, failed: [] });
    expect((await b.call("GET", `/cluster/revision?wait=${later}&timeout_ms=5000`)).body).toMatchObject({ reached: true, failed: [] });
    expect(b.gorb.listServices()).toEqual(["web", "web2"]);
    expect(await waitFor(async () => (await nodeB())?.converged === true, 5000)).toBe(true);
    expect((await nodeB())?.failed).toBeUndefined();
  }, 15000);

  test("GET /cluster leaves out values under nodes/ that are not node records (another program wrote them)", async () => {
    const prefix = `/fleet${++prefixes}`;
    const a = await node("a", prefix);
    const record = { node: "evil", address: "x:1", version: "1", startedAt: "now", appliedRevision: 1, store: "ok", backends: {} };
    const values = ["null", "not json", "[]", JSON.stringify({ ...record, backends: null }), JSON.stringify({ ...record, backends: "up" }), JSON.stringify({ ...record, node: 7 }), JSON.stringify({ ...record, failed: [{ service: "web" }] })];
    for (const [i, value] of values.entries()) await a.store.client.put(`${prefix}/nodes/evil${i}`, value);
    const view = await a.call("GET", "/cluster");
    expect(view.status).toBe(200);
    expect((view.body as { nodes: { node: string }[] }).nodes.map((n) => n.node)).toEqual(["a"]);
  });

  test("a node that stops renewing leaves the list after its lease's TTL; one that stops revokes at once", async () => {
    const prefix = `/fleet${++prefixes}`;
    const a = await node("a", prefix);
    const b = await node("b", prefix);
    const c = await node("c", prefix);
    expect((await listMembers(a.store.client, prefix)).map((m) => m.node)).toEqual(["a", "b", "c"]);
    await c.membership.stop();
    expect((await listMembers(a.store.client, prefix)).map((m) => m.node)).toEqual(["a", "b"]);
    // b "dies": its renewals stop, its lease is not revoked; etcd drops it when the 2 s TTL runs out.
    await b.membership.stop({ revoke: false });
    expect((await listMembers(a.store.client, prefix)).map((m) => m.node)).toEqual(["a", "b"]);
    const gone = await waitFor(async () => !(await listMembers(a.store.client, prefix)).some((m) => m.node === "b"), 10000);
    expect(gone).toBe(true);
  }, 15000); // the TTL runs out in real time (2 s, etcd checking expiries every 500 ms): room for the 10 s wait

  test("a node that cannot register says so once, not at every tick, and says when it is registered again", async () => {
    const own = await startEtcd();
    cleanups.push(() => own.stop());
    const prefix = `/fleet${++prefixes}`;
    let grants = 0;
    class CountingClient extends EtcdClient {
      override leaseGrant(ttlSeconds: number): Promise<string> {
        grants++;
        return super.leaseGrant(ttlSeconds);
      }
    }
    const client = new CountingClient({ endpoints: [own.endpoint], timeoutMs: 500 });
    await own.kill();
    const log = new RecordingLogger();
    const member = new Membership({ client, prefix, node: "a", address: "10.0.0.1:4672", version: "test", events: new EventBus(), status: () => ({ appliedRevision: 1, changeRevision: 1, state: "ok" }), ttlSeconds: 2, logger: log });
    await member.start();
    cleanups.push(() => member.stop());
    expect(await waitFor(async () => grants >= 3, 15000)).toBe(true);
    const warned = log.lines.filter((l) => l.startsWith("warn membership: node a cannot register in etcd, so GET /cluster leaves it out: "));
    expect(warned).toHaveLength(1);
    await own.restart();
    expect(await waitFor(async () => (await listMembers(client, prefix)).some((m) => m.node === "a"), 15000)).toBe(true);
    expect(log.lines).toContain("info membership: node a is registered again");
  }, 40000);

  test("a second process with a running node's id neither takes its record over nor deletes it when it stops", async () => {
    const prefix = `/fleet${++prefixes}`;
    const client = new EtcdClient({ endpoints: [etcd.endpoint] });
    const member = (address: string, logger = new RecordingLogger()) =>
      new Membership({ client, prefix, node: "a", address, version: "test", events: new EventBus(), status: () => ({ appliedRevision: 1, changeRevision: 1, state: "ok" }), ttlSeconds: 2, logger });
    const addresses = async () => (await listMembers(client, prefix)).map((m) => m.address);
    const first = member("10.0.0.1:4672");
    await first.start();
    cleanups.push(() => first.stop());
    const log = new RecordingLogger();
    const second = member("10.0.0.2:4672", log);
    await second.start();
    expect(await addresses()).toEqual(["10.0.0.1:4672"]);
    expect(log.lines.filter((l) => l.includes("node id a is registered by the gorb at 10.0.0.1:4672"))).toHaveLength(1);
    await second.stop();
    expect(await addresses()).toEqual(["10.0.0.1:4672"]);
    // Once the first is gone, the id is free again.
    await first.stop();
    const third = member("10.0.0.3:4672");
    await third.start();
    cleanups.push(() => third.stop());
    expect(await addresses()).toEqual(["10.0.0.3:4672"]);
  });

  test("etcd down: writes answer 503 and the kernel keeps its table; etcd back: writes work and the node catches up", async () => {
    const own = await startEtcd();
    cleanups.push(() => own.stop());
    const prefix = `/fleet${++prefixes}`;
    const a = await node("a", prefix, [own.endpoint]);
    const b = await node("b", prefix, [own.endpoint]);
    await a.call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    const created = await a.call("PUT", "/service/web/b1", { host: "10.1.0.1", port: 80 });
    await b.call("GET", `/cluster/revision?wait=${created.headers.get("X-Gorb-Revision")}`);
    const tableA = await a.driver.snapshot();
    const tableB = await b.driver.snapshot();

    await own.kill();
    const refused = await a.call("PUT", "/service/web2", { host: "10.0.0.2", port: 80 });
    expect(refused.status).toBe(503);
    expect((await a.call("DELETE", "/service/web")).status).toBe(503);
    expect(await a.driver.snapshot()).toEqual(tableA);
    expect(await b.driver.snapshot()).toEqual(tableB);
    expect((await a.call("GET", "/service/web")).status).toBe(200);
    const metrics = await a.app.handle(new Request("http://gorb.test/metrics"));
    expect(await metrics.text()).toContain('gorb_store_up{node="a"} 0\n');
    // `gorb status --cluster` still shows this node's store as degraded, and why the nodes are not known.
    const view = await a.call("GET", "/cluster");
    expect(view).toMatchObject({ status: 200, body: { node: "a", store: { state: "degraded" }, nodes: [] } });
    expect((view.body as { nodes_error: string }).nodes_error).toStartWith("cannot read the nodes' records from etcd: ");

    await own.restart();
    // On a loaded machine a write can outlast the store's 1 s timeout: a 503 that says etcd may still apply it, and
    // if etcd did, the next PUT is a 409 for a service A then has. Either way web2 ends up created; the answers
    // are kept to say what happened when it does not.
    const answers: string[] = [];
    const again = await waitFor(async () => {
      const put = await a.call("PUT", "/service/web2", { host: "10.0.0.2", port: 80 });
      answers.push(`${put.status} ${JSON.stringify(put.body)}`);
      return put.status === 200 || (put.status === 409 && (await a.call("GET", "/service/web2")).status === 200);
    }, 15000);
    expect({ again, answers: again ? [] : answers.slice(-5) }).toEqual({ again: true, answers: [] });
    const revision = a.store.committedRevision;
    expect((await b.call("GET", `/cluster/revision?wait=${revision}&timeout_ms=15000`)).body).toMatchObject({ reached: true });
    expect(b.gorb.listServices()).toEqual(["web", "web2"]);
    expect(b.store.status().state).toBe("ok");
  }, 30000); // etcd killed and restarted, with waits of up to 15 s: not bun's default 5 s

  test("a write etcd does not answer in time is a 503 that says etcd may still apply it; the node then follows etcd", async () => {
    const own = await startEtcd();
    cleanups.push(() => own.stop());
    const prefix = `/fleet${++prefixes}`;
    const a = await node("a", prefix, [own.endpoint]);
    own.pause();
    const put = await a.call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    own.resume();
    expect(put.status).toBe(503);
    expect((put.body as { error: string }).error).toContain("did not answer within 1000 ms) and was undone here, but the store may still apply it");
    // Whichever way etcd went (it may take the held request after it answers others), the node ends up with what
    // etcd has: each look reads etcd, waits for the node to apply that revision, and compares.
    const agree = async () => {
      const { revision, kvs } = await a.store.client.range(`${prefix}/services/`, prefixEnd(`${prefix}/services/`));
      if (!(await a.store.waitApplied(revision, 5000))) return false;
      await a.gorb.idle();
      return JSON.stringify(a.gorb.listServices()) === JSON.stringify(kvs.map((kv) => kv.key.slice(`${prefix}/services/`.length)));
    };
    expect(await waitFor(agree, 5000)).toBe(true);
  }, 15000);

  test("an apply with more keys than etcd takes in one transaction is 413 TOO_LARGE, alone: the next write works", async () => {
    const prefix = `/fleet${++prefixes}`;
    const a = await node("a", prefix);
    const backends = Object.fromEntries(Array.from({ length: 130 }, (_, i) => [`b${i}`, { host: `10.1.0.${i + 1}`, port: 80 }]));
    const refused = await a.call("POST", "/apply", { services: { web: { host: "10.0.0.1", port: 80, backends } } });
    expect(refused.status).toBe(413);
    expect(refused.body).toMatchObject({ code: "TOO_LARGE" });
    expect((refused.body as { error: string }).error).toContain("132 etcd operations; too many operations in txn request");
    expect(await a.driver.snapshot()).toEqual([]);
    const metrics = await a.app.handle(new Request("http://gorb.test/metrics"));
    expect(await metrics.text()).toContain('gorb_store_up{node="a"} 1\n');
    expect((await a.call("PUT", "/service/web", { host: "10.0.0.1", port: 80 })).status).toBe(200);
    expect(a.logger.lines.filter((l) => l.startsWith("error"))).toEqual([]);
  });

  test("gorb state export prints a document gorb apply reads back", async () => {
    const prefix = `/fleet${++prefixes}`;
    const a = await node("a", prefix);
    await a.call("PUT", "/service/web", { host: "10.0.0.1", port: 80, method: "wrr" });
    await a.call("PUT", "/service/web/b1", { host: "10.1.0.1", port: 8080, weight: 50 });
    const doc = declarativeDocument((await a.store.load()).state).document;
    expect(doc).toEqual({
      services: { web: { host: "10.0.0.1", port: 80, method: "wrr", backends: { b1: { host: "10.1.0.1", port: 8080, weight: 50 } } } },
    });
    const declared = readServices(doc.services);
    expect(declared.map((s) => [s.id, s.backends.map((b) => b.id)])).toEqual([["web", ["b1"]]]);
  });
});

