/**
 * The daemon's options: what `gorb serve` hands to runDaemon (src/daemon/run.ts) after parsing and checking its
 * flags (and the configuration file's settings, which ./schema.ts turns into the same DaemonFlags; flags win).
 * Everything here is pure (no I/O): the interface names are only checked for shape, the daemon looks them up.
 * It lives with the configuration file's reader, below the daemon, because both the file and the command line
 * are checked with it.
 */
import { isBirdReservedWord } from "./bird-reserved.ts";
import { type Cidr, CidrError, isLoopback, parseAddress, parseCidrList } from "./cidr.ts";
import { normalizeOrigin } from "./origin.ts";
import { DEFAULTS, LIMITS } from "../contract/fields.ts";
import type { DeclaredService } from "../core/plan.ts";
import { UNKNOWN_DESTINATION_MODES, type UnknownDestinationMode } from "../core/unknown-destinations.ts";
import { DEFAULT_PROBE_MARKS, MarkRangeError, parseMarkRange, type MarkRange } from "../core/mark-range.ts";
import { hostPort } from "../ipv6-text.ts";

/** Where the REST API listens. */
export interface ListenAddress {
  /**
   * Address or host name to bind; null binds every address (Go's ":4672"). IPv6 literals are kept without
   * brackets ("::1").
   */
  readonly host: string | null;
  /** TCP port; 0 lets the kernel pick one. */
  readonly port: number;
}

/** DaemonOptions is the checked configuration of `gorb serve`. */
export interface DaemonOptions {
  readonly listen: ListenAddress;
  /**
   * Interface whose first address becomes the host of services created without one; null means every service
   * must name its host (the original defaulted to eth0 and refused to start without it).
   */
  readonly interface: string | null;
  /** Delete every IPVS service at start-up (also ones gorb did not create). */
  readonly flush: boolean;
  /** Consul HTTP API base URL (scheme included), or null for no service registration. */
  readonly consulUrl: string | null;
  /** Debug logging. */
  readonly verbose: boolean;
  /** Interface to add each service address to (as a /32 or /128), or null to leave addresses alone. */
  readonly vipInterface: string | null;
  /** Bearer token every API request must carry, or null for an open API (src/daemon/secrets.ts fills it from tokenFile). */
  readonly token: string | null;
  /** File holding the token (--token-file); read, and refused unless private, before the daemon starts. */
  readonly tokenFile: string | null;
  /** Networks whose peers may use the API besides loopback (--allow); empty: every peer. */
  readonly allow: readonly Cidr[];
  /** Browser origins trusted to write (--allow-origin), normalised ("https://ops.example.com"). */
  readonly allowOrigins: readonly string[];
  /** Most API requests in flight at once (--max-connections); more are answered 503 and closed. */
  readonly maxConnections: number;
  /** Serve the API over HTTPS with this certificate chain and private key (PEM files), or null for plain HTTP. */
  readonly tls: { readonly certFile: string; readonly keyFile: string } | null;
  /** Consul ACL token, sent as X-Consul-Token (--consul-token, or read from consulTokenFile). */
  readonly consulToken: string | null;
  /** File holding the Consul ACL token (--consul-token-file). */
  readonly consulTokenFile: string | null;
  /** Largest request body the API accepts, in bytes. */
  readonly bodyLimitBytes: number;
  /**
   * Directory of the durable state (state.db; with --store etcd://, the node's kernel ledger, fleet-ledger.db),
   * created when missing; null keeps nothing on disk (--no-state).
   */
  readonly stateDir: string | null;
  /** Milliseconds between two reconciles of the kernel table with gorb's state; 0 turns the periodic one off. */
  readonly reconcileIntervalMs: number;
  /**
   * What restore does with destinations the kernel serves in a gorb service and the saved state does not know
   * (added while the state could not be saved, or by hand): report them and leave them, adopt them as API
   * backends (pulse none), or remove them.
   */
  readonly unknownDestinations: UnknownDestinationMode;
  /** Most services gorb holds (--max-services); null = unlimited. */
  readonly maxServices: number | null;
  /** Most backends gorb holds over all services (--max-backends); null = unlimited. */
  readonly maxBackends: number | null;
  /** Firewall marks gorb keeps for checks through the VIP (--probe-marks FIRST-LAST). */
  readonly probeMarks: MarkRange;
  /**
   * The shared desired state in etcd (--store etcd://HOST:PORT[,HOST:PORT...]/PREFIX; etcds:// for HTTPS), or
   * null for the node's own SQLite state (--state-dir). With it, --state-dir holds the node's kernel ledger
   * (fleet-ledger.db: what it put in its kernel) instead of state.db, and --no-state keeps no ledger.
   */
  readonly sharedStore: SharedStoreOptions | null;
  /** This node's name in the fleet (--node-id); null: the host name. */
  readonly nodeId: string | null;
  /** The configuration file (--config), re-read on SIGHUP; null without one. */
  readonly configPath: string | null;
  /** The file's settings as gorb started with them (a SIGHUP names those changed since); null without a file. */
  readonly configSettings: DaemonFlags | null;
  /**
   * The services the configuration file declares, applied at start-up (and on SIGHUP); null when there is no
   * file or it has no `services` key (then gorb never creates or deletes a service on the file's behalf).
   */
  readonly declared: readonly DeclaredService[] | null;
  /** Serve the web UI at /ui (false: --no-ui). */
  readonly ui: boolean;
  /** Announce healthy VIPs over BGP through BIRD (--bgp-bird-socket); null: no BGP. */
  readonly bgp: BgpOptions | null;
  /** Set net.ipv4.vs.expire_nodest_conn=1 and expire_quiescent_template=1 at start (false: --no-ipvs-sysctls). */
  readonly ipvsSysctls: boolean;
  /** Where quorum_up / quorum_down programs must live (--hook-dir). */
  readonly hookDir: string;
  /**
   * Directories `exec` checks may run programs from (--check-exec-dir), absolute paths; null: the checkers'
   * default (/etc/gorb/checks). The daemon refuses to start when one is missing or writable by others.
   */
  readonly checkExecDirs: readonly string[] | null;
}

