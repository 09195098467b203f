/** The errors of the SQLite state store (./sqlite-store.ts) and of the checks of its path (./state-path.ts). */

/** StateStoreError reports a state directory or database gorb cannot use; the message says what to do. */
export class StateStoreError extends Error {
  override readonly name: string = "StateStoreError";
}

/** What to do when a state directory cannot be made, by the errno of its mkdir. */
const CREATE_ADVICE: Readonly<Record<string, string>> = {
  EACCES: "permission denied (EACCES): run gorb serve as root, or choose a --state-dir it may write (--no-state keeps nothing)",
  EPERM: "operation not permitted (EPERM): run gorb serve as root, or choose a --state-dir it may write (--no-state keeps nothing)",
  EROFS: "read-only file system (EROFS): choose another --state-dir (--no-state keeps nothing)",
  ENOSPC: "no space left on the device (ENOSPC): free some, or choose another --state-dir (--no-state keeps nothing)",
};

/** StateDirCreateError: the directory `path` on the way to the state could not be made; `code` is the errno name. */
export class StateDirCreateError extends StateStoreError {
  override readonly name = "StateDirCreateError";
  readonly path: string;
  readonly code: string;

  constructor(path: string, code: string, cause: unknown) {
    const problem = CREATE_ADVICE[code] ?? (cause instanceof Error ? cause.message : String(cause));
    super(`cannot create the state directory ${path}: ${problem}`, { cause });
    this.path = path;
    this.code = code;
  }
}

/**
 * StateMissingError: SqliteStateStore.open(dir, { create: false }) found no state database in `dir`: the
 * directory or its state.db does not exist ("missing"), or state.db holds no tables ("empty": an empty file). Nothing
 * was created or written.
 */
export class StateMissingError extends StateStoreError {
  override readonly name = "StateMissingError";
  /** The state directory asked for, as given. */
  readonly dir: string;
  /** The database file, as an absolute path ("/var/lib/gorb/state.db"). */
  readonly location: string;
  readonly reason: "missing" | "empty";

  constructor(dir: string, location: string, reason: "missing" | "empty" = "missing") {
    super(`no gorb state in ${dir} (${location} ${reason === "missing" ? "does not exist" : "holds no tables"})`);
    this.dir = dir;
    this.location = location;
    this.reason = reason;
  }
}

/**
 * What makes a path on the way to the state unsafe for gorb to write through:
 *   "owner"          owned by a user other than root and gorb's own (that user could swap what gorb writes)
 *   "writable"       a directory group or others may write to (without the sticky bit, or the state directory)
 *   "not-directory"  a component of the state directory's path that is neither a directory nor a link to one
 *   "link"           state.db (or its -wal, -shm, -journal) is a symbolic link or not a regular file
 *   "loop"           too many symbolic links on the way
 */
export type UnsafePathKind = "owner" | "writable" | "not-directory" | "link" | "loop";

/** UnsafeStatePathError: the state is refused because of `path`; `kind` says why, `uid` and `mode` are its own. */
export class UnsafeStatePathError extends StateStoreError {
  override readonly name = "UnsafeStatePathError";
  readonly path: string;
  readonly kind: UnsafePathKind;
  readonly uid: number | null;
  readonly mode: number | null;

  constructor(path: string, kind: UnsafePathKind, problem: string, stat: { readonly uid: number; readonly mode: number } | null) {
    super(`the state's path is not safe to write through: ${path}: ${problem}`);
    this.path = path;
    this.kind = kind;
    this.uid = stat?.uid ?? null;
    this.mode = stat === null ? null : stat.mode & 0o7777;
  }
}

/**
 * What a database gorb will not use as its state holds:
 *   "foreign"  tables but no gorb schema: another program's database (`tables` names them)
 *   "unknown"  a schema value that is not a version number (`schema`)
 *   "newer"    a schema newer than this gorb reads (`schema`)
 */
export type StateSchemaKind = "foreign" | "unknown" | "newer";

/**
 * StateSchemaError: the database at `location` is not one gorb can use (see StateSchemaKind); it was left as it was.
 * `noun` says which of gorb's databases it is in place of ("state database", "fleet ledger").
 */
export class StateSchemaError extends StateStoreError {
  override readonly name = "StateSchemaError";
  readonly location: string;
  readonly kind: StateSchemaKind;
  /** The schema value it holds, when it has one. */
  readonly schema: string | null;
  /** Its tables. */
  readonly tables: readonly string[];

  constructor(location: string, kind: StateSchemaKind, problem: string, schema: string | null, tables: readonly string[], noun = "state database") {
    super(`the ${noun} ${location} ${problem}; it was left as it is`);
    this.location = location;
    this.kind = kind;
    this.schema = schema;
    this.tables = tables;
  }
}
