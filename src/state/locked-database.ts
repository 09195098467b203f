/**
 * Opening one of gorb's SQLite databases in its state directory (the state, ./sqlite-store.ts; a fleet node's
 * kernel ledger, ./ledger-store.ts): the path checked first (./state-path.ts: no link or directory another user
 * could swap), the directory made (mode 0700) when missing, the file 0600, WAL mode with synchronous=FULL, and an
 * exclusive lock held until close (or the process's death), so a second daemon pointed at the same directory fails
 * at start-up instead of writing over the first one's. A database is gorb's by its `meta` table's schema version:
 * another program's database, a version that is not one, or a newer one than this gorb writes is refused as it is.
 */
import { Database, type Statement } from "bun:sqlite";
import { accessSync, chmodSync, constants, copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { StateMissingError, StateSchemaError, StateStoreError, UnsafeStatePathError } from "./errors.ts";
import { checkStateDir, checkStateFiles } from "./state-path.ts";
import { errorMessage } from "../core/errors.ts";
import { errorCode } from "../errno.ts";

/** One kind of database in the state directory. */
export interface DatabaseSpec {
  /** Its file name in the state directory ("state.db"). */
  readonly file: string;
  /** What it is, for messages ("state database"). */
  readonly noun: string;
  /** What another program's database is not, for messages: "a gorb <what>" ("state"). */
  readonly what: string;
  /** The schema this code writes; a database with a newer one is refused. */
  readonly schemaVersion: number;
  /** Its tables' CREATE TABLE IF NOT EXISTS statements (`meta` is made here). */
  readonly tables: readonly string[];
}

/** An open, locked database: close `db`, then call `remove` when given (the private copy of a reader). */
export interface OpenDatabase {
  readonly db: Database;
  /** The file as asked for ("/var/lib/gorb/state.db"). */
  readonly location: string;
  readonly remove: (() => void) | null;
}

/**
 * Open (creating the directory and the database when missing) and lock `spec`'s database in `dir`. With `create`
 * false (a reader such as `gorb state export`) nothing is created or written: a missing directory or database, or
 * an empty one, throws StateMissingError. Throws StateStoreError when the directory cannot be created, the database
 * cannot be read, it was written by a newer gorb, or another process holds it.
 */
export function openLockedDatabase(dir: string, spec: DatabaseSpec, create: boolean): OpenDatabase {
  const location = join(dir, spec.file);
  if (!create && !existsSync(location)) throw new StateMissingError(dir, resolve(location));
  // gorb runs as root: a link another user planted on the way must not make it write (or chmod) elsewhere, nor
  // create the directory there (a missing one is made only inside directories that passed the checks).
  let real: string;
  try {
    const uid = process.geteuid?.() ?? 0;
    real = join(checkStateDir(dir, uid, create), spec.file);
    checkStateFiles(real, uid);
  } catch (error) {
    if (create && error instanceof UnsafeStatePathError && error.kind === "not-directory") {
      throw new StateStoreError(`cannot create the state directory ${dir}: ${error.path} is not a directory`, { cause: error });
    }
    if (error instanceof StateStoreError) throw error;
    throw new StateStoreError(`cannot use the state directory ${dir}: ${errorMessage(error)}`, { cause: error });
  }
  // A reader of a directory it cannot write (read-only media) reads a private copy: SQLite could not lock it.
  // gorb serve cannot work there: said so, instead of SQLite's "disk I/O error".
  const unwritable = writeProblem(dirname(real));
  if (create && unwritable !== null) {
    throw new StateStoreError(
      `the state directory ${dir} ${unwritable}: gorb writes every change there; make it writable, or choose another --state-dir (--no-state keeps nothing)`,
    );
  }
  if (create) {
    // A file gorb may not write (mode 0444 under the packaged unit, which drops CAP_DAC_OVERRIDE; an immutable
    // file) would otherwise be SQLite's "disk I/O error", or a read-only database whose every change fails.
    for (const file of [real, `${real}-wal`, `${real}-shm`]) {
      const problem = fileWriteProblem(file);
      if (problem !== null) {
        throw new StateStoreError(`the ${spec.noun} file ${file} ${problem}: gorb writes every change there; make it writable (chmod 600 ${file})`);
      }
    }
  }
  const copy = !create && unwritable !== null ? privateCopy(real, spec) : null;
  let db: Database;
  try {
    db = new Database(copy?.path ?? real, { create, strict: true });
  } catch (error) {
    copy?.remove();
    throw new StateStoreError(`cannot open the ${spec.noun} ${location}: ${errorMessage(error)}`);
  }
  try {
    db.run("PRAGMA busy_timeout = 0");
    db.run("PRAGMA locking_mode = EXCLUSIVE");
    // Read before anything is written: another program's database, or a newer gorb's, is left as it is.
    const schema = readSchema(db, location, spec);
    // A reader (`gorb state export`) writes nothing: an empty file is no state (printed, it would read as "no
    // services"), and the rest is left as it is. The read above holds the lock until close.
    if (!create) {
      if (schema === null) throw new StateMissingError(dir, resolve(location), "empty");
    } else {
      chmodSync(real, 0o600);
      db.run("PRAGMA journal_mode = WAL");
      db.run("PRAGMA synchronous = FULL");
      // Take the lock now: the first write in exclusive mode keeps it until close.
      db.run("BEGIN EXCLUSIVE");
      db.run("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)");
      for (const table of spec.tables) db.run(table);
      if (schema === null) db.run("INSERT INTO meta (name, value) VALUES ('schema', ?)", [String(spec.schemaVersion)]);
      db.run("COMMIT");
    }
  } catch (error) {
    db.close();
    copy?.remove();
    if (error instanceof StateStoreError) throw error;
    const text = errorMessage(error);
    const code = errorCode(error);
    if (code === "SQLITE_BUSY" || code === "SQLITE_LOCKED") {
      throw new StateStoreError(`the ${spec.noun} ${location} is in use by another process (another gorb?): ${text}`, { cause: error });
    }
    if (code === "SQLITE_NOTADB" || code === "SQLITE_CORRUPT") {
      throw new StateStoreError(`the ${spec.noun} ${location} is damaged (${text}); move it away to start empty`, { cause: error });
    }
    throw new StateStoreError(`cannot use the ${spec.noun} ${location}: ${text}`, { cause: error });
  }
  return { db, location, remove: copy === null ? null : copy.remove };
}

/**
 * The schema version of the database `db` (at `location`), or null for a new one (no tables yet). Throws
 * StateSchemaError for another program's database (tables but no gorb schema), a schema value that is not a version,
 * or a newer schema than `spec`'s.
 */
function readSchema(db: Database, location: string, spec: DatabaseSpec): number | null {
  const tables = (db.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
  if (tables.length === 0) return null;
  const row = tables.includes("meta") ? (db.query("SELECT value FROM meta WHERE name = 'schema'").get() as { value: unknown } | null) : null;
  if (row === null) {
    throw new StateSchemaError(location, "foreign", `is not a gorb ${spec.what} (it holds the tables ${tables.join(", ")} and no gorb schema)`, null, tables, spec.noun);
  }
  const value = String(row.value);
  if (!/^[1-9][0-9]{0,8}$/.test(value)) {
    throw new StateSchemaError(location, "unknown", `has schema ${JSON.stringify(value)}, not a version gorb knows`, value, tables, spec.noun);
  }
  const version = Number(value);
  if (version > spec.schemaVersion) {
    throw new StateSchemaError(location, "newer", `has schema ${value}, written by a newer gorb (this one reads ${spec.schemaVersion})`, value, tables, spec.noun);
  }
  return version;
}

/** Why this process may not create files in `dir` (a read-only mount, a directory it cannot write), or null when it may. */
function writeProblem(dir: string): string | null {
  try {
    accessSync(dir, constants.W_OK);
    return null;
  } catch (error) {
    return errorCode(error) === "EROFS" ? "is on a read-only file system" : `cannot be written to (${errorMessage(error)})`;
  }
}

/** Why gorb cannot write the existing file `file` (its errno and mode), or null when it can or there is none. */
function fileWriteProblem(file: string): string | null {
  try {
    accessSync(file, constants.W_OK);
    return null;
  } catch (error) {
    const code = errorCode(error);
    if (code === "ENOENT") return null;
    if (code === "EROFS") return "is on a read-only file system";
    let mode = "";
    try {
      mode = `, mode 0${(statSync(file).mode & 0o7777).toString(8)}`;
    } catch {
      // gone meanwhile: the errno says enough
    }
    return `cannot be written to (${code !== "" ? code : errorMessage(error)}${mode})`;
  }
}

/**
 * A private copy of the database `real` (and its write-ahead log, whose committed rows it may still hold) for a
 * reader where SQLite cannot take its lock or make its shared-memory file: a read-only mount, a snapshot. Nothing
 * else can write there, so the copy is the state; it is removed when the reader closes.
 */
function privateCopy(real: string, spec: DatabaseSpec): { readonly path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), "gorb-state-read-"));
  const remove = (): void => rmSync(dir, { recursive: true, force: true });
  try {
    const path = join(dir, spec.file);
    copyFileSync(real, path);
    if (existsSync(`${real}-wal`)) copyFileSync(`${real}-wal`, `${path}-wal`);
    return { path, remove };
  } catch (error) {
    remove();
    throw new StateStoreError(`cannot read the ${spec.noun} ${real} from its read-only directory: ${errorMessage(error)}`, { cause: error });
  }
}

/** The statements `sql` names, prepared; when one does not prepare, those already prepared are finalized. */
export function prepareAll<K extends string>(db: Database, sql: Readonly<Record<K, string>>): Record<K, Statement> {
  const prepared: Partial<Record<K, Statement>> = {};
  try {
    for (const name of Object.keys(sql) as K[]) prepared[name] = db.prepare(sql[name]);
  } catch (error) {
    // A statement left open would keep the database, and its lock, open after close().
    for (const statement of Object.values<Statement | undefined>(prepared)) statement?.finalize();
    throw error;
  }
  return prepared as Record<K, Statement>;
}
