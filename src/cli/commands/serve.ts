/**
 * `gorb serve`: run the daemon. The flags are the original's (-l, -i, -f, -c, -v, plus --vip-interface for its
 * -vipi) and gorb's own (--token, --body-limit, --config, --state-dir, --no-state, --reconcile-interval). With
 * --config, the file's settings come first and the flags given override them (flags > GORB_TOKEN > file >
 * defaults); a file with an error stops the start with its location. They are checked here into
 * DaemonOptions; src/daemon/run.ts builds and runs the stack.
 */
import { defineCommand } from "citty";
import { withExamples } from "../_command.ts";
import { boolArg, stringArg } from "../_shared.ts";
import { cliContext } from "../context.ts";
import { CliError, EXIT, UsageError } from "../errors.ts";
import { prepareLibnl } from "../native.ts";
import {
  DEFAULT_BODY_LIMIT,
  DEFAULT_LISTEN,
  DEFAULT_RECONCILE_INTERVAL,
  DEFAULT_STATE_DIR,
  DaemonOptionError,
  parseDaemonOptions,
} from "../../daemon/options.ts";
import type { DaemonFlags, DaemonOptions } from "../../daemon/options.ts";
import type { ConsolaInstance } from "consola";
import type { ConfigFile } from "../../config/load.ts";

/** What `gorb serve` calls with the checked options (tests install a recorder with setDaemonRunner). */
export type DaemonRunner = (options: DaemonOptions, log: ConsolaInstance) => Promise<void>;

const realRunner: DaemonRunner = async (options, log) => {
  const { runDaemon } = await import("../../daemon/run.ts");
  await runDaemon(options, log);
};

let runner: DaemonRunner = realRunner;

/** setDaemonRunner replaces runDaemon (tests); returns the previous runner. */
export function setDaemonRunner(next: DaemonRunner): DaemonRunner {
  const previous = runner;
  runner = next;
  return previous;
}

