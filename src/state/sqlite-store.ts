/**
 * The durable state of a gorb daemon in an SQLite database (bun:sqlite): one row per service and one per
 * backend, each holding the JSON of ../core/state.ts. Every commit is one transaction in WAL mode with
 * synchronous=FULL, so it is on disk (the WAL fsync'd) when commit() returns, and a crash at any moment leaves
 * either the state before the commit or the state after it, never a mix.
 *
 * The database is opened with an exclusive lock, held until close (or the process's death): a second daemon
 * pointed at the same directory fails at start-up instead of writing over the first one's state
 * (./locked-database.ts).
 */
import type { Database, Statement } from "bun:sqlite";
import {
  SavedStateError,
  decodeSavedBackend,
  decodeCreating,
  type Creating,
  decodeSavedService,
  encodeSavedBackend,
  encodeSavedService,
  type SavedBackend,
  type SavedService,
  type SavedState,
  type SetAsideRow,
  type StagedCommit,
  type StateChanges,
  type StateStore,
} from "../core/state.ts";
import { StateStoreError } from "./errors.ts";
import { type DatabaseSpec, openLockedDatabase, prepareAll } from "./locked-database.ts";
import { errorMessage } from "../core/errors.ts";

/** The schema this code writes; a database with a newer one is refused. */
export const SCHEMA_VERSION = 1;

/** state.db in the state directory, and its tables. */
const STATE_DATABASE: DatabaseSpec = {
  file: "state.db",
  noun: "state database",
  what: "state",
  schemaVersion: SCHEMA_VERSION,
  tables: [
    "CREATE TABLE IF NOT EXISTS services (id TEXT PRIMARY KEY, data TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS backends (service TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (service, id))",
    // Services being created in IPVS, recorded before the kernel write (intend()); empty but for a crash.
    "CREATE TABLE IF NOT EXISTS creating (key TEXT PRIMARY KEY, vip INTEGER NOT NULL DEFAULT 0)",
    // Rows restore could not read (setAside()), kept verbatim and never read back; an older gorb ignores the table.
    "CREATE TABLE IF NOT EXISTS set_aside (service TEXT NOT NULL, backend TEXT, data TEXT NOT NULL, why TEXT NOT NULL, at TEXT NOT NULL)",
  ],
};

/** Rows written in one piece; a commit of more is written in slices of this many (see #commitSliced). */
const SLICE_ROWS = 500;

/** Writing one row (its statements prepared once). */
interface RowWriters {
  deleteService(id: string): void;
  putService(service: SavedService): void;
  deleteBackend(b: { readonly service: string; readonly id: string }): void;
  putBackend(b: SavedBackend): void;
}

/** Writes the rows of `changes` in the order a commit writes them (services deleted first), yielding after each. */
function* writeRows(w: RowWriters, changes: StateChanges): Generator<void> {
  for (const id of changes.deleteServices) yield w.deleteService(id);
  for (const service of changes.putServices) yield w.putService(service);
  for (const b of changes.deleteBackends) yield w.deleteBackend(b);
  for (const b of changes.putBackends) yield w.putBackend(b);
}

/** The JSON of a row (`what` names it); SavedStateError naming the row when it is not JSON (the database was edited). */
function parseRow(data: string, what: string): unknown {
  try {
    return JSON.parse(data) as unknown;
  } catch (error) {
    throw new SavedStateError(`${what}: its data is not JSON (${errorMessage(error)})`);
  }
}

/** SqliteStateStore keeps gorb's state in `<dir>/state.db`. */
export class SqliteStateStore implements StateStore {
  readonly location: string;
  readonly #db: Database;
  /** Removes the private copy a reader of read-only media opened (privateCopy); null otherwise. */
  readonly #onClose: (() => void) | null;
  readonly #commit: (changes: StateChanges) => void;
  /** The prepared statements, finalized on close (an open statement would keep the database, and its lock, open). */
  readonly #statements: { finalize(): void }[];
  #insertCreating: Statement | null = null;
  #deleteCreating: Statement | null = null;
  readonly #rowWriters: RowWriters;
  /** The sliced commit in progress; every commit meanwhile waits for it (it holds the one open transaction). */
  #sliced: Promise<void> | null = null;
  /** True while the table `creating` holds rows (intend()): the next commit clears it in its transaction. */
  #intended = false;

