/**
 * `gorb serve`: run the daemon. The flags are the original's (-l, -i, -f, -c, -v, plus --vip-interface for its
 * -vipi) and gorb's own (--token, --token-file, --allow, --allow-origin, --max-connections, --tls-cert/--tls-key,
 * --consul-token(-file), --body-limit, --config, --state-dir, --no-state, --reconcile-interval,
 * --unknown-destinations, --no-ui). With --config,
 * the file's settings come first and the flags given override them: flags > environment (GORB_TOKEN,
 * CONSUL_HTTP_TOKEN) > file > defaults, so --token-file beats GORB_TOKEN, which beats the file's token_file; a
 * file with an error stops the start with its location. They are checked here into DaemonOptions, the secret
 * files are read (and refused unless private: src/daemon/secrets.ts); src/daemon/run.ts builds and runs the stack.
 */
import { defineCommand } from "citty";
import { withExamples } from "../_command.ts";
import { boolArg, stringArg } from "../_shared.ts";
import { DEFAULTS } from "../../contract/fields.ts";
import { cliContext } from "../context.ts";
import { CliError, EXIT, UsageError } from "../errors.ts";
import { prepareLibnl } from "../native.ts";
import {
  DEFAULT_BGP_HOLD_DOWN,
  DEFAULT_BGP_INCLUDE,
  DEFAULT_BGP_PROTOCOL,
  DEFAULT_BODY_LIMIT,
  DEFAULT_LISTEN,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_RECONCILE_INTERVAL,
  DEFAULT_UNKNOWN_DESTINATIONS,
  DEFAULT_STATE_DIR,
  DaemonOptionError,
  parseDaemonOptions,
  secretProblem,
} from "../../config/daemon-options.ts";
import type { DaemonFlags, DaemonOptions } from "../../config/daemon-options.ts";
import { SecretFileError, checkPrivateFile, checkPrivateStat, loadSecrets } from "../../daemon/secrets.ts";
import { ExecDirError, checkExecDirs } from "../../daemon/exec-dirs.ts";
import { UNKNOWN_DESTINATION_MODES } from "../../core/unknown-destinations.ts";
import { DEFAULT_PROBE_MARKS, formatMarkRange } from "../../core/mark-range.ts";
import { DEFAULT_EXEC_DIRS } from "../../health/checkers/exec.ts";
import type { ConsolaInstance } from "consola";
import type { ConfigFile } from "../../config/load.ts";
import { errorCode } from "../../errno.ts";

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
      description: `HTTP listen address: "HOST:PORT", "[IPV6]:PORT" or ":PORT" (every address) (default: ${DEFAULT_LISTEN}, loopback only)`,
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
      description: "Require this bearer token on every API request (env GORB_TOKEN; on the command line it shows in ps: prefer --token-file)",
      valueHint: "token",
    },
    "token-file": {
      type: "string",
      description: "Read the API token from this file (mode 0600 or stricter; others are refused)",
      valueHint: "file",
    },
    allow: {
      type: "string",
      description: "Only these networks (and loopback) may use the API, e.g. 10.0.0.0/8,2001:db8::/32; others get 403",
      valueHint: "cidr,...",
    },
    "allow-origin": {
      type: "string",
      description: "Browser origins allowed to change gorb, e.g. https://ops.example.com (other browser writes get 403)",
      valueHint: "origin,...",
    },
    "max-connections": {
      type: "string",
      description: `Most API requests in flight; more get 503 and are closed at once (default: ${DEFAULT_MAX_CONNECTIONS})`,
      valueHint: "n",
    },
    "tls-cert": {
      type: "string",
      description: "Serve the API over HTTPS with this PEM certificate (chain); needs --tls-key",
      valueHint: "file",
    },
    "tls-key": {
      type: "string",
      description: "PEM private key of --tls-cert (mode 0600 or stricter)",
      valueHint: "file",
    },
    "consul-token": {
      type: "string",
      description: "Consul ACL token, sent as X-Consul-Token (env CONSUL_HTTP_TOKEN; prefer --consul-token-file)",
      valueHint: "token",
    },
    "consul-token-file": {
      type: "string",
      description: "Read the Consul ACL token from this file (mode 0600 or stricter)",
      valueHint: "file",
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
    "hook-dir": {
      type: "string",
      description: `Where quorum_up / quorum_down programs must live (default: ${DEFAULTS.hookDir})`,
      valueHint: "dir",
    },
    "unknown-destinations": {
      type: "string",
      description:
        "At start, destinations of gorb's services that the saved state does not know: report (leave them), adopt, or remove " +
        `(default: ${DEFAULT_UNKNOWN_DESTINATIONS})`,
      valueHint: UNKNOWN_DESTINATION_MODES.join("|"),
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
    "probe-marks": {
      type: "string",
      description: `Firewall marks gorb keeps for checks through the VIP (pulse args.via "vip"); user fwmark services in it are refused (default: ${formatMarkRange(DEFAULT_PROBE_MARKS)})`,
      valueHint: "first-last",
    },
    ui: {
      type: "boolean",
      description: "Serve the web UI at /ui, embedded in gorb (default)",
      negativeDescription: "Do not serve the web UI (/ui answers 404)",
    },
    "ipvs-sysctls": {
      type: "boolean",
      description: "Set net.ipv4.vs.expire_nodest_conn=1 and expire_quiescent_template=1 at start, for drains (default)",
      negativeDescription: "Leave the IPVS sysctls as they are",
    },
    "bgp-bird-socket": {
      type: "string",
      description: "Announce each healthy VIP over BGP through the BIRD 2 listening on this control socket, e.g. /run/bird/bird.ctl",
      valueHint: "socket",
    },
    "bgp-include": {
      type: "string",
      description: `The BIRD include file gorb owns (default: ${DEFAULT_BGP_INCLUDE})`,
      valueHint: "file",
    },
    "bgp-protocol": {
      type: "string",
      description: `Name of the static protocol in the include file; IPv6: NAME6 (default: ${DEFAULT_BGP_PROTOCOL})`,
      valueHint: "name",
    },
    "bgp-hold-down": {
      type: "string",
      description: `How long a VIP must stay healthy before it is announced, e.g. 3s; withdrawal is immediate (default: ${DEFAULT_BGP_HOLD_DOWN})`,
      valueHint: "duration",
    },
    "bgp-keep-on-exit": {
      type: "boolean",
      description: "Leave the VIPs announced when gorb stops (default: SIGTERM withdraws them)",
    },
    store: {
      type: "string",
      description:
        "Share the desired state with other gorb nodes in etcd: etcd://HOST:PORT[,HOST:PORT...]/PREFIX (etcds:// for HTTPS); " +
        "replaces state.db (default: the node's own state in --state-dir); --state-dir then keeps the node's kernel ledger",
      valueHint: "url",
    },
    "node-id": { type: "string", description: "This node's name in the fleet (default: the host name)", valueHint: "name" },
    "etcd-ca": { type: "string", description: "CA certificate (PEM) that signs the etcd members' certificates", valueHint: "file" },
    "etcd-cert": { type: "string", description: "Client certificate (PEM) for etcd", valueHint: "file" },
    "etcd-key": { type: "string", description: "Client key (PEM) for etcd", valueHint: "file" },
    "etcd-user": { type: "string", description: "etcd user (with --etcd-password-file)", valueHint: "name" },
    "etcd-password-file": { type: "string", description: "File holding the etcd user's password", valueHint: "file" },
    "check-exec-dir": {
      type: "string",
      description:
        "A directory exec health checks may run programs from (absolute; repeat the flag or separate with commas; " +
        `must exist and not be writable by others; default: ${DEFAULT_EXEC_DIRS.join(", ")})`,
      valueHint: "dir...",
    },
  },
  async run({ args, rawArgs }) {
    const ctx = cliContext();
    const configPath = stringArg(args, "config");
    const file = configPath === undefined ? null : await readConfig(configPath);
    if (file !== null && (file.flags.token !== undefined || file.flags.consulToken !== undefined)) {
      // The file read is checked (its descriptor's Stats), not the path again: it may name another file by now.
      const read = file.stat;
      await secretCheck(() => (read !== undefined ? checkPrivateStat("config", file.file, read) : checkPrivateFile("config", file.file, null)));
    }
    let options: DaemonOptions;
    try {
      const given: DaemonFlags = {
        listen: stringArg(args, "listen"),
        interface: stringArg(args, "interface"),
        flush: boolArg(args, "flush"),
        consul: stringArg(args, "consul"),
        verbose: boolArg(args, "verbose"),
        vipInterface: stringArg(args, "vip-interface"),
        token: stringArg(args, "token"),
        bodyLimit: stringArg(args, "body-limit"),
        state: boolArg(args, "state"),
        stateDir: stringArg(args, "state-dir"),
        reconcileInterval: stringArg(args, "reconcile-interval"),
        tokenFile: stringArg(args, "token-file"),
        allow: stringArg(args, "allow"),
        allowOrigin: stringArg(args, "allow-origin"),
        maxConnections: stringArg(args, "max-connections"),
        tlsCert: stringArg(args, "tls-cert"),
        tlsKey: stringArg(args, "tls-key"),
        consulToken: stringArg(args, "consul-token"),
        consulTokenFile: stringArg(args, "consul-token-file"),
        unknownDestinations: stringArg(args, "unknown-destinations"),
        hookDir: stringArg(args, "hook-dir"),
        maxServices: stringArg(args, "max-services"),
        maxBackends: stringArg(args, "max-backends"),
        probeMarks: stringArg(args, "probe-marks"),
        ui: boolArg(args, "ui"),
        bgpBirdSocket: stringArg(args, "bgp-bird-socket"),
        bgpInclude: stringArg(args, "bgp-include"),
        bgpProtocol: stringArg(args, "bgp-protocol"),
        bgpHoldDown: stringArg(args, "bgp-hold-down"),
        bgpKeepOnExit: boolArg(args, "bgp-keep-on-exit"),
        ipvsSysctls: boolArg(args, "ipvs-sysctls"),
        store: stringArg(args, "store"),
        nodeId: stringArg(args, "node-id"),
        etcdCa: stringArg(args, "etcd-ca"),
        etcdCert: stringArg(args, "etcd-cert"),
        etcdKey: stringArg(args, "etcd-key"),
        etcdUser: stringArg(args, "etcd-user"),
        etcdPasswordFile: stringArg(args, "etcd-password-file"),
        checkExecDir: repeatedArg(rawArgs, "check-exec-dir") ?? stringArg(args, "check-exec-dir"),
      };
      // The environment's tokens sit between the file and the flags: --token-file beats GORB_TOKEN, which beats
      // the file's token or token_file (an environment variable set for the whole host is not a conflict).
      // (Read only when no flag replaces it: a bad GORB_TOKEN does not stop a start with --token-file.)
      const environment: DaemonFlags = {
        token: given.token === undefined && given.tokenFile === undefined ? envValue("GORB_TOKEN", ctx.env.GORB_TOKEN) : undefined,
        consulToken:
          given.consulToken === undefined && given.consulTokenFile === undefined ? envValue("CONSUL_HTTP_TOKEN", ctx.env.CONSUL_HTTP_TOKEN) : undefined,
      };
      options = parseDaemonOptions(mergeFlags(mergeFlags(file?.flags ?? {}, environment), given));
    } catch (error) {
      if (error instanceof DaemonOptionError) throw new UsageError(error.message, "gorb serve");
      throw error;
    }
    if (file !== null) options = { ...options, configPath: file.file, configSettings: file.flags, declared: file.services };
    const loaded = options;
    options = await secretCheck(() => loadSecrets(loaded));
    try {
      checkExecDirs(options.checkExecDirs);
    } catch (error) {
      if (error instanceof ExecDirError) throw new CliError(EXIT.USAGE, `gorb serve: ${error.message}`, { cause: error });
      throw error;
    }
    for (const flag of ["token", "consul-token"]) {
      if (stringArg(args, flag) !== undefined) {
        ctx.log.warn(`--${flag} on the command line is visible to every local user (ps, /proc); use --${flag}-file instead`);
      }
    }
    const [{ createConsola }, { daemonReporter }, { journalStreams }] = await Promise.all([
      import("consola/core"),
      import("../../daemon/log-lines.ts"),
      import("../../journal.ts"),
    ]);
    // Under systemd the lines carry their priority, so the journal tells warnings and errors from information.
    const reporter = daemonReporter(undefined, journalStreams(ctx.env));
    const log = createConsola({ level: options.verbose ? 4 : 3, reporters: [reporter] }).withTag("gorb");

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

/**
 * Every value of a repeatable string flag (its valueHint ends in "...": see repeatable), joined with commas (citty
 * keeps only the last one); undefined when the flag is absent. Reads `--name VALUE` and `--name=VALUE` up to a lone `--`.
 */
function repeatedArg(rawArgs: readonly string[], name: string): string | undefined {
  const values: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const a = rawArgs[i] as string;
    if (a === "--") break;
    if (a === `--${name}`) {
      const next = rawArgs[i + 1];
      if (next !== undefined && !next.startsWith("-")) values.push(next);
      i++;
    } else if (a.startsWith(`--${name}=`)) {
      values.push(a.slice(name.length + 3));
    }
  }
  return values.length === 0 ? undefined : values.join(",");
}

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

/** Runs a secret-file check; its failure is a usage error (exit 2) naming the file and the fix. */
async function secretCheck<T>(check: () => T | Promise<T>): Promise<T> {
  try {
    return await check();
  } catch (error) {
    if (error instanceof SecretFileError) throw new CliError(EXIT.USAGE, `gorb serve: ${error.message}`, { cause: error });
    throw error;
  }
}

/** A token from the environment; unset and empty are both undefined; a bad one is an error naming the variable. */
function envValue(name: string, value: string | undefined): string | undefined {
  if (value === undefined || value === "") return undefined;
  const problem = secretProblem(value);
  if (problem !== null) throw new UsageError(`${name}: ${problem}`, "gorb serve");
  return value;
}

/** Settings that say the same thing in two ways: giving one in a higher layer replaces both of the lower one's. */
const ALTERNATIVES: readonly (readonly (keyof DaemonFlags)[])[] = [
  ["token", "tokenFile"],
  ["consulToken", "consulTokenFile"],
];

/**
 * The lower layer's settings with the higher one's on top (a setting the higher layer leaves out keeps the lower
 * one's): file < environment < flags. Only two alternatives of the same layer can conflict.
 */
function mergeFlags(lower: DaemonFlags, higher: DaemonFlags): DaemonFlags {
  const merged: Record<string, unknown> = { ...lower };
  for (const group of ALTERNATIVES) {
    if (group.some((name) => higher[name] !== undefined)) for (const name of group) delete merged[name];
  }
  for (const [name, value] of Object.entries(higher)) if (value !== undefined) merged[name] = value;
  return merged as DaemonFlags;
}

/** The CliError for a daemon that could not start or stopped with an error. */
function daemonFailure(error: unknown): CliError {
  if (error instanceof CliError) return error;
  // The daemon reads the TLS key (and the etcd key and password) again as it starts, from the descriptor it checks
  // then: a file made readable or given away since the option checks is refused there, as those checks refuse it.
  if (error instanceof SecretFileError) return new CliError(EXIT.USAGE, `gorb serve: ${error.message}`, { cause: error });
  const name = error instanceof Error ? error.name : "";
  const message = error instanceof Error ? error.message : String(error);
  if (name === "IpvsUnavailableError" || name === "LibraryLoadError") {
    return new CliError(EXIT.IPVS_UNAVAILABLE, message, { cause: error });
  }
  // Every IPVS command needs CAP_NET_ADMIN: the kernel's first answer to a user without it (the start's info). Told
  // by name and code, as above: the client's commands load no IPVS module (the driver's errors included).
  if (name === "IpvsError" && errorCode(error) === "EPERM") {
    return new CliError(EXIT.SERVER, `gorb serve: ${message}; gorb serve needs root (or CAP_NET_ADMIN)`, { cause: error });
  }
  return new CliError(EXIT.UNEXPECTED, `gorb serve: ${message}`, { cause: error });
}

export default withExamples(serve, [
  "gorb serve                              # listen on 127.0.0.1:4672, services need --host",
  "gorb serve -l :4672 --allow 10.0.0.0/8 --token-file /etc/gorb/token   # reachable from 10/8, with a token",
  "gorb serve -l 127.0.0.1:4672 -i eth0    # default service host = eth0's first address",
  "gorb serve -c http://127.0.0.1:8500 --vip-interface lo",
  "GORB_TOKEN=secret gorb serve            # every API request needs 'Authorization: Bearer secret'",
  "gorb serve -l :4672 --tls-cert cert.pem --tls-key key.pem --token-file /etc/gorb/token",
  "gorb serve --config /etc/gorb/gorb.yaml # settings and services from a file; kill -HUP re-reads it",
  "gorb serve --state-dir /tmp/gorb --reconcile-interval 5s",
  "gorb serve --bgp-bird-socket /run/bird/bird.ctl   # announce healthy VIPs through BIRD (docs/bird.conf)",
]);
