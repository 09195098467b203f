/**
 * The SQLite state store: round trip, one transaction per commit, the exclusive lock, refusals of a newer or
 * damaged database, and crash safety (a writer killed with SIGKILL mid-stream leaves every acknowledged commit
 * and no partial one).
 */
import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readFileSync, lchownSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SavedBackend, SavedService, StateChanges } from "../../../src/core/state.ts";
import { SCHEMA_VERSION, SqliteStateStore } from "../../../src/state/sqlite-store.ts";
import { StateSchemaError, StateStoreError, UnsafeStatePathError } from "../../../src/state/errors.ts";

const dirs: string[] = [];
const stores: SqliteStateStore[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "gorb-state-"));
  dirs.push(dir);
  return dir;
}

function open(dir: string): SqliteStateStore {
  const store = SqliteStateStore.open(dir);
  stores.push(store);
  return store;
}

afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const WEB: SavedService = {
  id: "web",
  source: "api",
  fields: { host: "10.0.0.1", port: 80, method: "rr" },
  key: { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 },
  vip: true,
};
const MARKED: SavedService = { id: "marked", source: "file", fields: { fwmark: 7 }, key: { family: "inet6", fwmark: 7 }, vip: false };
const B1: SavedBackend = {
  service: "web",
  id: "b1",
  source: "file",
  fields: { host: "10.1.0.1", weight: 5, pulse: { type: "http", args: { path: "/health" } } },
  address: { address: "10.1.0.1", family: "inet" },
};

function changes(partial: Partial<StateChanges>): StateChanges {
  return { putServices: [], deleteServices: [], putBackends: [], deleteBackends: [], ...partial };
}

