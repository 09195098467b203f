/**
 * Keys another etcd client wrote under gorb's prefix (etcdctl put, a bug in another tool): a value that is not
 * JSON or not a row never reads as "the service or backend is gone". The node leaves that service as it is in its
 * desired state and its kernel, names the key in its log, refuses its own writes to it (they would overwrite a
 * change it could not read) and follows the service again once its keys read. A key whose id the API could not
 * make is ignored. Against a real etcd.
 */
import { describe, expect, test } from "bun:test";
import { ConflictError } from "../../../src/core/errors.ts";
import { EtcdStateStore } from "../../../src/store/etcd-store.ts";
import { RecordingLogger, makeGorb } from "../core/fakes.ts";
import { etcdForFile, cleanupsAfterEach } from "./etcd-process.ts";

const etcd = etcdForFile();

const cleanups = cleanupsAfterEach();

let prefixes = 0;

/** A node (a Gorb over the memory driver on its own store) following `prefix`. */
async function node(prefix: string) {
  const log = new RecordingLogger();
  const store = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix, retryMs: 100, logger: log });
  const stack = makeGorb({ store });
  await stack.gorb.restore((await store.load()).state);
  store.sync(stack.gorb);
  cleanups.push(() => store.close());
  const kernel = async () =>
    (await stack.driver.snapshot()).map((e) => `${e.service.key.family} ${"address" in e.service.key ? e.service.key.address : ""} ${e.destinations.map((d) => `${d.address}:${d.weight}`).join(",")}`);
  return { ...stack, store, log, kernel };
}

/** A web service with two backends written through node `a`; the revision of the last write. */
async function web(a: Awaited<ReturnType<typeof node>>): Promise<number> {
  await a.gorb.createService("web", { host: "10.0.0.1", port: 80, method: "wrr" });
  await a.gorb.createBackend("web", "b1", { host: "10.1.0.1", port: 80, weight: 10 });
  await a.gorb.createBackend("web", "b2", { host: "10.1.0.2", port: 80, weight: 20 });
  return a.store.committedRevision;
}

