/**
 * `gorb serve`: run the daemon. The flags are the original's (-l, -i, -f, -c, -v, plus --vip-interface for its
 * -vipi) and gorb's own (--token, --body-limit). They are checked here into DaemonOptions; src/daemon/run.ts
 * builds and runs the stack.
 */
import { defineCommand } from "citty";
import { withExamples } from "../_command.ts";
import { boolArg, stringArg } from "../_shared.ts";
import { cliContext } from "../context.ts";
import { CliError, EXIT, UsageError } from "../errors.ts";
import { prepareLibnl } from "../native.ts";
import { DEFAULT_BODY_LIMIT, DEFAULT_LISTEN, DaemonOptionError, parseDaemonOptions } from "../../daemon/options.ts";
import type { DaemonOptions } from "../../daemon/options.ts";
import type { ConsolaInstance } from "consola";

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
      description: 'HTTP listen address: ":PORT" (all addresses), "HOST:PORT" or "[IPV6]:PORT"',
      valueHint: "addr",
      default: DEFAULT_LISTEN,
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
      description: "Largest accepted request body, e.g. 64k, 1m",
      valueHint: "size",
      default: DEFAULT_BODY_LIMIT,
    },
  },
  async run({ args }) {
    const ctx = cliContext();
    let options: DaemonOptions;
    try {
      options = parseDaemonOptions({
        listen: stringArg(args, "listen"),
        interface: stringArg(args, "interface"),
        flush: boolArg(args, "flush"),
        consul: stringArg(args, "consul"),
        verbose: boolArg(args, "verbose"),
        vipInterface: stringArg(args, "vip-interface"),
        token: stringArg(args, "token") ?? (ctx.env.GORB_TOKEN === "" ? undefined : ctx.env.GORB_TOKEN),
        bodyLimit: stringArg(args, "body-limit"),
      });
    } catch (error) {
      if (error instanceof DaemonOptionError) throw new UsageError(error.message, "gorb serve");
      throw error;
    }
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
]);