/** The BGP announcer's settings (src/bgp/). */
export interface BgpOptions {
  /** BIRD's control socket. */
  readonly socket: string;
  /** The include file gorb owns (on tmpfs, /run). */
  readonly include: string;
  /** Name of the IPv4 static protocol in the include file; the IPv6 one is this name + "6". */
  readonly protocol: string;
  /** Milliseconds a VIP must stay healthy before it is announced. */
  readonly holdDownMs: number;
  /** Leave the VIPs announced when gorb stops (default: withdraw them). */
  readonly keepOnExit: boolean;
}

/** Where the shared desired state lives (see DaemonOptions.sharedStore). */
export interface SharedStoreOptions {
  /** Base URLs of the etcd members ("http://10.0.0.1:2379"). */
  readonly endpoints: readonly string[];
  /** Key prefix, starting with "/" and without a trailing "/" ("/gorb"). */
  readonly prefix: string;
  /** PEM files for HTTPS to etcd (--etcd-ca, --etcd-cert, --etcd-key); null each when not given. */
  readonly caFile: string | null;
  readonly certFile: string | null;
  readonly keyFile: string | null;
  /** etcd user (--etcd-user) and the file holding its password (--etcd-password-file). */
  readonly user: string | null;
  readonly passwordFile: string | null;
}