const serve = defineCommand({
  meta: {
    name: "gorb serve",
    description: "Run the gorb daemon: REST API, health checks and the kernel's IPVS table (needs root)",
  },
  args: {
    listen: {
      type: "string",
      alias: "l",
      description: `HTTP listen address: ":PORT" (all addresses), "HOST:PORT" or "[IPV6]:PORT" (default: ${DEFAULT_LISTEN})`,
      valueHint: "addr",
    },
    interface: {
      type: "string",
      alias: "i",
      description:
        "Interface whose first address is the host of services created without --host (unset: every service must name its host)",
      valueHint: "ifname",
    },
    flush: {
      type: "boolean",
      alias: "f",
      description: "Delete EVERY IPVS service at start-up, including ones gorb did not create",
    },
    consul: {
      type: "string",
      alias: "c",
      description: "Consul HTTP API URL to register services with, e.g. http://127.0.0.1:8500",
      valueHint: "url",
    },
    verbose: { type: "boolean", alias: "v", description: "Debug logging" },
    "vip-interface": {
      type: "string",
      description: "Add each service address to this interface (/32 or /128) and remove it with the service",
      valueHint: "ifname",
    },
    token: {
      type: "string",
      description: "Require this bearer token on every API request (env GORB_TOKEN)",
      valueHint: "token",
    },
    "body-limit": {
      type: "string",
      description: `Largest accepted request body, e.g. 64k, 1m (default: ${DEFAULT_BODY_LIMIT})`,
      valueHint: "size",
    },
    config: {
      type: "string",
      description: "Configuration file (.yaml, .yml, .json or .toml): settings and declared services; SIGHUP re-reads it",
      valueHint: "file",
    },
    "state-dir": {
      type: "string",
      description: `Directory of the durable state, created when missing (default: ${DEFAULT_STATE_DIR})`,
      valueHint: "dir",
    },
    state: {
      type: "boolean",
      description: "Keep every accepted change on disk and restore it at start-up (default)",
      negativeDescription: "Keep nothing on disk: services are lost when gorb stops",
    },
    "reconcile-interval": {
      type: "string",
      description: `Repair drift of the kernel table every so often, e.g. 30s, 5m; 0 = never (default: ${DEFAULT_RECONCILE_INTERVAL})`,
      valueHint: "duration",
    },
    "max-services": {
      type: "string",
      description: "Most services gorb holds; creating one more answers 409 LIMIT (default: unlimited)",
      valueHint: "n",
    },
    "max-backends": {
      type: "string",
      description: "Most backends gorb holds over all services; one more answers 409 LIMIT (default: unlimited)",
      valueHint: "n",
    },
  },
  async run({ args }) {
    const ctx = cliContext();
    const configPath = stringArg(args, "config");
    const file = configPath === undefined ? null : await readConfig(configPath);
    let options: DaemonOptions;
    try {
      const given: DaemonFlags = {
        listen: stringArg(args, "listen"),
        interface: stringArg(args, "interface"),
        flush: boolArg(args, "flush"),
        consul: stringArg(args, "consul"),
        verbose: boolArg(args, "verbose"),
        vipInterface: stringArg(args, "vip-interface"),
        token: stringArg(args, "token") ?? (ctx.env.GORB_TOKEN === "" ? undefined : ctx.env.GORB_TOKEN),
        bodyLimit: stringArg(args, "body-limit"),
        state: boolArg(args, "state"),
        stateDir: stringArg(args, "state-dir"),
        reconcileInterval: stringArg(args, "reconcile-interval"),
        maxServices: stringArg(args, "max-services"),
        maxBackends: stringArg(args, "max-backends"),
      };
      options = parseDaemonOptions(mergeFlags(file?.flags ?? {}, given));
    } catch (error) {
      if (error instanceof DaemonOptionError) throw new UsageError(error.message, "gorb serve");
      throw error;
    }
    if (file !== null) options = { ...options, configPath: file.file, declared: file.services };
    const { createConsola } = await import("consola");
    const log = createConsola({ level: options.verbose ? 4 : 3 }).withTag("gorb");
    try {
      const source = await prepareLibnl(ctx.env);
      if (source !== null) log.debug(`libnl: ${source}`);
      await runner(options, log);
    } catch (error) {
      throw daemonFailure(error);
    }
    return EXIT.OK;
  },
});

/** The configuration file, checked; a bad one is one line naming its location (exit 2). */
async function readConfig(path: string): Promise<ConfigFile> {
  const { ConfigError, loadConfigFile } = await import("../../config/load.ts");
  try {
    return await loadConfigFile(path);
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(EXIT.USAGE, error.message, { cause: error });
    throw error;
  }
}

/** The file's settings with the flags given on top (a flag left out keeps the file's value). */
export function mergeFlags(file: DaemonFlags, given: DaemonFlags): DaemonFlags {
  const merged: Record<string, unknown> = { ...file };
  for (const [name, value] of Object.entries(given)) if (value !== undefined) merged[name] = value;
  return merged as DaemonFlags;
}

/** The CliError for a daemon that could not start or stopped with an error. */
function daemonFailure(error: unknown): CliError {
  if (error instanceof CliError) return error;
  const name = error instanceof Error ? error.name : "";
  const message = error instanceof Error ? error.message : String(error);
  if (name === "IpvsUnavailableError" || name === "LibraryLoadError") {
    return new CliError(EXIT.IPVS_UNAVAILABLE, message, { cause: error });
  }
  return new CliError(EXIT.UNEXPECTED, `gorb serve: ${message}`, { cause: error });
}

export default withExamples(serve, [
  "gorb serve                              # listen on :4672, services need --host",
  "gorb serve -l 127.0.0.1:4672 -i eth0    # default service host = eth0's first address",
  "gorb serve -c http://127.0.0.1:8500 --vip-interface lo",
  "GORB_TOKEN=secret gorb serve            # every API request needs 'Authorization: Bearer secret'",
  "gorb serve --config /etc/gorb/gorb.yaml # settings and services from a file; kill -HUP re-reads it",
  "gorb serve --state-dir /tmp/gorb --reconcile-interval 5s",
]);
