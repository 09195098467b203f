/**
 * `gorb state export`: a node's SQLite state (its daemon stopped) printed as the JSON document `gorb apply -f`
 * reads; a state directory in use by another process is refused with exit 2; a bad --store names the flag; a
 * --state-dir without a state is refused with exit 2 and nothing is created there; a shared state in etcd with a key
 * that does not read (another client wrote it) is refused whole with exit 7, naming the key (the document without
 * it would make `gorb apply -f` delete what it holds).
 */
import { afterEach, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { readServices } from "../../../src/config/services.ts";
import { SqliteStateStore } from "../../../src/state/sqlite-store.ts";
import { EtcdClient } from "../../../src/store/etcd-client.ts";
import { runGorb } from "../cli/_harness.ts";
import { enableRootAuth, startEtcd } from "./etcd-process.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function stateWithWeb(): { dir: string; store: SqliteStateStore } {
  const dir = mkdtempSync(join(tmpdir(), "gorb-export-"));
  dirs.push(dir);
  const store = SqliteStateStore.open(dir);
  store.commit({
    putServices: [
      { id: "web", source: "api", fields: { host: "10.0.0.1", method: "wrr", port: 80 }, key: { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 }, vip: false },
    ],
    deleteServices: [],
    putBackends: [{ service: "web", id: "b1", source: "api", fields: { host: "10.1.0.1", port: 8080 }, address: { address: "10.1.0.1", family: "inet" } }],
    deleteBackends: [],
  });
  return { dir, store };
}

test("prints the saved services as a document gorb apply reads", async () => {
  const { dir, store } = stateWithWeb();
  store.close();
  const run = await runGorb(["state", "export", "--state-dir", dir]);
  expect(run.code).toBe(0);
  const doc = JSON.parse(run.stdout) as { services: unknown };
  expect(doc).toEqual({ services: { web: { host: "10.0.0.1", method: "wrr", port: 80, backends: { b1: { host: "10.1.0.1", port: 8080 } } } } });
  expect(readServices(doc.services).map((s) => s.id)).toEqual(["web"]);
});

test("rows a restore set aside are not in the document, and stderr says which, why and where they are kept", async () => {
  const { dir, store } = stateWithWeb();
  store.setAside([{ service: "web", backend: "b1", why: "port: must be 1-65535, got 0" }]);
  store.close();
  const run = await runGorb(["state", "export", "--state-dir", dir]);
  expect(run.code).toBe(0);
  expect(JSON.parse(run.stdout)).toEqual({ services: { web: { host: "10.0.0.1", method: "wrr", port: 80 } } });
  expect(run.stderr).toContain("1 row(s) a restore could not read were set aside and are not in this document: backend web/b1 (");
  expect(run.stderr).toContain(`: port: must be 1-65535, got 0); they are kept as saved in the table set_aside of ${join(dir, "state.db")}`);
});

test("a backend held by a drain is exported with maintenance: true, and stderr names it and what to do after the apply", async () => {
  const { dir, store } = stateWithWeb();
  const deadline = Date.parse("2026-12-06T10:00:00Z");
  store.commit({
    putServices: [],
    deleteServices: [],
    putBackends: [
      {
        service: "web",
        id: "b1",
        source: "api",
        fields: { host: "10.1.0.1", port: 8080 },
        address: { address: "10.1.0.1", family: "inet" },
        drain: { started: deadline - 60_000, deadline, then: "keep", phase: "drained", node: null },
      },
    ],
    deleteBackends: [],
  });
  store.close();
  const run = await runGorb(["state", "export", "--state-dir", dir]);
  expect(run.code).toBe(0);
  const doc = JSON.parse(run.stdout) as { services: unknown };
  expect(doc).toEqual({ services: { web: { host: "10.0.0.1", method: "wrr", port: 80, backends: { b1: { host: "10.1.0.1", port: 8080, maintenance: true } } } } });
  expect(run.stderr).toContain("1 backend(s) under a drain are in this document with maintenance: true");
  expect(run.stderr).toContain("web/b1 (then keep, deadline 2026-12-06T10:00:00.000Z)");
});

test("a state directory its daemon still holds is refused (exit 2); a bad --store names the flag", async () => {
  const { dir, store } = stateWithWeb();
  const held = await runGorb(["state", "export", "--state-dir", dir]);
  store.close();
  expect(held.code).toBe(2);
  expect(held.stderr).toContain("in use by another process");
  const bad = await runGorb(["state", "export", "--store", "consul://x:1/gorb"]);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain("--store: expected etcd://");
  // Both sources: refused, not one of them read and the other dropped.
  const both = await runGorb(["state", "export", "--state-dir", dir, "--store", "etcd://127.0.0.1:1/gorb"]);
  expect([both.code, both.stdout]).toEqual([2, ""]);
  expect(both.stderr).toContain("--state-dir and --store are two sources: give one");
});