describe("SqliteStateStore", () => {
  test("creates the directory (0700) and the database (0600); what is committed loads back after a reopen", () => {
    const dir = join(tempDir(), "nested", "gorb");
    const store = open(dir);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(store.location).mode & 0o777).toBe(0o600);
    expect(store.load()).toEqual({ services: [], backends: [] });
    store.commit(changes({ putServices: [WEB, MARKED], putBackends: [B1] }));
    store.close();
    stores.pop();
    expect(open(dir).load()).toEqual({ services: [WEB, MARKED], backends: [B1] });
  });

  test("a put replaces the row in place (the order stays); deleting a service deletes its backends", () => {
    const store = open(tempDir());
    store.commit(changes({ putServices: [WEB, MARKED], putBackends: [B1, { ...B1, id: "b2" }] }));
    store.commit(changes({ putServices: [{ ...WEB, fields: { ...WEB.fields, method: "wrr" } }] }));
    expect(store.load().services.map((s) => [s.id, s.fields.method])).toEqual([["web", "wrr"], ["marked", undefined]]);
    store.commit(changes({ deleteBackends: [{ service: "web", id: "b1" }] }));
    expect(store.load().backends.map((b) => b.id)).toEqual(["b2"]);
    store.commit(changes({ deleteServices: ["web"] }));
    expect(store.load()).toEqual({ services: [MARKED], backends: [] });
  });

  test("a commit is all or nothing: a failure part-way leaves the state before it", () => {
    const store = open(tempDir());
    store.commit(changes({ putServices: [WEB] }));
    // A backend row whose JSON cannot be written (a BigInt) fails after the service put in the same commit.
    const bad = { ...B1, fields: { weight: 10n } } as unknown as SavedBackend;
    expect(() => store.commit(changes({ putServices: [MARKED], deleteServices: ["web"], putBackends: [bad] }))).toThrow();
    expect(store.load()).toEqual({ services: [WEB], backends: [] });
  });

  test("a commit of many rows is one transaction written in slices: the event loop turns meanwhile, a failure undoes all of it", async () => {
    const store = open(tempDir());
    store.commit(changes({ putServices: [WEB] }));
    const many = Array.from({ length: 1_500 }, (_, i): SavedBackend => ({ ...B1, id: `b${i}` }));
    // Counts turns of the event loop: an immediate that schedules the next one runs once per turn.
    let turns = 0;
    let ticking = true;
    const tick = () => {
      turns++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const bad = { ...B1, id: "bad", fields: { weight: 10n } } as unknown as SavedBackend;
    const failing = store.commit(changes({ putServices: [MARKED], putBackends: [...many.slice(0, 1_200), bad, ...many.slice(1_200)] }));
    await expect(failing).rejects.toThrow();
    expect(store.load()).toEqual({ services: [WEB], backends: [] });
    turns = 0;
    const big = store.commit(changes({ putBackends: many }));
    // Issued while the big one is written: it waits for it, and its row lands after it.
    const after = store.commit(changes({ putBackends: [{ ...B1, id: "b7", fields: { host: "10.1.0.1", weight: 9 } }] }));
    expect(big).toBeInstanceOf(Promise);
    expect(after).toBeInstanceOf(Promise);
    await big;
    const turnsDuring = turns;
    await after;
    ticking = false;
    expect(turnsDuring).toBeGreaterThan(0);
    const saved = store.load();
    expect(saved.backends.length).toBe(1_500);
    expect(saved.backends.find((b) => b.id === "b7")?.fields).toEqual({ host: "10.1.0.1", weight: 9 });
    store.commit(changes({ putServices: [MARKED] }));
    expect(store.load().services.map((s) => s.id)).toEqual(["web", "marked"]);
  });

  test("a staged commit: its rows wait in an open transaction, saved only once committed; aborted or cut short, nothing is", async () => {
    const dir = tempDir();
    let store = open(dir);
    store.commit(changes({ putServices: [WEB] }));
    const many = Array.from({ length: 1_200 }, (_, i): SavedBackend => ({ ...B1, id: `b${i}` }));
    // Aborted: nothing of it; a commit issued while it was open waits for it and lands after it.
    const dropped = await store.stage(changes({ putServices: [MARKED], putBackends: many }));
    let landed = false;
    const meanwhile = Promise.resolve(store.commit(changes({ putBackends: [B1] }))).then(() => {
      landed = true;
    });
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(landed).toBe(false);
    await dropped.abort();
    await meanwhile;
    expect(store.load()).toEqual({ services: [WEB], backends: [B1] });
    await expect(dropped.commit()).rejects.toThrow("already");
    // Cut short (the daemon stops before the commit): nothing of it after a restart.
    await store.stage(changes({ putBackends: many }));
    store.close();
    stores.splice(stores.indexOf(store), 1);
    store = open(dir);
    expect(store.load().backends).toEqual([B1]);
    // Committed: all of it, durable.
    const kept = await store.stage(changes({ putServices: [MARKED], putBackends: many }));
    await kept.commit();
    store.close();
    stores.splice(stores.indexOf(store), 1);
    store = open(dir);
    expect(store.load().services.map((x) => x.id)).toEqual(["web", "marked"]);
    expect(store.load().backends).toHaveLength(1_200);
  });

  test("probe() is a durable write that leaves the saved state as it is; it throws when the store cannot write", () => {
    const dir = tempDir();
    const store = open(dir);
    store.commit({ putServices: [WEB], deleteServices: [], putBackends: [], deleteBackends: [] });
    store.probe();
    store.probe();
    expect(store.load()).toEqual({ services: [WEB], backends: [] });
    const closed = SqliteStateStore.open(tempDir());
    closed.close();
    expect(() => closed.probe()).toThrow();
  });

  test("a second store on the same directory is refused while the first is open, in this process or another", () => {
    const dir = tempDir();
    open(dir);
    expect(() => SqliteStateStore.open(dir)).toThrow(/in use by another process/);
    const other = Bun.spawnSync(
      [process.execPath, "-e", `import { SqliteStateStore } from "${join(import.meta.dir, "../../../src/state/sqlite-store.ts")}"; try { SqliteStateStore.open(${JSON.stringify(dir)}); console.log("opened"); } catch (e) { console.log(e.message); }`],
      { stderr: "pipe" },
    );
    expect(other.stdout.toString()).toContain("is in use by another process");
  });

  test("a state.db that is not a database (truncated, overwritten) is refused as damaged, with what to do, and left as it is", () => {
    const dir = tempDir();
    const garbage = "not an SQLite database ".repeat(200);
    writeFileSync(join(dir, "state.db"), garbage, { mode: 0o600 });
    expect(() => SqliteStateStore.open(dir)).toThrow(/state\.db is damaged \(file is not a database\); move it away to start empty/);
    expect(readFileSync(join(dir, "state.db"), "utf8")).toBe(garbage);
  });

  test("a directory that cannot be created, a newer schema and a damaged row are refused with what to do", () => {
    const dir = tempDir();
    Bun.write(join(dir, "file"), "x");
    expect(() => SqliteStateStore.open(join(dir, "file", "sub"))).toThrow(StateStoreError);
    expect(() => SqliteStateStore.open(join(dir, "file", "sub"))).toThrow(/cannot create the state directory/);

    const newer = tempDir();
    open(newer).close();
    stores.pop();
    const db = new Database(join(newer, "state.db"));
    db.run("UPDATE meta SET value = ? WHERE name = 'schema'", [String(SCHEMA_VERSION + 1)]);
    db.close();
    expect(() => SqliteStateStore.open(newer)).toThrow(/written by a newer gorb/);

    const damaged = tempDir();
    open(damaged).close();
    stores.pop();
    const db2 = new Database(join(damaged, "state.db"));
    db2.run("INSERT INTO services (id, data) VALUES ('web', ?)", [JSON.stringify({ source: "someone", fields: {}, key: {} })]);
    db2.close();
    const store = open(damaged);
    expect(() => store.load()).toThrow('is damaged (service "web": source must be "api" or "file", got "someone"); move it away to start empty');
  });

  test("a row whose data is not JSON is refused naming the row", () => {
    const dir = tempDir();
    const first = open(dir);
    first.commit({
      putServices: [{ id: "web", source: "api", fields: { host: "10.0.0.1", port: 80 }, key: { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 }, vip: false }],
      deleteServices: [],
      putBackends: [{ service: "web", id: "b1", source: "api", fields: { host: "10.1.0.1" }, address: { address: "10.1.0.1", family: "inet" } }],
      deleteBackends: [],
    });
    first.close();
    stores.pop();
    const db = new Database(join(dir, "state.db"));
    db.run("UPDATE backends SET data = '{truncated' WHERE id = 'b1'");
    db.close();
    const store = open(dir);
    expect(() => store.load()).toThrow(/is damaged \(backend "b1" of service "web": its data is not JSON \(.+\)\); move it away to start empty$/);
  });

  test("another program's database, a schema that is no version and tables gorb did not make are refused; the file is left as it was", () => {
    const schemaError = (dir: string): StateSchemaError => {
      try {
        SqliteStateStore.open(dir).close();
      } catch (error) {
        if (error instanceof StateSchemaError) return error;
        throw error;
      }
      throw new Error(`${dir} was opened`);
    };
    const made = (statements: readonly string[]): { dir: string; file: string; bytes: Buffer } => {
      const dir = tempDir();
      const file = join(dir, "state.db");
      const db = new Database(file);
      for (const statement of statements) db.run(statement);
      db.close();
      return { dir, file, bytes: readFileSync(file) };
    };

    const foreign = made(["CREATE TABLE users (name TEXT)", "INSERT INTO users VALUES ('alice')"]);
    expect(schemaError(foreign.dir)).toMatchObject({ kind: "foreign", tables: ["users"], schema: null });
    expect(schemaError(foreign.dir).message).toBe(
      `the state database ${foreign.file} is not a gorb state (it holds the tables users and no gorb schema); it was left as it is`,
    );
    expect(readFileSync(foreign.file).equals(foreign.bytes)).toBe(true);

    const unknown = made(["CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)", "INSERT INTO meta VALUES ('schema', '2.0-beta')"]);
    expect(schemaError(unknown.dir)).toMatchObject({ kind: "unknown", schema: "2.0-beta" });
    expect(readFileSync(unknown.file).equals(unknown.bytes)).toBe(true);

    // gorb's schema, but a services table of another shape: damaged, and the database is closed (its lock let go).
    const edited = made([
      "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
      `INSERT INTO meta VALUES ('schema', '${SCHEMA_VERSION}')`,
      "CREATE TABLE services (id INTEGER PRIMARY KEY, name TEXT)",
    ]);
    expect(() => SqliteStateStore.open(edited.dir)).toThrow(StateStoreError);
    expect(() => SqliteStateStore.open(edited.dir)).toThrow(/is damaged .*move it away to start empty/);
    const db = new Database(edited.file);
    db.run("PRAGMA busy_timeout = 0");
    db.run("DROP TABLE services");
    db.close();
    open(edited.dir).close();
    stores.pop();
  });

  test("a path another user could swap (a link in place of state.db, a directory of theirs or one all may write) is refused before anything is written", () => {
    // Making a file another user's takes root, as gorb serve runs.
    if (process.geteuid?.() !== 0) throw new Error("this test must run as root: it gives files to another user (lchown)");
    const NOBODY = 65534;
    const refused = (dir: string): UnsafeStatePathError => {
      try {
        SqliteStateStore.open(dir).close();
      } catch (error) {
        if (error instanceof UnsafeStatePathError) return error;
        throw error;
      }
      throw new Error(`${dir} was opened`);
    };
    const root = tempDir();

    // state.db a link to a file that does not exist: not created; to one that does: neither chmod'ed nor written.
    const linked = join(root, "linked");
    mkdirSync(linked);
    symlinkSync(join(root, "planted.db"), join(linked, "state.db"));
    expect(refused(linked)).toMatchObject({ path: join(linked, "state.db"), kind: "link" });
    expect(existsSync(join(root, "planted.db"))).toBe(false);
    writeFileSync(join(root, "passwd"), "root:x:0:0::/root:/bin/sh\n", { mode: 0o644 });
    rmSync(join(linked, "state.db"));
    symlinkSync(join(root, "passwd"), join(linked, "state.db"));
    expect(refused(linked).kind).toBe("link");
    expect(statSync(join(root, "passwd")).mode & 0o777).toBe(0o644);
    // So is a link in place of the write-ahead log.
    const wal = join(root, "wal");
    open(wal).close();
    stores.pop();
    rmSync(join(wal, "state.db-wal"), { force: true });
    symlinkSync(join(root, "planted-wal"), join(wal, "state.db-wal"));
    expect(refused(wal)).toMatchObject({ path: join(wal, "state.db-wal"), kind: "link" });
    expect(existsSync(join(root, "planted-wal"))).toBe(false);

    // A state directory another user owns, or one all may write to.
    const theirs = join(root, "theirs");
    mkdirSync(theirs, { mode: 0o700 });
    lchownSync(theirs, NOBODY, NOBODY);
    expect(refused(theirs)).toMatchObject({ path: theirs, kind: "owner", uid: NOBODY });
    const open777 = join(root, "open");
    mkdirSync(open777);
    chmodSync(open777, 0o777);
    expect(refused(open777)).toMatchObject({ path: open777, kind: "writable", mode: 0o777 });
    expect(existsSync(join(open777, "state.db"))).toBe(false);
    // A parent all may write to: refused, unless it has the sticky bit (as /tmp), where no one renames root's entries.
    const parent = join(root, "parent");
    mkdirSync(parent);
    chmodSync(parent, 0o777);
    expect(refused(join(parent, "gorb"))).toMatchObject({ path: parent, kind: "writable" });
    chmodSync(parent, 0o1777);
    open(join(parent, "gorb"));

    // A link to the state directory: fine when root made it; refused when another user did (in a sticky directory).
    const target = join(root, "target");
    symlinkSync(target, join(parent, "by-root"));
    mkdirSync(target, { mode: 0o700 });
    open(join(parent, "by-root"));
    symlinkSync(target, join(parent, "by-them"));
    lchownSync(join(parent, "by-them"), NOBODY, NOBODY);
    expect(refused(join(parent, "by-them"))).toMatchObject({ path: join(parent, "by-them"), kind: "owner" });
  });

  test("a missing state directory is created only inside directories already checked: nothing through another user's link or open directory", () => {
    if (process.geteuid?.() !== 0) throw new Error("this test must run as root: it gives files to another user (lchown)");
    const NOBODY = 65534;
    const root = tempDir();
    // A directory all may write to (no sticky bit) on the way: refused, and no directory made in it.
    const open777 = join(root, "open");
    mkdirSync(open777);
    chmodSync(open777, 0o777);
    expect(() => SqliteStateStore.open(join(open777, "gorb", "state"))).toThrow(UnsafeStatePathError);
    expect(existsSync(join(open777, "gorb"))).toBe(false);
    // Another user's link on the way (in a sticky directory, as /tmp): refused before root makes a directory where it points.
    const sticky = join(root, "sticky");
    mkdirSync(sticky);
    chmodSync(sticky, 0o1777);
    const elsewhere = join(root, "elsewhere");
    mkdirSync(elsewhere, { mode: 0o755 });
    symlinkSync(elsewhere, join(sticky, "theirs"));
    lchownSync(join(sticky, "theirs"), NOBODY, NOBODY);
    expect(() => SqliteStateStore.open(join(sticky, "theirs", "gorb"))).toThrow(UnsafeStatePathError);
    expect(existsSync(join(elsewhere, "gorb"))).toBe(false);
    // Safe directories on the way: every missing one is made, mode 0700.
    const store = open(join(sticky, "mine", "a", "b"));
    for (const made of ["mine", "mine/a", "mine/a/b"]) expect(statSync(join(sticky, made)).mode & 0o777).toBe(0o700);
    expect(store.load()).toEqual({ services: [], backends: [] });
  });

  test("crash safety: a writer killed with SIGKILL keeps every acknowledged commit and no partial one", async () => {
    for (const killAfter of [1, 25, 200]) {
      const dir = tempDir();
      const writer = Bun.spawn([process.execPath, join(import.meta.dir, "crash-writer.ts"), dir], { stdout: "pipe", stderr: "pipe" });
      let acknowledged = 0;
      let buffer = "";
      const decoder = new TextDecoder();
      for await (const chunk of writer.stdout) {
        buffer += decoder.decode(chunk, { stream: true });
        const lines = buffer.split("\n");
        buffer = lines.pop() ?? "";
        for (const line of lines) acknowledged = Math.max(acknowledged, Number(line));
        if (acknowledged >= killAfter) {
          writer.kill("SIGKILL");
          break;
        }
      }
      await writer.exited;
      expect(writer.signalCode).toBe("SIGKILL");

      const store = open(dir);
      const { services, backends } = store.load();
      const last = Math.max(...services.map((s) => Number(s.fields.n)));
      // Every acknowledged commit is there; at most the one in flight when the writer died is there too.
      expect(last).toBeGreaterThanOrEqual(acknowledged);
      // Commits are whole: exactly the services commits 1..last leave (commit n deletes s(n-1) when 3 divides n),
      // and each with its backend.
      const expected: string[] = [];
      for (let n = 1; n <= last; n++) {
        if (n > 1 && n % 3 === 0) expected.splice(expected.indexOf(`s${n - 1}`), 1);
        expected.push(`s${n}`);
      }
      expect(services.map((s) => s.id)).toEqual(expected);
      expect(backends.map((b) => `${b.service}:${b.fields.weight}`)).toEqual(expected.map((id) => `${id}:${id.slice(1)}`));
      // The store holds the exclusive lock: check the file's integrity once it is closed.
      store.close();
      stores.pop();
      const db = new Database(join(dir, "state.db"));
      expect(db.query("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
      db.close();
    }
  }, 60_000);
});

describe("the record of services being created (intend)", () => {
  const KEY7 = { family: "inet", protocol: "tcp", address: "10.0.0.7", port: 80 } as const;

  test("is durable, adds up until a commit clears it, survives an aborted staged commit and is cleared by a committed one", async () => {
    const dir = tempDir();
    const store = open(dir);
    await store.intend([{ key: WEB.key, vip: true }]);
    await store.intend([{ key: KEY7, vip: false }, { key: WEB.key, vip: true }]);
    expect(store.load().creating).toEqual([{ key: WEB.key, vip: true }, { key: KEY7, vip: false }]);
    const aborted = await store.stage(changes({ putServices: [WEB] }));
    await aborted.abort();
    expect(store.load()).toEqual({ services: [], backends: [], creating: [{ key: WEB.key, vip: true }, { key: KEY7, vip: false }] });
    const committed = await store.stage(changes({ putServices: [WEB] }));
    await committed.commit();
    expect(store.load()).toEqual({ services: [WEB], backends: [] });
    await store.intend([{ key: KEY7, vip: false }]);
    await store.commit(changes({ putBackends: [B1] })); // the one-row fast path clears it too
    expect(store.load().creating).toBeUndefined();
    await store.intend([{ key: KEY7, vip: false }]);
    await store.intend([]);
    expect(store.load().creating).toBeUndefined();
  });

  test("a database from before the record (no table) reads with none, and gets the table when gorb opens it to write", () => {
    const dir = tempDir();
    open(dir).close();
    stores.pop();
    const db = new Database(join(dir, "state.db"));
    db.run("DROP TABLE creating");
    db.close();
    const reader = SqliteStateStore.open(dir, { create: false });
    expect(reader.load()).toEqual({ services: [], backends: [] });
    reader.close();
    const writer = open(dir);
    writer.intend([{ key: KEY7, vip: true }]);
    expect(writer.load().creating).toEqual([{ key: KEY7, vip: true }]);
  });
});

describe("rows restore cannot read (setAside)", () => {
  test("move to table set_aside verbatim, with why and when, in one durable transaction; a service takes its backends along", () => {
    const dir = tempDir();
    const store = open(dir);
    const B2: SavedBackend = { ...B1, id: "b2", fields: { host: "10.1.0.2" }, address: { address: "10.1.0.2", family: "inet" } };
    store.commit(changes({ putServices: [WEB, MARKED], putBackends: [B1, B2, { ...B1, service: "marked" }] }));
    store.setAside([
      { service: "web", backend: "b1", why: "weight: must be 0-2147483647, got -5" },
      { service: "marked", backend: null, why: "a newer field" },
      { service: "web", backend: "nothere", why: "gone already" },
    ]);
    store.close();
    stores.pop();
    const again = open(dir);
    expect(again.load()).toEqual({ services: [WEB], backends: [B2] });
    const rows = again.setAsideRows();
    expect(rows.map((r) => [r.service, r.backend, r.why])).toEqual([
      ["web", "b1", "weight: must be 0-2147483647, got -5"],
      ["marked", null, "a newer field"],
      ["marked", "b1", "its service was set aside: a newer field"],
    ]);
    expect(Date.parse(rows[0]?.at ?? "")).toBeGreaterThan(Date.now() - 60_000);
    // The rows as they were saved, for an operator (or a later gorb) to read with sqlite3 once gorb stopped.
    again.close();
    stores.pop();
    const db = new Database(join(dir, "state.db"), { readonly: true });
    const data = db.query("SELECT data FROM set_aside ORDER BY rowid").all() as { data: string }[];
    db.close();
    expect(data.map((d) => (JSON.parse(d.data) as { fields: unknown }).fields)).toEqual([B1.fields, MARKED.fields, B1.fields]);
  });

  test("a failure part-way moves nothing", () => {
    const dir = tempDir();
    const store = open(dir);
    store.commit(changes({ putServices: [WEB], putBackends: [B1] }));
    // A row whose why cannot be stored (NOT NULL) fails the second insert: the first row's move is rolled back.
    expect(() => store.setAside([{ service: "web", backend: "b1", why: "first" }, { service: "web", backend: null, why: null as unknown as string }])).toThrow();
    expect(store.load()).toEqual({ services: [WEB], backends: [B1] });
    expect(store.setAsideRows()).toEqual([]);
  });
});

/** What a reader (gorb state export) loads from `dir` bind-mounted read-only over itself; needs root. */
function loadReadOnly(dir: string): ReturnType<SqliteStateStore["load"]> {
  const mount = Bun.spawnSync(["mount", "--bind", "-o", "ro", dir, dir], { stderr: "pipe" });
  if (mount.exitCode !== 0) throw new Error(`bind-mount ${dir} read-only (the test needs root): ${mount.stderr.toString()}`);
  try {
    const reader = SqliteStateStore.open(dir, { create: false });
    try {
      return reader.load();
    } finally {
      reader.close();
    }
  } finally {
    Bun.spawnSync(["umount", dir]);
  }
}

describe("a state directory gorb serve cannot write to", () => {
  test("on a read-only mount: refused at start, saying so and what to do, and left as it is", async () => {
    const dir = tempDir();
    const store = open(dir);
    await store.commit(changes({ putServices: [WEB] }));
    store.close();
    stores.pop();
    const before = readFileSync(join(dir, "state.db"));
    const mount = Bun.spawnSync(["mount", "--bind", "-o", "ro", dir, dir], { stderr: "pipe" });
    if (mount.exitCode !== 0) throw new Error(`bind-mount ${dir} read-only (the test needs root): ${mount.stderr.toString()}`);
    try {
      expect(() => SqliteStateStore.open(dir)).toThrow(
        `the state directory ${dir} is on a read-only file system: gorb writes every change there; make it writable, or choose another --state-dir (--no-state keeps nothing)`,
      );
      expect(() => SqliteStateStore.open(join(dir, "sub"))).toThrow(
        `cannot create the state directory ${join(dir, "sub")}: read-only file system (EROFS): choose another --state-dir (--no-state keeps nothing)`,
      );
    } finally {
      Bun.spawnSync(["umount", dir]);
    }
    expect(readFileSync(join(dir, "state.db")).equals(before)).toBe(true);
  });
});

describe("a state.db gorb serve may not write", () => {
  test("mode 0444 under the packaged unit (no CAP_DAC_OVERRIDE): refused at start naming the file, its mode and what to do", async () => {
    const dir = tempDir();
    const store = open(dir);
    await store.commit(changes({ putServices: [WEB] }));
    store.close();
    stores.pop();
    const file = join(dir, "state.db");
    chmodSync(file, 0o444);
    const before = readFileSync(file);
    const module = join(import.meta.dir, "../../../src/state/sqlite-store.ts");
    const script =
      `import { SqliteStateStore } from ${JSON.stringify(module)};` +
      `try { SqliteStateStore.open(${JSON.stringify(dir)}).close(); console.log("opened"); } catch (e) { console.log(JSON.stringify({ name: e.name, message: e.message })); }`;
    // Root as the unit runs it: without CAP_DAC_OVERRIDE, a file's mode binds root too.
    const run = Bun.spawnSync(["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all", process.execPath, "-e", script], { cwd: "/", stderr: "pipe" });
    expect(run.stderr.toString()).toBe("");
    expect(JSON.parse(run.stdout.toString())).toEqual({
      name: "StateStoreError",
      message: `the state database file ${file} cannot be written to (EACCES, mode 0444): gorb writes every change there; make it writable (chmod 600 ${file})`,
    });
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o444);
  });
});

describe("a state directory gorb serve may not create", () => {
  test("as a user other than root (the default /var/lib/gorb): the errno, and what to do (root, --state-dir, --no-state)", () => {
    const parent = tempDir();
    chmodSync(parent, 0o755); // others may enter, not write: nobody's mkdir in it is EACCES
    const dir = join(parent, "gorb");
    const module = join(import.meta.dir, "../../../src/state/sqlite-store.ts");
    const script =
      `import { SqliteStateStore } from ${JSON.stringify(module)};` +
      `try { SqliteStateStore.open(${JSON.stringify(dir)}); } catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, path: e.path, message: e.message })); }`;
    // The tests run as root, whom no directory mode stops: the open runs as nobody.
    const run = Bun.spawnSync(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, "-e", script], { cwd: "/", stderr: "pipe" });
    expect(run.stderr.toString()).toBe("");
    expect(JSON.parse(run.stdout.toString())).toEqual({
      name: "StateDirCreateError",
      code: "EACCES",
      path: dir,
      message:
        `cannot create the state directory ${dir}: permission denied (EACCES): run gorb serve as root, or choose a --state-dir ` +
        "it may write (--no-state keeps nothing)",
    });
    expect(existsSync(dir)).toBe(false);
  });
});

