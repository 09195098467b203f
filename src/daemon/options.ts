/**
 * The daemon's options: what `gorb serve` hands to runDaemon after parsing and checking its flags (and the
 * configuration file's settings, which src/config/ turns into the same DaemonFlags; flags win).
 * Everything here is pure (no I/O): the interface names are only checked for shape, the daemon looks them up.
 */
import type { DeclaredService } from "../core/plan.ts";

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
  /** Bearer token every API request must carry, or null for an open API. */
  readonly token: string | null;
  /** Largest request body the API accepts, in bytes. */
  readonly bodyLimitBytes: number;
  /** Directory of the durable state (state.db), created when missing; null keeps nothing on disk (--no-state). */
  readonly stateDir: string | null;
  /** Milliseconds between two reconciles of the kernel table with gorb's state; 0 turns the periodic one off. */
  readonly reconcileIntervalMs: number;
  /** Most services gorb holds (--max-services); null = unlimited. */
  readonly maxServices: number | null;
  /** Most backends gorb holds over all services (--max-backends); null = unlimited. */
  readonly maxBackends: number | null;
  /** The configuration file (--config), re-read on SIGHUP; null without one. */
  readonly configPath: string | null;
  /**
   * The services the configuration file declares, applied at start-up (and on SIGHUP); null when there is no
   * file or it has no `services` key (then gorb never creates or deletes a service on the file's behalf).
   */
  readonly declared: readonly DeclaredService[] | null;
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
  readonly maxServices?: string | undefined;
  readonly maxBackends?: string | undefined;
}

/** DEFAULT_LISTEN is the original's listen address. */
export const DEFAULT_LISTEN = ":4672";
/** DEFAULT_BODY_LIMIT is the default largest request body (64 KiB, as the API; a service or backend body is < 1 KiB). */
export const DEFAULT_BODY_LIMIT = "64k";
/** DEFAULT_STATE_DIR is where the durable state lives unless --state-dir says otherwise. */
export const DEFAULT_STATE_DIR = "/var/lib/gorb";
/** DEFAULT_RECONCILE_INTERVAL is the period of the reconcile of the kernel table with gorb's state. */
export const DEFAULT_RECONCILE_INTERVAL = "30s";
/** The shortest reconcile period accepted. */
export const MIN_RECONCILE_INTERVAL_MS = 1000;

/** DaemonOptionError reports a bad flag value; `flag` is the long flag name without dashes ("listen"). */
export class DaemonOptionError extends Error {
  override readonly name = "DaemonOptionError";
  readonly flag: string;

  constructor(flag: string, problem: string) {
    super(`--${flag}: ${problem}`);
    this.flag = flag;
  }
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
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
 * "localhost:4672". The port is required (0 = any free port).
 */
export function parseListen(text: string): ListenAddress {
  const value = text.trim();
  const bad = (why: string): DaemonOptionError =>
    new DaemonOptionError("listen", `${why} in ${JSON.stringify(text)}; use :PORT, HOST:PORT or [IPV6]:PORT`);
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
  }
  if (!/^\d{1,5}$/.test(portPart) || Number(portPart) > 65535) throw bad(`port must be 0-65535`);
  return { host: hostPart === "" ? null : hostPart, port: Number(portPart) };
}

/** formatListen writes a ListenAddress back as text (":4672", "[::1]:4672"). */
export function formatListen(listen: ListenAddress): string {
  if (listen.host === null) return `:${listen.port}`;
  return listen.host.includes(":") ? `[${listen.host}]:${listen.port}` : `${listen.host}:${listen.port}`;
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
  if (ms < MIN_RECONCILE_INTERVAL_MS || ms > 24 * 3_600_000) {
    throw new DaemonOptionError(flag, `must be between 1s and 24h (or 0 to turn it off), got ${JSON.stringify(text)}`);
  }
  return ms;
}

/** A count limit: a whole number 1..10^9, or undefined/"0"/"unlimited" for none. */
function parseLimit(flag: string, text: string | undefined): number | null {
  if (text === undefined) return null;
  const value = text.trim().toLowerCase();
  if (value === "0" || value === "unlimited") return null;
  if (!/^\d{1,10}$/.test(value) || Number(value) > 1e9) {
    throw new DaemonOptionError(flag, `expected a whole number (0 or unlimited: no limit), got ${JSON.stringify(text)}`);
  }
  return Number(value);
}

function stateDir(flags: DaemonFlags): string | null {
  if (flags.state === false) return null;
  const dir = flags.stateDir ?? DEFAULT_STATE_DIR;
  if (dir.trim() === "" || /[\u0000-\u001f]/.test(dir)) {
    throw new DaemonOptionError("state-dir", `must be a directory path, got ${JSON.stringify(dir)}`);
  }
  return dir;
}

/**
 * parseDaemonOptions checks the flags of `gorb serve` and fills in defaults. Throws DaemonOptionError naming
 * the flag and the problem.
 */
export function parseDaemonOptions(flags: DaemonFlags): DaemonOptions {
  const token = flags.token === undefined || flags.token === "" ? null : flags.token;
  if (token !== null && /[\s\u0000-\u001f\u007f]/.test(token)) {
    throw new DaemonOptionError("token", "must not contain whitespace or control characters");
  }
  return {
    listen: parseListen(flags.listen ?? DEFAULT_LISTEN),
    interface: interfaceName("interface", flags.interface),
    flush: flags.flush ?? false,
    consulUrl: consulUrl(flags.consul),
    verbose: flags.verbose ?? false,
    vipInterface: interfaceName("vip-interface", flags.vipInterface),
    token,
    bodyLimitBytes: parseSize("body-limit", flags.bodyLimit ?? DEFAULT_BODY_LIMIT),
    stateDir: stateDir(flags),
    reconcileIntervalMs: parseInterval("reconcile-interval", flags.reconcileInterval ?? DEFAULT_RECONCILE_INTERVAL),
    maxServices: parseLimit("max-services", flags.maxServices),
    maxBackends: parseLimit("max-backends", flags.maxBackends),
    configPath: null,
    declared: null,
  };
}