describe("keys another etcd client wrote", () => {
  test("a service row that is not JSON leaves the service and its backends serving; a good row is followed again", async () => {
    const prefix = `/foreign${++prefixes}`;
    const a = await node(prefix);
    const b = await node(prefix);
    expect(await b.store.waitApplied(await web(a), 5000)).toBe(true);
    const before = await b.kernel();
    expect(before).toEqual(["inet 10.0.0.1 10.1.0.1:10,10.1.0.2:20"]);

    const bad = await a.store.client.put(`${prefix}/services/web`, "{not json");
    expect(await b.store.waitApplied(bad, 5000)).toBe(true);
    await b.gorb.idle();
    expect(await b.kernel()).toEqual(before);
    expect(b.gorb.listServices()).toEqual(["web"]);
    expect(b.log.lines.some((l) => l.startsWith(`error etcd key ${prefix}/services/web (revision ${bad}) cannot be read`))).toBe(true);

    // This node's own change to it would overwrite what it could not read: a conflict, nothing written.
    expect(await b.gorb.updateService("web", { method: "rr" }).catch((e: unknown) => e)).toBeInstanceOf(ConflictError);
    expect((await b.store.client.range(`${prefix}/services/web`)).kvs[0]?.value).toBe("{not json");

    // A good row again (here: another scheduler) is applied.
    const row = { source: "api", fields: { host: "10.0.0.1", method: "rr", port: 80 }, key: { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 }, vip: false };
    const good = await a.store.client.put(`${prefix}/services/web`, JSON.stringify(row));
    expect(await b.store.waitApplied(good, 5000)).toBe(true);
    await b.gorb.idle();
    expect((await b.driver.snapshot())[0]?.service.scheduler).toBe("rr");
    expect(await b.kernel()).toEqual(before);
    // Followed again: its own writes go through.
    await b.gorb.updateService("web", { method: "wlc" });
    expect(JSON.parse((await a.store.client.range(`${prefix}/services/web`)).kvs[0]?.value ?? "{}")).toMatchObject({ fields: { method: "wlc" } });
  });

  test("a backend row of the wrong shape leaves that backend serving; deleting the key removes it", async () => {
    const prefix = `/foreign${++prefixes}`;
    const a = await node(prefix);
    const b = await node(prefix);
    expect(await b.store.waitApplied(await web(a), 5000)).toBe(true);

    const bad = await a.store.client.put(`${prefix}/backends/web/b1`, JSON.stringify({ address: 42, fields: [] }));
    expect(await b.store.waitApplied(bad, 5000)).toBe(true);
    await b.gorb.idle();
    expect(await b.kernel()).toEqual(["inet 10.0.0.1 10.1.0.1:10,10.1.0.2:20"]);
    expect(b.gorb.listServices()).toEqual(["web"]);
    expect(b.log.lines.some((l) => l.startsWith(`error etcd key ${prefix}/backends/web/b1 (revision ${bad}) cannot be read`))).toBe(true);

    // The key deleted: b1 is gone from the shared state, and so from this node.
    const { revision } = await a.store.client.deleteRange(`${prefix}/backends/web/b1`);
    expect(await b.store.waitApplied(revision, 5000)).toBe(true);
    await b.gorb.idle();
    expect(await b.kernel()).toEqual(["inet 10.0.0.1 10.1.0.2:20"]);
  });

  test("a relist that finds an unreadable service row leaves the service serving", async () => {
    const prefix = `/foreign${++prefixes}`;
    const a = await node(prefix);
    await web(a);
    const log = new RecordingLogger();
    const store = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix, retryMs: 100, logger: log });
    cleanups.push(() => store.close());
    const b = makeGorb({ store });
    await b.gorb.restore((await store.load()).state);
    expect(b.gorb.listServices()).toEqual(["web"]);
    // b is not watching yet: the garbage is found by the relist its compacted watch start makes.
    await a.gorb.createService("other", { host: "10.0.0.2", port: 80 });
    const bad = await a.store.client.put(`${prefix}/services/web`, "[]");
    await a.store.client.compact(bad);
    store.sync(b.gorb);
    expect(await store.waitApplied(bad, 5000)).toBe(true);
    await b.gorb.idle();
    expect(store.status().relists).toBeGreaterThanOrEqual(1);
    expect(b.gorb.listServices()).toEqual(["other", "web"]);
    expect((await b.driver.snapshot())[0]?.destinations.map((d) => d.address)).toEqual(["10.1.0.1", "10.1.0.2"]);
    expect(log.lines.some((l) => l.startsWith(`error etcd key ${prefix}/services/web (revision ${bad}) cannot be read`))).toBe(true);
  });

  test("a key whose id the API could not make (\"a/b\", \"..\", empty) is ignored and named in the log", async () => {
    const prefix = `/foreign${++prefixes}`;
    const a = await node(prefix);
    const b = await node(prefix);
    expect(await b.store.waitApplied(await web(a), 5000)).toBe(true);
    const row = (address: string) =>
      JSON.stringify({ source: "api", fields: { host: address, port: 80 }, key: { family: "inet", protocol: "tcp", address, port: 80 }, vip: false });
    const backendRow = (address: string) => JSON.stringify({ source: "api", fields: { host: address, port: 80 }, address, family: "inet" });
    await a.store.client.put(`${prefix}/services/a/b`, row("10.0.0.9"));
    await a.store.client.put(`${prefix}/services/..`, row("10.0.0.10"));
    await a.store.client.put(`${prefix}/services/`, row("10.0.0.11"));
    await a.store.client.put(`${prefix}/backends/web/x/y`, backendRow("10.1.0.9"));
    const last = await a.store.client.put(`${prefix}/backends/web/..`, backendRow("10.1.0.10"));
    expect(await b.store.waitApplied(last, 5000)).toBe(true);
    await b.gorb.idle();
    expect(b.gorb.listServices()).toEqual(["web"]);
    expect(await b.kernel()).toEqual(["inet 10.0.0.1 10.1.0.1:10,10.1.0.2:20"]);
    for (const key of ["services/a/b", "services/..", "services/", "backends/web/x/y", "backends/web/.."]) {
      expect(b.log.lines.some((l) => l.startsWith(`error etcd key ${prefix}/${key} (revision `) && l.includes("is not a gorb key"))).toBe(true);
    }
    // web is still followed: a change through a reaches b.
    await a.gorb.updateBackend("web", "b1", { weight: 30 });
    expect(await b.store.waitApplied(a.store.committedRevision, 5000)).toBe(true);
    await b.gorb.idle();
    expect(await b.kernel()).toEqual(["inet 10.0.0.1 10.1.0.1:30,10.1.0.2:20"]);
  });
  test("a key that is not UTF-8 is not a gorb key: ignored and named in the log, never a service no path can delete", async () => {
    const prefix = `/foreign${++prefixes}`;
    const a = await node(prefix);
    const b = await node(prefix);
    expect(await b.store.waitApplied(await web(a), 5000)).toBe(true);
    const row = JSON.stringify({ source: "api", fields: { host: "10.0.0.9", port: 80 }, key: { family: "inet", protocol: "tcp", address: "10.0.0.9", port: 80 }, vip: false });
    // Written with etcd's own client: the key's last byte is 0xff, which UTF-8 never has.
    const key = Buffer.concat([Buffer.from(`${prefix}/services/`), Buffer.from([0xff])]);
    const response = await fetch(`${etcd.endpoint}/v3/kv/put`, { method: "POST", body: JSON.stringify({ key: key.toString("base64"), value: Buffer.from(row).toString("base64") }) });
    const put = Number(((await response.json()) as { header: { revision: string } }).header.revision);
    expect(await b.store.waitApplied(put, 5000)).toBe(true);
    await b.gorb.idle();
    expect(b.gorb.listServices()).toEqual(["web"]);
    expect(await b.kernel()).toEqual(["inet 10.0.0.1 10.1.0.1:10,10.1.0.2:20"]);
    expect(b.log.lines.some((l) => l.startsWith(`error etcd key ${prefix}/services/\\xff (revision ${put})`) && l.includes("is not a gorb key"))).toBe(true);
    // A node that starts reads it the same way, and gorb state export names it.
    const c = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix });
    const loaded = await c.load();
    expect(loaded.state.services.map((s) => s.id)).toEqual(["web"]);
    expect(loaded.skipped.map((k) => [k.key, k.revision])).toEqual([[`${prefix}/services/\\xff`, put]]);
  });
});
