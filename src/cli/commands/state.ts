/**
 * `gorb state export`: print the saved desired state as a declarative document (JSON, the format of
 * `gorb apply -f`), read from a node's SQLite state (--state-dir, while its daemon is stopped: the database is
 * locked by the daemon that uses it) or from the shared state in etcd (--store etcd://...). Moving a host to
 * the shared state: stop gorb, `gorb state export > services.json`, start it with --store, `gorb apply -f
 * services.json`.
 */
import { defineCommand } from "citty";
import { withExamples } from "../_command.ts";
import { stringArg } from "../_shared.ts";
import { cliContext } from "../context.ts";
import { CliError, EXIT, UsageError } from "../errors.ts";
import { jsonText } from "../../render/format.ts";
import { DEFAULT_STATE_DIR, DaemonOptionError, parseDaemonOptions } from "../../config/daemon-options.ts";
import type { SavedState } from "../../core/state.ts";

/** The etcd flags, as `gorb serve` takes them. */
interface EtcdFlags {
  readonly etcdCa: string | undefined;
  readonly etcdCert: string | undefined;
  readonly etcdKey: string | undefined;
  readonly etcdUser: string | undefined;
  readonly etcdPasswordFile: string | undefined;
}

/**
 * The saved state, and a note for stderr when some of it is not in the document: rows a restore could not read
 * and set aside (SQLite's table set_aside).
 */
async function readState(stateDir: string | undefined, store: string | undefined, etcd: EtcdFlags): Promise<{ state: SavedState; note: string | null }> {
  if (store !== undefined || Object.values(etcd).some((v) => v !== undefined)) {
    // One source: a --state-dir beside --store was ignored without a word (an export of the other state).
    if (stateDir !== undefined) throw new UsageError("--state-dir and --store are two sources: give one", "gorb state export");
    let shared;
    try {
      shared = parseDaemonOptions({ store, ...etcd }).sharedStore;
    } catch (error) {
      if (error instanceof DaemonOptionError) throw new UsageError(error.message, "gorb state export");
      throw error;
    }
    if (shared === null) throw new UsageError("--store: expected etcd://HOST:PORT[,HOST:PORT...]/PREFIX", "gorb state export");
    const { checkEtcdFiles, SecretFileError } = await import("../../daemon/secrets.ts");
    try {
      checkEtcdFiles(shared);
    } catch (error) {
      if (error instanceof SecretFileError) throw new UsageError(error.message, "gorb state export");
      throw error;
    }
    const { openSharedStore } = await import("../../daemon/shared-store.ts");
    let loaded;
    try {
      loaded = await openSharedStore(shared).load();
    } catch (error) {
      throw new CliError(EXIT.UNREACHABLE, `cannot read the shared state from ${store}: ${error instanceof Error ? error.message : String(error)}`, {
        cause: error,
      });
    }
    // A document without them would make `gorb apply -f` delete what those keys hold: refuse it whole.
    if (loaded.skipped.length > 0) {
      const keys = loaded.skipped.map((k) => `${k.key} (revision ${k.revision}): ${k.why}`).join("; ");
      throw new CliError(EXIT.SERVER, `gorb state export: ${loaded.skipped.length} key(s) of ${store} cannot be read: ${keys}; nothing printed`);
    }
    return { state: loaded.state, note: null };
  }
  const { SqliteStateStore } = await import("../../state/sqlite-store.ts");
  const { StateMissingError, StateStoreError } = await import("../../state/errors.ts");
  try {
    // Reading must not create: a mistyped --state-dir would export an empty set, which `gorb apply -f` takes as
    // "delete every file-owned service".
    const sqlite = SqliteStateStore.open(stateDir ?? DEFAULT_STATE_DIR, { create: false });
    try {
      const state = sqlite.load();
      const aside = sqlite.setAsideRows();
      if (aside.length === 0) return { state, note: null };
      const rows = aside.map((r) => `${r.backend === null ? `service ${r.service}` : `backend ${r.service}/${r.backend}`} (${r.at}: ${r.why})`);
      return {
        state,
        note:
          `gorb state export: ${aside.length} row(s) a restore could not read were set aside and are not in this document: ${rows.join("; ")}; ` +
          `they are kept as saved in the table set_aside of ${sqlite.location}\n`,
      };
    } finally {
      sqlite.close();
    }
  } catch (error) {
    if (error instanceof StateMissingError) {
      const hint = stateDir === undefined ? "; that is the default: name the node's state directory with --state-dir DIR" : "";
      throw new CliError(EXIT.USAGE, `gorb state export: --state-dir: ${error.message}${hint}`, { cause: error });
    }
    if (error instanceof StateStoreError) throw new CliError(EXIT.USAGE, `gorb state export: ${error.message}`, { cause: error });
    throw error;
  }
}

const exportCommand = defineCommand({
  meta: { name: "gorb state export", description: "Print the saved services and backends as a file for gorb apply -f (JSON)" },
  args: {
    "state-dir": { type: "string", description: `A node's state directory (default: ${DEFAULT_STATE_DIR}); its daemon must be stopped`, valueHint: "dir" },
    store: { type: "string", description: "Read the shared state instead: etcd://HOST:PORT[,HOST:PORT...]/PREFIX", valueHint: "url" },
    "etcd-ca": { type: "string", description: "CA certificate (PEM) that signs the etcd members' certificates (etcds://)", valueHint: "file" },
    "etcd-cert": { type: "string", description: "Client certificate (PEM) for etcd", valueHint: "file" },
    "etcd-key": { type: "string", description: "Client key (PEM) for etcd (private, mode 0600)", valueHint: "file" },
    "etcd-user": { type: "string", description: "etcd user (with --etcd-password-file)", valueHint: "name" },
    "etcd-password-file": { type: "string", description: "File holding the etcd user's password (private, mode 0600)", valueHint: "file" },
  },
  async run({ args }) {
    const ctx = cliContext();
    const { declarativeDocument } = await import("../../store/export.ts");
    const etcd: EtcdFlags = {
      etcdCa: stringArg(args, "etcd-ca"),
      etcdCert: stringArg(args, "etcd-cert"),
      etcdKey: stringArg(args, "etcd-key"),
      etcdUser: stringArg(args, "etcd-user"),
      etcdPasswordFile: stringArg(args, "etcd-password-file"),
    };
    const { state, note } = await readState(stringArg(args, "state-dir"), stringArg(args, "store"), etcd);
    const { document, drained } = declarativeDocument(state);
    ctx.io.stdout(jsonText(document));
    if (note !== null) ctx.io.stderr(note);
    if (drained.length > 0) {
      const each = drained.map((d) => `${d.service}/${d.backend} (then ${d.then}, deadline ${new Date(d.deadline).toISOString()})`).join("; ");
      ctx.io.stderr(
        `gorb state export: ${drained.length} backend(s) under a drain are in this document with maintenance: true, so that an apply ` +
          `does not put them back in service (a drain is not a field of the file): ${each}; after the apply, drain them again ` +
          `(gorb backend drain) and set maintenance back in the file, or remove them from it\n`,
      );
    }
    return EXIT.OK;
  },
});

const state = defineCommand({
  meta: { name: "gorb state", description: "The saved desired state: export it for gorb apply" },
  subCommands: { export: () => Promise.resolve(withExamples(exportCommand, ["gorb state export --state-dir /var/lib/gorb > services.json", "gorb state export --store etcd://10.0.0.1:2379/gorb"])) },
});

export default state;