test("a --state-dir without a state (missing, a relative typo, or a directory without state.db) is refused; nothing is created", async () => {
  const parent = mkdtempSync(join(tmpdir(), "gorb-export-"));
  dirs.push(parent);
  const missing = join(parent, "nonexistent");
  const typo = relative(process.cwd(), join(parent, "typo"));
  for (const dir of [missing, typo]) {
    const run = await runGorb(["state", "export", "--state-dir", dir]);
    expect(run).toEqual({
      code: 2,
      stdout: "",
      stderr: `error: gorb state export: --state-dir: no gorb state in ${dir} (${join(parent, dir === typo ? "typo" : "nonexistent", "state.db")} does not exist)\n`,
    });
  }
  expect(existsSync(missing)).toBe(false);
  const empty = await runGorb(["state", "export", "--state-dir", parent]);
  expect([empty.code, empty.stdout]).toEqual([2, ""]);
  expect(empty.stderr).toContain(`--state-dir: no gorb state in ${parent}`);
  expect(readdirSync(parent)).toEqual([]);
  // An empty state.db (a gorb that could not write its first page, a `touch`): no state either, and left empty.
  writeFileSync(join(parent, "state.db"), "", { mode: 0o600 });
  const blank = await runGorb(["state", "export", "--state-dir", parent]);
  expect(blank).toEqual({
    code: 2,
    stdout: "",
    stderr: `error: gorb state export: --state-dir: no gorb state in ${parent} (${join(parent, "state.db")} holds no tables)\n`,
  });
  expect(readdirSync(parent)).toEqual(["state.db"]);
  expect(statSync(join(parent, "state.db")).size).toBe(0);
});

test("--store with a key that does not read back is refused whole (exit 7) naming the key; without it, the state prints", async () => {
  const etcd = await startEtcd();
  try {
    const client = new EtcdClient({ endpoints: [etcd.endpoint] });
    const web = { source: "api", fields: { host: "10.0.0.1", port: 80 }, key: { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 }, vip: false };
    await client.put("/gorb/services/web", JSON.stringify(web));
    await client.put("/gorb/backends/web/b1", JSON.stringify({ source: "api", fields: { host: "10.1.0.1", port: 80 }, address: "10.1.0.1", family: "inet" }));
    const bad = await client.put("/gorb/backends/web/b2", "{truncated");
    const url = `${etcd.endpoint.replace("http://", "etcd://")}/gorb`;
    const refused = await runGorb(["state", "export", "--store", url]);
    expect([refused.code, refused.stdout]).toEqual([7, ""]);
    expect(refused.stderr).toContain(`1 key(s) of ${url} cannot be read: /gorb/backends/web/b2 (revision ${bad}): `);
    await client.deleteRange("/gorb/backends/web/b2");
    const run = await runGorb(["state", "export", "--store", url]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ services: { web: { host: "10.0.0.1", port: 80, backends: { b1: { host: "10.1.0.1", port: 80 } } } } });
  } finally {
    await etcd.stop();
  }
});

test("--store with etcd authentication: --etcd-user and --etcd-password-file, the file private as gorb serve wants it", async () => {
  const etcd = await startEtcd();
  try {
    await enableRootAuth(etcd.endpoint, "rootpw");
    const client = new EtcdClient({ endpoints: [etcd.endpoint], auth: { user: "root", password: "rootpw" } });
    const web = { source: "api", fields: { host: "10.0.0.1", port: 80 }, key: { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 }, vip: false };
    await client.put("/gorb/services/web", JSON.stringify(web));
    const dir = mkdtempSync(join(tmpdir(), "gorb-export-"));
    dirs.push(dir);
    const password = join(dir, "etcd-password");
    writeFileSync(password, "rootpw\n");
    chmodSync(password, 0o644);
    const url = `${etcd.endpoint.replace("http://", "etcd://")}/gorb`;
    const open = await runGorb(["state", "export", "--store", url, "--etcd-user", "root", "--etcd-password-file", password]);
    expect([open.code, open.stdout]).toEqual([2, ""]);
    expect(open.stderr).toContain(`--etcd-password-file: ${password}`);
    chmodSync(password, 0o600);
    const run = await runGorb(["state", "export", "--store", url, "--etcd-user", "root", "--etcd-password-file", password]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ services: { web: { host: "10.0.0.1", port: 80 } } });
    const alone = await runGorb(["state", "export", "--etcd-user", "root", "--etcd-password-file", password]);
    expect(alone.code).toBe(2);
    expect(alone.stderr).toContain("needs --store etcd://");
  } finally {
    await etcd.stop();
  }
});