describe("reading a state on read-only media (gorb state export of a snapshot or a rescue mount)", () => {
  test("a saved state on a read-only bind mount is read whole, and nothing is written next to it", async () => {
    const dir = tempDir();
    const store = open(dir);
    await store.commit(changes({ putServices: [WEB], putBackends: [B1] }));
    store.close();
    stores.pop();
    expect(loadReadOnly(dir)).toEqual({ services: [WEB], backends: [B1] });
    expect(existsSync(join(dir, "state.db-wal")) || existsSync(join(dir, "state.db-shm"))).toBe(false);
  });

  test("a snapshot taken while gorb ran (rows still in the write-ahead log) is read whole from read-only media", async () => {
    const live = tempDir();
    const store = open(live);
    await store.commit(changes({ putServices: [WEB], putBackends: [B1] }));
    const snapshot = tempDir();
    chmodSync(snapshot, 0o700);
    expect(statSync(join(live, "state.db-wal")).size).toBeGreaterThan(0); // the rows are (also) in the log
    for (const name of ["state.db", "state.db-wal"]) writeFileSync(join(snapshot, name), readFileSync(join(live, name)), { mode: 0o600 });
    expect(loadReadOnly(snapshot)).toEqual({ services: [WEB], backends: [B1] });
  });
});