/** The raw flag values `gorb serve` collected (strings as typed; undefined when not given). */
export interface DaemonFlags {
  readonly listen?: string | undefined;
  readonly interface?: string | undefined;
  readonly flush?: boolean | undefined;
  readonly consul?: string | undefined;
  readonly verbose?: boolean | undefined;
  readonly vipInterface?: string | undefined;
  readonly token?: string | undefined;
  readonly bodyLimit?: string | undefined;
  /** false for --no-state. */
  readonly state?: boolean | undefined;
  readonly stateDir?: string | undefined;
  readonly reconcileInterval?: string | undefined;
  readonly tokenFile?: string | undefined;
  /** Comma-separated networks. */
  readonly allow?: string | undefined;
  /** Comma-separated origins. */
  readonly allowOrigin?: string | undefined;
  readonly maxConnections?: string | undefined;
  readonly tlsCert?: string | undefined;
  readonly tlsKey?: string | undefined;
  readonly consulToken?: string | undefined;
  readonly consulTokenFile?: string | undefined;
  readonly unknownDestinations?: string | undefined;
  readonly maxServices?: string | undefined;
  readonly maxBackends?: string | undefined;
  readonly probeMarks?: string | undefined;
  /** false for --no-ui. */
  readonly ui?: boolean | undefined;
  readonly bgpBirdSocket?: string | undefined;
  readonly bgpInclude?: string | undefined;
  readonly bgpProtocol?: string | undefined;
  readonly bgpHoldDown?: string | undefined;
  readonly bgpKeepOnExit?: boolean | undefined;
  readonly store?: string | undefined;
  readonly nodeId?: string | undefined;
  readonly etcdCa?: string | undefined;
  readonly etcdCert?: string | undefined;
  readonly etcdKey?: string | undefined;
  readonly etcdUser?: string | undefined;
  readonly etcdPasswordFile?: string | undefined;
  /** false for --no-ipvs-sysctls. */
  readonly ipvsSysctls?: boolean | undefined;
  readonly hookDir?: string | undefined;
  /** Comma-separated directories (the flag may be repeated; the values are joined). */
  readonly checkExecDir?: string | undefined;
}

/**
 * DEFAULT_LISTEN: loopback only. The original listened on ":4672" (every address, no token); `-l :4672` still
 * does that, with a loud warning.
 */
export const DEFAULT_LISTEN = "127.0.0.1:4672";
/** DEFAULT_MAX_CONNECTIONS is the default cap on API requests in flight. */
export const DEFAULT_MAX_CONNECTIONS = 256;
/** DEFAULT_BODY_LIMIT is the default largest request body (64 KiB, as the API; a service or backend body is < 1 KiB). */
export const DEFAULT_BODY_LIMIT = "64k";
/** DEFAULT_STATE_DIR is where the durable state lives unless --state-dir says otherwise. */
export const DEFAULT_STATE_DIR = "/var/lib/gorb";
/** DEFAULT_RECONCILE_INTERVAL is the period of the reconcile of the kernel table with gorb's state. */
export const DEFAULT_RECONCILE_INTERVAL = "30s";
/** DEFAULT_UNKNOWN_DESTINATIONS: restore reports destinations it does not know and leaves them serving. */
export const DEFAULT_UNKNOWN_DESTINATIONS: UnknownDestinationMode = "report";
/** DEFAULT_BGP_INCLUDE: the include file gorb owns, on tmpfs so a reboot starts with nothing announced. */
export const DEFAULT_BGP_INCLUDE = "/run/gorb/bird-vips.conf";
/** DEFAULT_BGP_PROTOCOL: the IPv4 static protocol's name (IPv6: this + "6"). */
export const DEFAULT_BGP_PROTOCOL = "gorb_vips";
/** DEFAULT_BGP_HOLD_DOWN: how long a VIP must stay healthy before it is announced. */
export const DEFAULT_BGP_HOLD_DOWN = "3s";
/** The shortest reconcile period accepted. */
const MIN_RECONCILE_INTERVAL_MS = 1000;
/** The longest reconcile interval, 24h. */
const MAX_RECONCILE_INTERVAL_MS = 24 * 3_600_000;

/** How a setting is named where the error is shown: a flag ("--etcd-user") or a configuration file's key ("etcd_user"). */
export type SettingNamer = (flag: string) => string;

/** The command line's names. */
const asFlag: SettingNamer = (flag) => `--${flag}`;

/**
 * DaemonOptionError reports a bad flag value; `flag` is the long flag name without dashes ("listen") and `problem`
 * what is wrong with its value, naming other settings as flags. A problem that names other settings is given as a
 * function of how to name them, so a configuration file's error names its keys (`problemAs`).
 */
export class DaemonOptionError extends Error {
  override readonly name = "DaemonOptionError";
  readonly flag: string;
  readonly #problem: (name: SettingNamer) => string;

  constructor(flag: string, problem: string | ((name: SettingNamer) => string)) {
    const say = typeof problem === "string" ? () => problem : problem;
    super(`--${flag}: ${say(asFlag)}`);
    this.flag = flag;
    this.#problem = say;
  }

  /** What is wrong, other settings named as flags. */
  get problem(): string {
    return this.#problem(asFlag);
  }

