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

async function readState(stateDir: string | undefined, store: string | undefined): Promise<SavedState> {
  if (store !== undefined) {
    let shared;
    try {
      shared = parseDaemonOptions({ store }).sharedStore;
    } catch (error) {
      if (error instanceof DaemonOptionError) throw new UsageError(error.message, "gorb state export");
      throw error;
    }
    if (shared === null) throw new UsageError("--store: expected etcd://HOST:PORT[,HOST:PORT...]/PREFIX", "gorb state export");
    const { EtcdStateStore } = await import("../../store/etcd-store.ts");
    let loaded;
    try {
      loaded = await new EtcdStateStore({ endpoints: shared.endpoints, prefix: shared.prefix }).load();
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
    return loaded.state;
  }
  const { SqliteStateStore, StateMissingError, StateStoreError } = await import("../../state/sqlite-store.ts");
  try {
    // Reading must not create: a mistyped --state-dir would export an empty set, which `gorb apply -f` takes as
    // "delete every file-owned service".
    const sqlite = SqliteStateStore.open(stateDir ?? DEFAULT_STATE_DIR, { create: false });
    try {
      return sqlite.load();
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
  },
  async run({ args }) {
    const ctx = cliContext();
    const { declarativeDocument } = await import("../../store/export.ts");
    ctx.io.stdout(jsonText(declarativeDocument(await readState(stringArg(args, "state-dir"), stringArg(args, "store")))));
    return EXIT.OK;
  },
});

const state = defineCommand({
  meta: { name: "gorb state", description: "The saved desired state: export it for gorb apply" },
  subCommands: { export: () => Promise.resolve(withExamples(exportCommand, ["gorb state export --state-dir /var/lib/gorb > services.json", "gorb state export --store etcd://10.0.0.1:2379/gorb"])) },
});

export default state;
