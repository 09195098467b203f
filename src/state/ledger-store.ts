/**
 * A fleet node's kernel ledger on disk (../core/kernel-ledger.ts): `fleet-ledger.db` in its state directory, an
 * SQLite database opened, checked and locked as state.db is (./locked-database.ts): WAL with synchronous=FULL,
 * so each record() or forget() is one transaction on disk when it returns.
 *
 * Entries belong to a scope, the shared state's prefix in etcd: a node pointed at another prefix neither reads
 * nor removes what it created for the first one (those objects are then unknown to it, as before the ledger).
 */
import type { Database, Statement } from "bun:sqlite";
import type { LedgerEntries, LedgerStore } from "../core/kernel-ledger.ts";
import type { StateOrigin } from "../core/state.ts";
import { StateStoreError } from "./errors.ts";
import { type DatabaseSpec, openLockedDatabase, prepareAll } from "./locked-database.ts";
import { errorMessage } from "../core/errors.ts";

const LEDGER_DATABASE: DatabaseSpec = {
  file: "fleet-ledger.db",
  noun: "fleet ledger",
  what: "fleet ledger",
  schemaVersion: 1,
  tables: [
    "CREATE TABLE IF NOT EXISTS services (scope TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (scope, key))",
    "CREATE TABLE IF NOT EXISTS destinations (scope TEXT NOT NULL, service TEXT NOT NULL, destination TEXT NOT NULL, PRIMARY KEY (scope, service, destination))",
    "CREATE TABLE IF NOT EXISTS vips (scope TEXT NOT NULL, address TEXT NOT NULL, PRIMARY KEY (scope, address))",
    // The shared state the entries were written following: its etcd cluster, and the revision of the last restore.
    "CREATE TABLE IF NOT EXISTS origin (scope TEXT PRIMARY KEY, cluster_id TEXT NOT NULL, revision INTEGER NOT NULL)",
  ],
};

/** See the module comment. */
export class SqliteLedgerStore implements LedgerStore {
  readonly location: string;
  readonly #db: Database;
  readonly #scope: string;
  readonly #statements: Record<"putService" | "putDestination" | "putVip" | "dropService" | "dropServiceDestinations" | "dropDestination" | "dropVip" | "putOrigin", Statement>;
  readonly #record: (entries: LedgerEntries) => void;
  readonly #forget: (entries: LedgerEntries) => void;

  private constructor(location: string, db: Database, scope: string) {
    this.location = location;
    this.#db = db;
    this.#scope = scope;
    const s = (this.#statements = prepareAll(db, {
      putService: "INSERT OR IGNORE INTO services (scope, key) VALUES (?, ?)",
      putDestination: "INSERT OR IGNORE INTO destinations (scope, service, destination) VALUES (?, ?, ?)",
      putVip: "INSERT OR IGNORE INTO vips (scope, address) VALUES (?, ?)",
      dropService: "DELETE FROM services WHERE scope = ? AND key = ?",
      dropServiceDestinations: "DELETE FROM destinations WHERE scope = ? AND service = ?",
      dropDestination: "DELETE FROM destinations WHERE scope = ? AND service = ? AND destination = ?",
      dropVip: "DELETE FROM vips WHERE scope = ? AND address = ?",
      putOrigin: "INSERT INTO origin (scope, cluster_id, revision) VALUES (?, ?, ?) ON CONFLICT (scope) DO UPDATE SET cluster_id = excluded.cluster_id, revision = excluded.revision",
    }));
    this.#record = db.transaction((entries: LedgerEntries) => {
      for (const id of entries.services) s.putService.run(scope, id);
      for (const d of entries.destinations) s.putDestination.run(scope, d.service, d.destination);
      for (const address of entries.vips) s.putVip.run(scope, address);
    });
    this.#forget = db.transaction((entries: LedgerEntries) => {
      for (const id of entries.services) {
        s.dropService.run(scope, id);
        s.dropServiceDestinations.run(scope, id);
      }
      for (const d of entries.destinations) s.dropDestination.run(scope, d.service, d.destination);
      for (const address of entries.vips) s.dropVip.run(scope, address);
    });
  }

  /**
   * Open (creating the directory, mode 0700, and the database when missing) and lock the ledger in `dir`, for the
   * entries of `scope`. Throws StateStoreError as SqliteStateStore.open does.
   */
  static open(dir: string, scope: string): SqliteLedgerStore {
    const { db, location } = openLockedDatabase(dir, LEDGER_DATABASE, true);
    try {
      return new SqliteLedgerStore(location, db, scope);
    } catch (error) {
      db.close();
      throw new StateStoreError(`the fleet ledger ${location} is damaged (${errorMessage(error)}); move it away to start empty`, { cause: error });
    }
  }

  load(): LedgerEntries {
    const db = this.#db;
    const scope = this.#scope;
    return {
      services: (db.query("SELECT key FROM services WHERE scope = ? ORDER BY rowid").all(scope) as { key: string }[]).map((r) => r.key),
      destinations: db.query("SELECT service, destination FROM destinations WHERE scope = ? ORDER BY rowid").all(scope) as {
        service: string;
        destination: string;
      }[],
      vips: (db.query("SELECT address FROM vips WHERE scope = ? ORDER BY rowid").all(scope) as { address: string }[]).map((r) => r.address),
    };
  }

  origin(): StateOrigin | null {
    const row = this.#db.query("SELECT cluster_id, revision FROM origin WHERE scope = ?").get(this.#scope) as { cluster_id: string; revision: number } | null;
    return row === null ? null : { clusterId: row.cluster_id, revision: row.revision };
  }

  setOrigin(origin: StateOrigin): void {
    this.#statements.putOrigin.run(this.#scope, origin.clusterId, origin.revision);
  }

  record(entries: LedgerEntries): void {
    this.#record(entries);
  }

  forget(entries: LedgerEntries): void {
    this.#forget(entries);
  }

  /** Release the database and its lock. */
  close(): void {
    for (const statement of Object.values(this.#statements)) statement.finalize();
    this.#db.close();
  }
}