  /** What is wrong, other settings named by `name`. */
  problemAs(name: SettingNamer): string {
    return this.#problem(name);
  }
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
/**
 * A host of numbers only (decimal, 0-octal or 0x-hex parts between dots): not a DNS name, but an IPv4 address in a
 * form the resolver also reads (inet_aton), short ("127.1"), octal ("010.0.0.1") or one number ("0", "2130706433").
 */
const NUMERIC_HOST = /^(?:0x[0-9a-f]*|\d+)(?:\.(?:0x[0-9a-f]*|\d+))*$/i;
/** Linux interface names: 1-15 bytes, no "/" or whitespace (dev_valid_name). */
const IFNAME = /^[A-Za-z0-9_.:@-]{1,15}$/;

function isIpv6(text: string): boolean {
  try {
    return new URL(`http://[${text}]/`).hostname.length > 2;
  } catch {
    return false;
  }
}

/**
 * parseListen reads a listen address: ":4672" (every address), "127.0.0.1:4672", "[::1]:4672",
 * "localhost:4672". The port is required (0 = any free port); a URL ("http://127.0.0.1:80") is refused as one.
 */
export function parseListen(text: string): ListenAddress {
  const value = text.trim();
  const bad = (why: string): DaemonOptionError =>
    new DaemonOptionError("listen", `${why} in ${JSON.stringify(text)}; use :PORT, HOST:PORT or [IPV6]:PORT`);
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(value);
  if (scheme !== null) {
    const address = value.slice(scheme[0].length).replace(/\/.*$/, "");
    throw new DaemonOptionError(
      "listen",
      `${JSON.stringify(text)} is a URL: the listen address is HOST:PORT without a scheme, e.g. ${JSON.stringify(address)} ` +
        "(HTTPS comes from --tls-cert and --tls-key)",
    );
  }
  let hostPart: string;
  let portPart: string;
  if (value.startsWith("[")) {
    const close = value.indexOf("]");
    if (close < 0 || value[close + 1] !== ":") throw bad("expected [IPV6]:PORT");
    hostPart = value.slice(1, close);
    portPart = value.slice(close + 2);
    if (!isIpv6(hostPart)) throw bad(`${JSON.stringify(hostPart)} is not an IPv6 address`);
  } else {
    const colon = value.lastIndexOf(":");
    if (colon < 0) throw bad("missing port");
    hostPart = value.slice(0, colon);
    portPart = value.slice(colon + 1);
    if (hostPart.includes(":")) throw bad("an IPv6 address needs brackets");
    if (hostPart !== "" && !IPV4.test(hostPart) && !HOSTNAME.test(hostPart)) {
      throw bad(`${JSON.stringify(hostPart)} is not an address or host name`);
    }
    if (hostPart !== "" && !IPV4.test(hostPart) && NUMERIC_HOST.test(hostPart)) {
      // The resolver reads it as an IPv4 address (inet_aton: "127.1" is 127.0.0.1, "010.0.0.1" is 8.0.0.1, "0" is
      // every address), which gorb would not see as the address it is (loopback or not).
      throw bad(`${JSON.stringify(hostPart)} is not an IPv4 address written in full (four decimal numbers, e.g. 127.0.0.1)`);
    }
  }
  if (!/^\d{1,5}$/.test(portPart) || Number(portPart) > LIMITS.port.max) throw bad(`port must be 0-${LIMITS.port.max}`);
  return { host: hostPart === "" ? null : hostPart, port: Number(portPart) };
}

/**
 * True when `host` (an address literal without brackets, or "localhost" in any case) is only reachable from this
 * machine ("127.0.0.1", "::1"); every address (null) is not.
 */
export function isLoopbackHost(host: string | null): boolean {
  if (host === null) return false;
  if (host.toLowerCase() === "localhost") return true;
  const bytes = parseAddress(host);
  return bytes !== null && isLoopback(bytes);
}

/** True when the listen address is loopback only (see isLoopbackHost). */
export function isLoopbackListen(listen: ListenAddress): boolean {
  return isLoopbackHost(listen.host);
}

/** formatListen writes a ListenAddress back as text (":4672", "[::1]:4672"). */
export function formatListen(listen: ListenAddress): string {
  return listen.host === null ? `:${listen.port}` : hostPort(listen.host, listen.port);
}

const SIZE = /^(\d+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i;
const SIZE_UNIT: Record<string, number> = {
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

/** parseSize reads a byte size: "65536", "64k", "1m", "1MiB" (units are powers of 1024). */
export function parseSize(flag: string, text: string): number {
  const match = SIZE.exec(text.trim());
  if (match === null) throw new DaemonOptionError(flag, `expected a size such as 65536, 64k or 1m, got ${JSON.stringify(text)}`);
  const bytes = Number(match[1]) * (SIZE_UNIT[(match[2] ?? "b").toLowerCase()] ?? 1);
  if (bytes < 1024 || bytes > 1024 ** 3) {
    throw new DaemonOptionError(flag, `must be between 1k and 1g, got ${JSON.stringify(text)}`);
  }
  return bytes;
}

function interfaceName(flag: string, text: string | undefined): string | null {
  if (text === undefined) return null;
  if (!IFNAME.test(text)) {
    throw new DaemonOptionError(flag, `${JSON.stringify(text)} is not a network interface name (1-15 characters)`);
  }
  return text;
}

function consulUrl(text: string | undefined): string | null {
  if (text === undefined) return null;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new DaemonOptionError("consul", `${JSON.stringify(text)} is not a URL; use e.g. http://127.0.0.1:8500`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new DaemonOptionError("consul", `must be an http:// or https:// URL, got ${JSON.stringify(text)}`);
  }
  return text;
}

const INTERVAL = /^(\d+)(ms|s|m|h)$/;
const INTERVAL_UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** parseInterval reads a period such as "30s", "5m" or "1500ms"; "0" or "off" is 0 (turned off). */
export function parseInterval(flag: string, text: string): number {
  const value = text.trim().toLowerCase();
  if (value === "0" || value === "off") return 0;
  const match = INTERVAL.exec(value);
  if (match === null) {
    throw new DaemonOptionError(flag, `expected a duration such as 30s, 5m or 1500ms (0 or off: never), got ${JSON.stringify(text)}`);
  }
  const ms = Number(match[1]) * (INTERVAL_UNIT[match[2] ?? "s"] ?? 1000);
  if (ms === 0) return 0; // "0s", "0m": off, as "0" is
  if (ms < MIN_RECONCILE_INTERVAL_MS || ms > MAX_RECONCILE_INTERVAL_MS) {
    const bound = (limit: number) => (limit % 3_600_000 === 0 ? `${limit / 3_600_000}h` : `${limit / 1000}s`);
    throw new DaemonOptionError(flag, `must be between ${bound(MIN_RECONCILE_INTERVAL_MS)} and ${bound(MAX_RECONCILE_INTERVAL_MS)} (or 0 to turn it off), got ${JSON.stringify(text)}`);
  }
  return ms;
}

/** A count limit: a whole number 1..10^9, or undefined/"0"/"unlimited" for none. */
function probeMarks(text: string | undefined): MarkRange {
  if (text === undefined) return DEFAULT_PROBE_MARKS;
  try {
    return parseMarkRange(text);
  } catch (error) {
    if (error instanceof MarkRangeError) throw new DaemonOptionError("probe-marks", error.problem);
    throw error;
  }
}

function parseLimit(flag: string, text: string | undefined): number | null {
  if (text === undefined) return null;
  const value = text.trim().toLowerCase();
  if (value === "unlimited") return null;
  if (!/^\d{1,10}$/.test(value) || Number(value) > 1e9) {
    throw new DaemonOptionError(flag, `expected a whole number (0 or unlimited: no limit), got ${JSON.stringify(text)}`);
  }
  // 0 however written ("00" too) is no limit: as a limit it would refuse every service or backend.
  return Number(value) === 0 ? null : Number(value);
}

function stateDir(flags: DaemonFlags): string | null {
  if (flags.state === false) return null;
  const dir = flags.stateDir ?? DEFAULT_STATE_DIR;
  if (dir.trim() === "" || /[\u0000-\u001f]/.test(dir)) {
    throw new DaemonOptionError("state-dir", `must be a directory path, got ${JSON.stringify(dir)}`);
  }
  return dir;
}

/** What is wrong with a token's text (the API's or Consul's), or null. */
export function secretProblem(text: string): string | null {
  return /[\s\u0000-\u001f\u007f]/.test(text) ? "must not contain whitespace or control characters" : null;
}

function secret(flag: string, value: string | undefined): string | null {
  // Only a configuration file can give an empty one (the command line refuses it, the environment's is unset): taken
  // as none, `token: ""` would start an API open to anyone who reaches it.
  if (value === "") throw new DaemonOptionError(flag, (n) => `is empty: give the token, or leave ${n(flag)} out for none`);
  const text = value ?? null;
  const problem = text === null ? null : secretProblem(text);
  if (problem !== null) throw new DaemonOptionError(flag, problem);
  return text;
}

function filePath(flag: string, value: string | undefined): string | null {
  if (value === undefined) return null;
  if (value.trim() === "" || /[\u0000-\u001f]/.test(value)) {
    throw new DaemonOptionError(flag, `must be a file path, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** One of a secret given inline or in a file; both is an error naming the two flags. */
function secretOrFile(flag: string, value: string | undefined, fileFlag: string, file: string | undefined) {
  const inline = secret(flag, value);
  const path = filePath(fileFlag, file);
  if (inline !== null && path !== null) throw new DaemonOptionError(fileFlag, (n) => `give either ${n(flag)} or ${n(fileFlag)}, not both`);
  return { inline, path };
}

function allowList(text: string | undefined): Cidr[] {
  if (text === undefined) return [];
  try {
    return parseCidrList(text);
  } catch (error) {
    if (error instanceof CidrError) throw new DaemonOptionError("allow", error.message);
    throw error;
  }
}

function originList(text: string | undefined): string[] {
  if (text === undefined) return [];
  return text
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "")
    .map((item) => {
      const origin = normalizeOrigin(item);
      if (origin === null) {
        throw new DaemonOptionError("allow-origin", `${JSON.stringify(item)} is not an origin; use e.g. https://ops.example.com`);
      }
      return origin;
    });
}

function maxConnections(text: string | undefined): number {
  if (text === undefined) return DEFAULT_MAX_CONNECTIONS;
  if (!/^\d{1,6}$/.test(text.trim()) || Number(text) < 1 || Number(text) > 100_000) {
    throw new DaemonOptionError("max-connections", `must be a whole number from 1 to 100000, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

function tls(flags: DaemonFlags): DaemonOptions["tls"] {
  const certFile = filePath("tls-cert", flags.tlsCert);
  const keyFile = filePath("tls-key", flags.tlsKey);
  if (certFile === null && keyFile === null) return null;
  if (certFile === null) throw new DaemonOptionError("tls-cert", (n) => `is required with ${n("tls-key")}`);
  if (keyFile === null) throw new DaemonOptionError("tls-key", (n) => `is required with ${n("tls-cert")}`);
  return { certFile, keyFile };
}

function unknownDestinations(text: string | undefined): UnknownDestinationMode {
  if (text === undefined) return DEFAULT_UNKNOWN_DESTINATIONS;
  const mode = UNKNOWN_DESTINATION_MODES.find((m) => m === text);
  if (mode === undefined) {
    throw new DaemonOptionError("unknown-destinations", `must be one of ${UNKNOWN_DESTINATION_MODES.join(", ")}, got ${JSON.stringify(text)}`);
  }
  return mode;
}

/** A hold-down: "0", "3s", "1500ms", up to 1h. */
function holdDown(text: string): number {
  const value = text.trim().toLowerCase();
  if (value === "0") return 0;
  const match = INTERVAL.exec(value);
  const ms = match === null ? NaN : Number(match[1]) * (INTERVAL_UNIT[match[2] ?? "s"] ?? 1000);
  if (!(ms >= 0 && ms <= 3_600_000)) {
    throw new DaemonOptionError("bgp-hold-down", `expected a duration from 0 to 1h such as 3s or 500ms, got ${JSON.stringify(text)}`);
  }
  return ms;
}

function bgp(flags: DaemonFlags): BgpOptions | null {
  const socket = filePath("bgp-bird-socket", flags.bgpBirdSocket);
  if (socket === null) {
    for (const [flag, value] of [["bgp-include", flags.bgpInclude], ["bgp-protocol", flags.bgpProtocol], ["bgp-hold-down", flags.bgpHoldDown]] as const) {
      if (value !== undefined) throw new DaemonOptionError(flag, (n) => `needs ${n("bgp-bird-socket")}`);
    }
    return null;
  }
  const protocol = flags.bgpProtocol ?? DEFAULT_BGP_PROTOCOL;
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(protocol)) {
    throw new DaemonOptionError("bgp-protocol", `must be a BIRD protocol name (letters, digits, _), got ${JSON.stringify(protocol)}`);
  }
  // The include file names the IPv6 protocol <name>6 (src/bgp/include-file.ts): "ipv" gives "ipv6", a keyword.
  for (const name of [protocol, `${protocol}6`]) {
    if (isBirdReservedWord(name)) {
      const which = name === protocol ? "" : ` (the name of its IPv6 protocol, ${JSON.stringify(name)})`;
      throw new DaemonOptionError(
        "bgp-protocol",
        `${JSON.stringify(protocol)}${which} is a word BIRD reserves (a keyword or predefined name) and refuses as a protocol name; choose another, e.g. ${DEFAULT_BGP_PROTOCOL}`,
      );
    }
  }
  return {
    socket,
    include: filePath("bgp-include", flags.bgpInclude) ?? DEFAULT_BGP_INCLUDE,
    protocol,
    holdDownMs: holdDown(flags.bgpHoldDown ?? DEFAULT_BGP_HOLD_DOWN),
    keepOnExit: flags.bgpKeepOnExit ?? false,
  };
}

const HOST_PORT = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;
const PREFIX = /^(?:\/[A-Za-z0-9._-]+)+$/;

/** --store etcd://HOST:PORT[,HOST:PORT...]/PREFIX (etcds:// for HTTPS) and the etcd TLS/auth flags. */
function sharedStore(flags: DaemonFlags): SharedStoreOptions | null {
  const text = flags.store;
  const caFile = filePath("etcd-ca", flags.etcdCa);
  const certFile = filePath("etcd-cert", flags.etcdCert);
  const keyFile = filePath("etcd-key", flags.etcdKey);
  const user = flags.etcdUser === undefined || flags.etcdUser === "" ? null : flags.etcdUser;
  const passwordFile = filePath("etcd-password-file", flags.etcdPasswordFile);
  if (text === undefined || text === "" || text === "sqlite") {
    for (const [flag, value] of [["etcd-ca", caFile], ["etcd-cert", certFile], ["etcd-key", keyFile], ["etcd-user", user], ["etcd-password-file", passwordFile]] as const) {
      if (value !== null) throw new DaemonOptionError(flag, (n) => `needs ${n("store")} etcd://...`);
    }
    return null;
  }
  const match = /^(etcds?):\/\/([^/]+)(\/.*)?$/.exec(text);
  if (match === null) {
    throw new DaemonOptionError("store", `expected etcd://HOST:PORT[,HOST:PORT...]/PREFIX, got ${JSON.stringify(text)}`);
  }
  const scheme = match[1] === "etcds" ? "https" : "http";
  const hosts = (match[2] ?? "").split(",");
  for (const host of hosts) {
    if (!HOST_PORT.test(host)) throw new DaemonOptionError("store", `${JSON.stringify(host)} is not HOST:PORT`);
    const port = Number(host.slice(host.lastIndexOf(":") + 1));
    const { min, max } = LIMITS.port;
    if (port < min || port > max) throw new DaemonOptionError("store", `port ${port} of ${JSON.stringify(host)} is not ${min}-${max}`);
  }
  const prefix = (match[3] ?? "/gorb").replace(/\/+$/, "") || "/gorb";
  if (!PREFIX.test(prefix)) {
    throw new DaemonOptionError("store", `the key prefix must be /NAME[/NAME...] of letters, digits, ".", "_" or "-", got ${JSON.stringify(prefix)}`);
  }
  if (scheme === "http") {
    // Plain HTTP has no use for them: taking them silently would leave the connection (and a password) in clear.
    for (const [flag, value] of [["etcd-ca", caFile], ["etcd-cert", certFile], ["etcd-key", keyFile]] as const) {
      if (value !== null) throw new DaemonOptionError(flag, `needs etcds://... (etcd:// is plain HTTP, where the file would be ignored)`);
    }
  }
  if ((certFile === null) !== (keyFile === null)) {
    throw new DaemonOptionError(certFile === null ? "etcd-cert" : "etcd-key", (n) => `${n("etcd-cert")} and ${n("etcd-key")} go together`);
  }
  if ((user === null) !== (passwordFile === null)) {
    throw new DaemonOptionError(user === null ? "etcd-user" : "etcd-password-file", (n) => `${n("etcd-user")} and ${n("etcd-password-file")} go together`);
  }
  return { endpoints: hosts.map((h) => `${scheme}://${h}`), prefix, caFile, certFile, keyFile, user, passwordFile };
}

function nodeId(text: string | undefined): string | null {
  if (text === undefined || text === "") return null;
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(text)) {
    throw new DaemonOptionError("node-id", `must be 1-64 letters, digits, ".", "_" or "-", got ${JSON.stringify(text)}`);
  }
  return text;
}

/** --check-exec-dir: absolute directory paths, comma-separated; none given: null (the checkers' default). */
function checkExecDirs(text: string | undefined): readonly string[] | null {
  if (text === undefined) return null;
  const dirs = text
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
  if (dirs.length === 0) throw new DaemonOptionError("check-exec-dir", "expected one or more absolute directory paths");
  for (const dir of dirs) {
    if (!dir.startsWith("/") || /[\u0000-\u001f]/.test(dir) || dir.split("/").includes("..")) {
      throw new DaemonOptionError("check-exec-dir", `must be an absolute directory path without "..", got ${JSON.stringify(dir)}`);
    }
  }
  return [...new Set(dirs.map((d) => d.replace(/\/+$/, "") || "/"))];
}

/**
 * parseDaemonOptions checks the flags of `gorb serve` and fills in defaults. Throws DaemonOptionError naming
 * the flag and the problem.
 */
export function parseDaemonOptions(flags: DaemonFlags): DaemonOptions {
  const token = secretOrFile("token", flags.token, "token-file", flags.tokenFile);
  const consul = secretOrFile("consul-token", flags.consulToken, "consul-token-file", flags.consulTokenFile);
  return {
    listen: parseListen(flags.listen ?? DEFAULT_LISTEN),
    interface: interfaceName("interface", flags.interface),
    flush: flags.flush ?? false,
    consulUrl: consulUrl(flags.consul),
    verbose: flags.verbose ?? false,
    vipInterface: interfaceName("vip-interface", flags.vipInterface),
    token: token.inline,
    tokenFile: token.path,
    allow: allowList(flags.allow),
    allowOrigins: originList(flags.allowOrigin),
    maxConnections: maxConnections(flags.maxConnections),
    tls: tls(flags),
    consulToken: consul.inline,
    consulTokenFile: consul.path,
    bodyLimitBytes: parseSize("body-limit", flags.bodyLimit ?? DEFAULT_BODY_LIMIT),
    stateDir: stateDir(flags),
    reconcileIntervalMs: parseInterval("reconcile-interval", flags.reconcileInterval ?? DEFAULT_RECONCILE_INTERVAL),
    unknownDestinations: unknownDestinations(flags.unknownDestinations),
    maxServices: parseLimit("max-services", flags.maxServices),
    maxBackends: parseLimit("max-backends", flags.maxBackends),
    probeMarks: probeMarks(flags.probeMarks),
    sharedStore: sharedStore(flags),
    nodeId: nodeId(flags.nodeId),
    configPath: null,
    configSettings: null,
    declared: null,
    ui: flags.ui ?? true,
    bgp: bgp(flags),
    ipvsSysctls: flags.ipvsSysctls ?? true,
    hookDir: hookDir(flags.hookDir),
    checkExecDirs: checkExecDirs(flags.checkExecDir),
  };
}

/** --hook-dir: an absolute directory, without "." or ".." parts. */
function hookDir(text: string | undefined): string {
  if (text === undefined || text === "") return DEFAULTS.hookDir;
  const dir = text.length > 1 ? text.replace(/\/+$/, "") : text;
  if (!dir.startsWith("/") || dir.split("/").some((p) => p === "." || p === "..") || /[\u0000-\u001f]/.test(dir)) {
    throw new DaemonOptionError("hook-dir", `must be an absolute directory, got ${JSON.stringify(text)}`);
  }
  return dir;
}
