/**
 * The fleet ledger's file (src/state/ledger-store.ts), opened as state.db is (src/state/locked-database.ts): a
 * database gorb will not use there is refused naming it as the fleet ledger, not as the state database.
 */
import { Database } from "bun:sqlite";
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StateSchemaError } from "../../../src/state/errors.ts";
import { SqliteLedgerStore } from "../../../src/state/ledger-store.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A state directory whose fleet-ledger.db `statements` made. */
function made(statements: readonly string[]): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), "gorb-ledger-store-"));
  dirs.push(dir);
  const file = join(dir, "fleet-ledger.db");
  const db = new Database(file);
  for (const statement of statements) db.run(statement);
  db.close();
  return { dir, file };
}

function schemaError(dir: string): StateSchemaError {
  try {
    SqliteLedgerStore.open(dir, "/gorb").close();
  } catch (error) {
    if (error instanceof StateSchemaError) return error;
    throw error;
  }
  throw new Error(`${dir} was opened`);
}

test("another program's database, or a newer gorb's, in place of the fleet ledger is refused naming the fleet ledger; the file is left as it was", () => {
  const foreign = made(["CREATE TABLE users (name TEXT)"]);
  const bytes = readFileSync(foreign.file);
  expect(schemaError(foreign.dir)).toMatchObject({ kind: "foreign", location: foreign.file, tables: ["users"] });
  expect(schemaError(foreign.dir).message).toBe(
    `the fleet ledger ${foreign.file} is not a gorb fleet ledger (it holds the tables users and no gorb schema); it was left as it is`,
  );
  expect(readFileSync(foreign.file).equals(bytes)).toBe(true);

  const newer = made(["CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)", "INSERT INTO meta VALUES ('schema', '2')"]);
  expect(schemaError(newer.dir).message).toBe(`the fleet ledger ${newer.file} has schema 2, written by a newer gorb (this one reads 1); it was left as it is`);
});
