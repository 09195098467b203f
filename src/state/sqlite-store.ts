/**
 * The durable state of a gorb daemon in an SQLite database (bun:sqlite): one row per service and one per
 * backend, each holding the JSON of ../core/state.ts. Every commit is one transaction in WAL mode with
 * synchronous=FULL, so it is on disk (the WAL fsync'd) when commit() returns, and a crash at any moment leaves
 * either the state before the commit or the state after it, never a mix.
 *
 * The database is opened with an exclusive lock, held until close (or the process's death): a second daemon
 * pointed at the same directory fails at start-up instead of writing over the first one's state.
 */
import { Database } from "bun:sqlite";
import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import {
  SavedStateError,
  decodeSavedBackend,
  decodeSavedService,
  encodeSavedBackend,
  encodeSavedService,
  type SavedBackend,
  type SavedService,
  type SavedState,
  type StateChanges,
  type StateStore,
} from "../core/state.ts";

/** File name of the database inside the state directory. */
const STATE_FILE = "state.db";
/** The schema this code writes; a database with a newer one is refused. */
export const SCHEMA_VERSION = 1;

/** StateStoreError reports a state directory or database gorb cannot use; the message says what to do. */
export class StateStoreError extends Error {
  override readonly name = "StateStoreError";
}

function why(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** SqliteStateStore keeps gorb's state in `<dir>/state.db`. */
export class SqliteStateStore implements StateStore {
  readonly location: string;
  readonly #db: Database;
  readonly #commit: (changes: StateChanges) => void;
  /** The prepared statements, finalized on close (an open statement would keep the database, and its lock, open). */
  readonly #statements: { finalize(): void }[];

  private constructor(location: string, db: Database) {
    this.location = location;
    this.#db = db;
    // Statements and the transaction are prepared once: a commit per request is the hot path of every PUT.
    const deleteService = db.prepare("DELETE FROM services WHERE id = ?");
    const deleteServiceBackends = db.prepare("DELETE FROM backends WHERE service = ?");
    const putService = db.prepare(
      "INSERT INTO services (id, data) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data",
    );
    const deleteBackend = db.prepare("DELETE FROM backends WHERE service = ? AND id = ?");
    const putBackend = db.prepare(
      "INSERT INTO backends (service, id, data) VALUES (?, ?, ?) ON CONFLICT (service, id) DO UPDATE SET data = excluded.data",
    );
    this.#statements = [deleteService, deleteServiceBackends, putService, deleteBackend, putBackend];
    const many = db.transaction((changes: StateChanges) => {
      for (const id of changes.deleteServices) {
        deleteService.run(id);
        deleteServiceBackends.run(id);
      }
      for (const service of changes.putServices) putService.run(service.id, JSON.stringify(encodeSavedService(service)));
      for (const b of changes.deleteBackends) deleteBackend.run(b.service, b.id);
      for (const b of changes.putBackends) putBackend.run(b.service, b.id, JSON.stringify(encodeSavedBackend(b)));
    });
    // One row written (a request's PUT or PATCH, the hot path) is one statement, atomic and durable on its own in
    // autocommit mode: the same WAL append and fsync without a BEGIN and a COMMIT to run.
    this.#commit = (changes) => {
      const { putServices, putBackends, deleteServices, deleteBackends } = changes;
      if (deleteServices.length + deleteBackends.length > 0 || putServices.length + putBackends.length !== 1) many(changes);
      else if (putServices[0] !== undefined) putService.run(putServices[0].id, JSON.stringify(encodeSavedService(putServices[0])));
      else if (putBackends[0] !== undefined) {
        const b = putBackends[0];
        putBackend.run(b.service, b.id, JSON.stringify(encodeSavedBackend(b)));
      }
    };
  }

  /**
   * Open (creating the directory, mode 0700, and the database when missing) and lock the state in `dir`.
   * Throws StateStoreError when the directory cannot be created, the database cannot be read, it was written
   * by a newer gorb, or another process holds it.
   */
  static open(dir: string): SqliteStateStore {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new StateStoreError(`cannot create the state directory ${dir}: ${why(error)}`);
    }
    const location = join(dir, STATE_FILE);
    let db: Database;
    try {
      db = new Database(location, { create: true, strict: true });
    } catch (error) {
      throw new StateStoreError(`cannot open the state database ${location}: ${why(error)}`);
    }
    try {
      chmodSync(location, 0o600);
      db.run("PRAGMA busy_timeout = 0");
      db.run("PRAGMA locking_mode = EXCLUSIVE");
      db.run("PRAGMA journal_mode = WAL");
      db.run("PRAGMA synchronous = FULL");
      // Take the lock now: the first write in exclusive mode keeps it until close.
      db.run("BEGIN EXCLUSIVE");
      db.run("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)");
      db.run("CREATE TABLE IF NOT EXISTS services (id TEXT PRIMARY KEY, data TEXT NOT NULL)");
      db.run(
        "CREATE TABLE IF NOT EXISTS backends (service TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (service, id))",
      );
      const row = db.query("SELECT value FROM meta WHERE name = 'schema'").get() as { value: string } | null;
      if (row === null) {
        db.run("INSERT INTO meta (name, value) VALUES ('schema', ?)", [String(SCHEMA_VERSION)]);
      } else if (Number(row.value) > SCHEMA_VERSION) {
        throw new StateStoreError(
          `the state database ${location} has schema ${row.value}, written by a newer gorb (this one reads ${SCHEMA_VERSION})`,
        );
      }
      db.run("COMMIT");
    } catch (error) {
      db.close();
      if (error instanceof StateStoreError) throw error;
      const text = why(error);
      if (/locked|busy/i.test(text)) {
        throw new StateStoreError(`the state database ${location} is in use by another process (another gorb?): ${text}`);
      }
      throw new StateStoreError(`cannot use the state database ${location}: ${text}`);
    }
    return new SqliteStateStore(location, db);
  }

  /** Everything saved. Throws StateStoreError naming a row that cannot be read (the database was edited?). */
  load(): SavedState {
    const services: SavedService[] = [];
    const backends: SavedBackend[] = [];
    try {
      for (const row of this.#db.query("SELECT id, data FROM services ORDER BY rowid").all() as { id: string; data: string }[]) {
        services.push(decodeSavedService(row.id, JSON.parse(row.data) as unknown));
      }
      const rows = this.#db.query("SELECT service, id, data FROM backends ORDER BY rowid").all() as {
        service: string;
        id: string;
        data: string;
      }[];
      for (const row of rows) backends.push(decodeSavedBackend(row.service, row.id, JSON.parse(row.data) as unknown));
    } catch (error) {
      const what = error instanceof SavedStateError ? error.message : `unreadable row: ${why(error)}`;
      throw new StateStoreError(`the state database ${this.location} is damaged (${what}); move it away to start empty`);
    }
    return { services, backends };
  }

  /** Apply one mutation's changes in one durable transaction. */
  commit(changes: StateChanges): void {
    this.#commit(changes);
  }

  /**
   * A durable write that changes nothing gorb reads (the time of the probe in `meta`): gorb calls it after a
   * failed commit to learn when the disk takes writes again. Throws while it cannot write.
   */
  probe(): void {
    const db = this.#db;
    db.transaction(() => {
      db.run("INSERT INTO meta (name, value) VALUES ('probe', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value", [
        new Date().toISOString(),
      ]);
    })();
  }

  /** Release the database and its lock. */
  close(): void {
    for (const statement of this.#statements) statement.finalize();
    this.#db.close();
  }
}