  private constructor(location: string, db: Database, onClose: (() => void) | null = null) {
    this.location = location;
    this.#db = db;
    this.#onClose = onClose;
    // Statements and the transaction are prepared once: a commit per request is the hot path of every PUT.
    const { deleteService, deleteServiceBackends, putService, deleteBackend, putBackend } = prepareAll(db, {
      deleteService: "DELETE FROM services WHERE id = ?",
      deleteServiceBackends: "DELETE FROM backends WHERE service = ?",
      putService: "INSERT INTO services (id, data) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data",
      deleteBackend: "DELETE FROM backends WHERE service = ? AND id = ?",
      putBackend:
        "INSERT INTO backends (service, id, data) VALUES (?, ?, ?) ON CONFLICT (service, id) DO UPDATE SET data = excluded.data",
    });
    this.#statements = [deleteService, deleteServiceBackends, putService, deleteBackend, putBackend];
    const w: RowWriters = {
      deleteService: (id) => {
        deleteService.run(id);
        deleteServiceBackends.run(id);
      },
      putService: (service) => putService.run(service.id, JSON.stringify(encodeSavedService(service))),
      deleteBackend: (b) => deleteBackend.run(b.service, b.id),
      putBackend: (b) => putBackend.run(b.service, b.id, JSON.stringify(encodeSavedBackend(b))),
    };
    this.#rowWriters = w;
    const many = db.transaction((changes: StateChanges, clearIntents: boolean) => {
      if (clearIntents) this.#clearCreating();
      for (const _ of writeRows(w, changes));
    });
    // One row written (a request's PUT or PATCH, the hot path) is one statement, atomic and durable on its own in
    // autocommit mode: the same WAL append and fsync without a BEGIN and a COMMIT to run.
    this.#commit = (changes) => {
      const { putServices, putBackends, deleteServices, deleteBackends } = changes;
      if (this.#intended) {
        many(changes, true);
        this.#intended = false;
      } else if (deleteServices.length + deleteBackends.length > 0 || putServices.length + putBackends.length !== 1) many(changes, false);
      else if (putServices[0] !== undefined) w.putService(putServices[0]);
      else if (putBackends[0] !== undefined) w.putBackend(putBackends[0]);
    };
  }

  /**
   * Open (creating the directory, mode 0700, and the database when missing) and lock the state in `dir`.
   * With `create: false` (a reader such as `gorb state export`) nothing is created or written: a missing directory
   * or database, or an empty one, throws StateMissingError. Throws StateStoreError when the directory cannot be
   * created, the database cannot be read, it was written by a newer gorb, or another process holds it.
   */
  static open(dir: string, options: { readonly create?: boolean } = {}): SqliteStateStore {
    const { db, location, remove } = openLockedDatabase(dir, STATE_DATABASE, options.create ?? true);
    try {
      return new SqliteStateStore(location, db, remove);
    } catch (error) {
      // Its tables are not the ones gorb made (a statement does not prepare): the database was edited.
      db.close();
      remove?.();
      throw new StateStoreError(`the state database ${location} is damaged (${errorMessage(error)}); move it away to start empty`, { cause: error });
    }
  }

  /** Everything saved. Throws StateStoreError naming a row that cannot be read (the database was edited?). */
  load(): SavedState {
    const services: SavedService[] = [];
    const backends: SavedBackend[] = [];
    const creating: Creating[] = [];
    try {
      for (const row of this.#db.query("SELECT id, data FROM services ORDER BY rowid").all() as { id: string; data: string }[]) {
        services.push(decodeSavedService(row.id, parseRow(row.data, `service ${JSON.stringify(row.id)}`)));
      }
      const rows = this.#db.query("SELECT service, id, data FROM backends ORDER BY rowid").all() as {
        service: string;
        id: string;
        data: string;
      }[];
      for (const row of rows) {
        const what = `backend ${JSON.stringify(row.id)} of service ${JSON.stringify(row.service)}`;
        backends.push(decodeSavedBackend(row.service, row.id, parseRow(row.data, what)));
      }
      // A database of an earlier gorb opened only to read (state export) may not have the table.
      if (this.#db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'creating'").get() !== null) {
        for (const row of this.#db.query("SELECT key, vip FROM creating ORDER BY rowid").all() as { key: string; vip: number }[]) {
          creating.push(decodeCreating(parseRow(row.key, `service being created ${JSON.stringify(row.key)}`), row.vip));
        }
      }
    } catch (error) {
      const what = error instanceof SavedStateError ? error.message : `unreadable row: ${errorMessage(error)}`;
      throw new StateStoreError(`the state database ${this.location} is damaged (${what}); move it away to start empty`);
    }
    this.#intended = creating.length > 0;
    return creating.length > 0 ? { services, backends, creating } : { services, backends };
  }

  /**
   * Record the services about to be created in IPVS (see StateStore.intend), durably, with any recorded since the
   * last commit (the changes of one group are committed together); [] clears the record (no write when it is empty
   * already). Waits for a sliced or staged commit in progress, as a commit does.
   */
  intend(entries: readonly Creating[]): void | Promise<void> {
    if (entries.length === 0 && !this.#intended) return;
    if (this.#sliced !== null) return this.#queued(() => this.intend(entries));
    const db = this.#db;
    // Prepared at the first use (a reader's database of an earlier gorb may not have the table), then kept: every
    // PUT that creates a service records one.
    const insert = (this.#insertCreating ??= db.prepare("INSERT OR IGNORE INTO creating (key, vip) VALUES (?, ?)"));
    db.transaction(() => {
      if (entries.length === 0) this.#clearCreating();
      for (const entry of entries) insert.run(JSON.stringify(entry.key), entry.vip ? 1 : 0);
    })();
    this.#intended = entries.length > 0;
  }

  /**
   * Move rows restore could not read into the table set_aside (see StateStore.setAside), in one durable
   * transaction, after any commit in progress.
   */
  setAside(rows: readonly SetAsideRow[]): void | Promise<void> {
    if (rows.length === 0) return;
    const move = () => {
      const db = this.#db;
      const at = new Date().toISOString();
      const keep = db.prepare("INSERT INTO set_aside (service, backend, data, why, at) VALUES (?, ?, ?, ?, ?)");
      try {
        db.transaction(() => {
          for (const row of rows) {
            if (row.backend === null) {
              const service = db.query("SELECT data FROM services WHERE id = ?").get(row.service) as { data: string } | null;
              if (service !== null) keep.run(row.service, null, service.data, row.why, at);
              const backends = db.query("SELECT id, data FROM backends WHERE service = ? ORDER BY rowid").all(row.service) as { id: string; data: string }[];
              for (const b of backends) keep.run(row.service, b.id, b.data, `its service was set aside: ${row.why}`, at);
              this.#rowWriters.deleteService(row.service);
            } else {
              const backend = db.query("SELECT data FROM backends WHERE service = ? AND id = ?").get(row.service, row.backend) as { data: string } | null;
              if (backend === null) continue;
              keep.run(row.service, row.backend, backend.data, row.why, at);
              this.#rowWriters.deleteBackend({ service: row.service, id: row.backend });
            }
          }
        })();
      } finally {
        keep.finalize();
      }
    };
    if (this.#sliced === null) return move();
    return this.#queued(move);
  }

  /** The rows set aside so far (setAside), oldest first. */
  setAsideRows(): { readonly service: string; readonly backend: string | null; readonly why: string; readonly at: string }[] {
    if (this.#db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'set_aside'").get() === null) return [];
    return this.#db.query("SELECT service, backend, why, at FROM set_aside ORDER BY rowid").all() as {
      service: string;
      backend: string | null;
      why: string;
      at: string;
    }[];
  }

  /**
   * Apply one mutation's changes in one durable transaction. Up to SLICE_ROWS rows, in the call; more, as one
   * transaction written in slices with a turn of the event loop between them (the returned promise settles once it
   * is committed, or rolled back whole). A commit made while a sliced one runs waits for it.
   */
  commit(changes: StateChanges): void | Promise<void> {
    const rows = changes.putServices.length + changes.deleteServices.length + changes.putBackends.length + changes.deleteBackends.length;
    if (this.#sliced === null && rows <= SLICE_ROWS) {
      this.#commit(changes);
      return;
    }
    return this.#queued(() => (rows <= SLICE_ROWS ? this.#commit(changes) : this.#commitSliced(changes)));
  }

  /**
   * `work` once the sliced or staged commit in progress is over; commits made meanwhile wait for it in turn, and
   * also for `held` when given (a staged commit's end). Returns what `work` returns.
   */
  #queued<T>(work: () => T | Promise<T>, held?: Promise<void>): Promise<T> {
    const run = (this.#sliced ?? Promise.resolve()).then(work);
    // Released as soon as the work is over (the caller's next commit then runs in its call), or once `held` is.
    const settled: Promise<void> = run.then(
      held === undefined ? () => this.#release(settled) : () => held.then(() => this.#release(settled)),
      () => this.#release(settled),
    );
    this.#sliced = settled;
    return run;
  }

  #release(done: Promise<void>): void {
    if (this.#sliced === done) this.#sliced = null;
  }

  /**
   * One transaction of many rows: BEGIN, the rows SLICE_ROWS at a time with a turn of the event loop in between
   * (requests and health checks are answered meanwhile; nothing else writes: every commit waits for this one),
   * then COMMIT, fsync'd as any other. Any failure rolls the whole transaction back. A crash before COMMIT leaves
   * the state before it (the WAL holds no commit record for it).
   */
  async #commitSliced(changes: StateChanges): Promise<void> {
    await this.#writeSliced(changes);
    this.#commitOpen();
  }

  /** BEGIN and the rows, in slices; on a failure the transaction is rolled back and the error thrown. */
  async #writeSliced(changes: StateChanges): Promise<void> {
    const db = this.#db;
    db.run("BEGIN IMMEDIATE");
    try {
      if (this.#intended) db.run("DELETE FROM creating");
      let written = 0;
      for (const _ of writeRows(this.#rowWriters, changes)) {
        if (++written % SLICE_ROWS === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } catch (error) {
      this.#rollback();
      throw error;
    }
  }

  /** COMMIT the open transaction; when that fails it is rolled back, and the error thrown. */
  #commitOpen(): void {
    try {
      this.#db.run("COMMIT");
      this.#intended = false;
    } catch (error) {
      this.#rollback();
      throw error;
    }
  }

  #rollback(): void {
    try {
      if (this.#db.inTransaction) this.#db.run("ROLLBACK");
    } catch {
      // Closed meanwhile (shutdown): SQLite rolled the transaction back itself.
    }
  }

  /**
   * The rows written in one transaction, in slices as a sliced commit writes them, and left open: COMMIT when the
   * staged commit is committed, ROLLBACK when it is aborted. Every other commit waits until then.
   */
  stage(changes: StateChanges): Promise<StagedCommit> {
    let over = (): void => {};
    const ended = new Promise<void>((resolve) => {
      over = resolve;
    });
    const written = this.#queued(() => this.#writeSliced(changes), ended);
    let done = false;
    const finish = async (statement: "COMMIT" | "ROLLBACK"): Promise<void> => {
      if (done) throw new Error("this staged commit was already committed or aborted");
      done = true;
      try {
        if (statement === "COMMIT") this.#commitOpen();
        else this.#rollback();
      } finally {
        over();
      }
    };
    return written.then(() => ({ commit: () => finish("COMMIT"), abort: () => finish("ROLLBACK") }));
  }

  /**
   * A durable write that changes nothing gorb reads (the time of the probe in `meta`): gorb calls it after a
   * failed commit to learn when the disk takes writes again. Throws while it cannot write.
   */
  probe(): void | Promise<void> {
    if (this.#sliced !== null) return this.#sliced.then(() => this.probe());
    const db = this.#db;
    db.transaction(() => {
      db.run("INSERT INTO meta (name, value) VALUES ('probe', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value", [
        new Date().toISOString(),
      ]);
    })();
  }

  /** Empty the record of services being created (prepared at the first use, as the insert). */
  #clearCreating(): void {
    (this.#deleteCreating ??= this.#db.prepare("DELETE FROM creating")).run();
  }

  /** Release the database and its lock. */
  close(): void {
    for (const statement of this.#statements) statement.finalize();
    this.#insertCreating?.finalize();
    this.#deleteCreating?.finalize();
    this.#db.close();
    this.#onClose?.();
  }
}
