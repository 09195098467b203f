/**
 * An independent reader of the kernel's IPVS table: parses `ipvsadm -Ln` and its `--stats`, `--rate`,
 * `--thresholds`, `--persistent-conn` and `--tun-info` views (with or without `--exact`) into plain objects.
 * Kernel tests compare what gorb believes it configured against this view, which shares no code with gorb.
 *
 * The parser is driven by the column headers ipvsadm prints, so each view is recognised, not guessed. Lines it does
 * not understand raise {@link IpvsadmParseError} naming the line: a silent misparse would hide a kernel difference.
 */
import { ipvsadm } from "./sh.ts";

/** Which `ipvsadm -L` view the text came from. */
export type IpvsadmView = "default" | "stats" | "rate" | "thresholds" | "persistent-conn" | "tun-info";

/** Forwarding method as ipvsadm prints it. */
export type IpvsadmForward = "Masq" | "Route" | "Tunnel" | "Local";

/** Counters from `--stats` (numbers above 10^8 are rounded by ipvsadm unless `--exact`). */
export interface IpvsadmStats {
  readonly conns: number;
  readonly inPkts: number;
  readonly outPkts: number;
  readonly inBytes: number;
  readonly outBytes: number;
}

/** Rates from `--rate`, per second. */
export interface IpvsadmRates {
  readonly cps: number;
  readonly inPps: number;
  readonly outPps: number;
  readonly inBps: number;
  readonly outBps: number;
}

/** Tunnel settings from `--tun-info`. */
export interface IpvsadmTunnel {
  readonly type: "ipip" | "gue" | "gre";
  /** GUE destination port. */
  readonly port: number | null;
  /** Checksum mode: `-c` none, `+c` csum, `r+c` remote csum; null when ipvsadm printed none (ipip). */
  readonly checksum: "nocsum" | "csum" | "remcsum" | null;
}

/** One real server line (`  -> address:port ...`). Fields the view does not show are absent. */
export interface IpvsadmDestination {
  readonly family: "inet" | "inet6";
  readonly address: string;
  readonly port: number;
  readonly forward?: IpvsadmForward;
  readonly weight?: number;
  readonly activeConns?: number;
  readonly inactiveConns?: number;
  readonly upperThreshold?: number;
  readonly lowerThreshold?: number;
  readonly persistentConns?: number;
  /** `--tun-info`: null for non-tunnel destinations (printed `n/a`). */
  readonly tunnel?: IpvsadmTunnel | null;
  readonly stats?: IpvsadmStats;
  readonly rates?: IpvsadmRates;
}

/** One virtual service line and its destinations. */
export interface IpvsadmService {
  /** Service as ipvsadm names it: `TCP  10.0.0.1:80` -> `TCP 10.0.0.1:80`, `FWM  8 IPv6` -> `FWM 8 IPv6`. */
  readonly key: string;
  readonly protocol: "TCP" | "UDP" | "SCTP" | "FWM";
  readonly family: "inet" | "inet6";
  /** Virtual address; null for firewall-mark services. */
  readonly address: string | null;
  /** Virtual port; null for firewall-mark services. */
  readonly port: number | null;
  /** Firewall mark; null for address services. */
  readonly fwmark: number | null;
  /** Scheduler name; absent in the `--stats` and `--rate` views, which do not print it. */
  readonly scheduler?: string;
  /** Everything printed after the scheduler, verbatim (e.g. `(sh-fallback,sh-port) persistent 120 mask 64`). */
  readonly flagsText?: string;
  /** Scheduler flags from the parenthesised list, e.g. `["sh-fallback", "sh-port"]`. */
  readonly schedFlags?: readonly string[];
  /** Persistence; null when the service is not persistent. `mask` is a dotted netmask (IPv4) or prefix length (IPv6), null when ipvsadm omits it (full mask). */
  readonly persistence?: { readonly timeout: number; readonly mask: string | null } | null;
  /** Persistence engine (`pe sip`), null when none. */
  readonly pe?: string | null;
  /** One-packet scheduling (`ops`). */
  readonly onePacket?: boolean;
  readonly stats?: IpvsadmStats;
  readonly rates?: IpvsadmRates;
  readonly destinations: IpvsadmDestination[];
}

/** A parsed `ipvsadm -L` listing. */
export interface IpvsadmListing {
  readonly view: IpvsadmView;
  /** From the banner line, e.g. `1.2.1`; null when ipvsadm printed no banner (single-service listings). */
  readonly version: string | null;
  /** Connection hash table size from the banner, null without a banner. */
  readonly tableSize: number | null;
  readonly services: IpvsadmService[];
}

/** A line of ipvsadm output the parser does not understand. */
export class IpvsadmParseError extends Error {
  constructor(
    readonly lineNumber: number,
    readonly line: string,
    problem: string,
  ) {
    super(`ipvsadm output line ${lineNumber} (${JSON.stringify(line)}): ${problem}`);
    this.name = "IpvsadmParseError";
  }
}

const BANNER = /^IP Virtual Server version (\S+) \(size=(\d+)\)$/;
const SERVICE_ADDR = /^(TCP|UDP|SCTP)\s+(\S+)(?:\s+(.*))?$/;
const SERVICE_FWM = /^FWM\s+(\d+)(\s+IPv6)?(?:\s+(.*))?$/;
const DESTINATION = /^\s+->\s+(\S+)(?:\s+(.*))?$/;
const FORWARDS: readonly IpvsadmForward[] = ["Masq", "Route", "Tunnel", "Local"];

/** Splits `1.2.3.4:80` or `[2001:db8::1]:80` into family, address and port. */
export function parseEndpoint(text: string): { family: "inet" | "inet6"; address: string; port: number } {
  const v6 = /^\[([0-9A-Fa-f:.]+)\]:(\d+)$/.exec(text);
  if (v6) return { family: "inet6", address: v6[1] ?? "", port: Number(v6[2]) };
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d+)$/.exec(text);
  if (v4) return { family: "inet", address: v4[1] ?? "", port: Number(v4[2]) };
  throw new Error(`not an address:port: ${JSON.stringify(text)}`);
}

/**
 * Parses one counter as ipvsadm prints it: a plain integer, or (without `--exact`, above 10^8) an integer with a
 * K/M/G/T suffix meaning thousands/millions/billions/trillions.
 */
export function parseCounter(text: string): number {
  const m = /^(\d+)([KMGT]?)$/.exec(text);
  if (!m) throw new Error(`not a counter: ${JSON.stringify(text)}`);
  const scale = { "": 1, K: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2] ?? ""] ?? 1;
  return Number(m[1]) * scale;
}

/** Parses a `--tun-info` cell: `n/a`, `ipip`, `gue:6080:+c`, `gre:-c`, `gue:7000:r+c`. */
export function parseTunnelInfo(text: string): IpvsadmTunnel | null {
  if (text === "n/a") return null;
  const checksum = (c: string | undefined): IpvsadmTunnel["checksum"] => {
    if (c === undefined) return null;
    if (c === "-c") return "nocsum";
    if (c === "+c") return "csum";
    if (c === "r+c") return "remcsum";
    throw new Error(`unknown tunnel checksum mode ${JSON.stringify(c)}`);
  };
  if (text === "ipip") return { type: "ipip", port: null, checksum: null };
  const gue = /^gue:(\d+)(?::(\S+))?$/.exec(text);
  if (gue) return { type: "gue", port: Number(gue[1]), checksum: checksum(gue[2]) };
  const gre = /^gre(?::(\S+))?$/.exec(text);
  if (gre) return { type: "gre", port: null, checksum: checksum(gre[1]) };
  throw new Error(`unknown tunnel info ${JSON.stringify(text)}`);
}

/** Recognises the view from the `Prot LocalAddress:Port ...` header and the `  -> RemoteAddress:Port ...` header. */
function viewOf(protHeader: string, destHeader: string): IpvsadmView | undefined {
  const cols = protHeader.split(/\s+/).slice(2).join(" ");
  const destCols = destHeader.trim().split(/\s+/).slice(2).join(" ");
  if (cols === "Conns InPkts OutPkts InBytes OutBytes") return "stats";
  if (cols === "CPS InPPS OutPPS InBPS OutBPS") return "rate";
  if (cols === "Uthreshold Lthreshold ActiveConn InActConn") return "thresholds";
  if (cols === "Weight PersistConn ActiveConn InActConn") return "persistent-conn";
  if (cols === "Scheduler Flags") {
    if (destCols === "Forward Weight ActiveConn InActConn") return "default";
    if (destCols === "Forward TunnelInfo Weight ActiveConn InActConn") return "tun-info";
  }
  return undefined;
}

type MutableService = { -readonly [K in keyof IpvsadmService]: IpvsadmService[K] };

/** Parses `sched [(flags)] [persistent N [mask M]] [pe NAME] [ops]` into the service. */
function parseServiceFlags(service: MutableService, rest: string): void {
  const tokens = rest.split(/\s+/).filter((t) => t !== "");
  const scheduler = tokens.shift();
  if (!scheduler) throw new Error("missing scheduler");
  service.scheduler = scheduler;
  service.flagsText = tokens.join(" ");
  service.schedFlags = [];
  service.persistence = null;
  service.pe = null;
  service.onePacket = false;
  if (tokens[0]?.startsWith("(")) {
    const list = tokens.shift() ?? "";
    if (!list.endsWith(")")) throw new Error(`unterminated scheduler flags ${JSON.stringify(list)}`);
    service.schedFlags = list.slice(1, -1).split(",").filter((f) => f !== "");
  }
  while (tokens.length > 0) {
    const word = tokens.shift();
    if (word === "persistent") {
      const timeout = tokens.shift();
      if (!timeout || !/^\d+$/.test(timeout)) throw new Error(`persistent without a timeout (got ${JSON.stringify(timeout)})`);
      service.persistence = { timeout: Number(timeout), mask: null };
    } else if (word === "mask") {
      const mask = tokens.shift();
      if (!mask || !service.persistence) throw new Error("mask without a value or outside persistence");
      service.persistence = { timeout: service.persistence.timeout, mask };
    } else if (word === "pe") {
      const pe = tokens.shift();
      if (!pe) throw new Error("pe without a name");
      service.pe = pe;
    } else if (word === "ops") {
      service.onePacket = true;
    } else {
      throw new Error(`unknown service flag ${JSON.stringify(word)}`);
    }
  }
}

function counters(cells: string[], expected: number): number[] {
  if (cells.length !== expected) throw new Error(`expected ${expected} columns, got ${cells.length}`);
  return cells.map(parseCounter);
}

function integer(cell: string | undefined, what: string): number {
  if (cell === undefined || !/^-?\d+$/.test(cell)) throw new Error(`${what} is not an integer: ${JSON.stringify(cell)}`);
  return Number(cell);
}

function statsOf(cells: string[]): IpvsadmStats {
  const [conns = 0, inPkts = 0, outPkts = 0, inBytes = 0, outBytes = 0] = counters(cells, 5);
  return { conns, inPkts, outPkts, inBytes, outBytes };
}

function ratesOf(cells: string[]): IpvsadmRates {
  const [cps = 0, inPps = 0, outPps = 0, inBps = 0, outBps = 0] = counters(cells, 5);
  return { cps, inPps, outPps, inBps, outBps };
}

function forwardOf(cell: string | undefined): IpvsadmForward {
  const forward = FORWARDS.find((f) => f === cell);
  if (!forward) throw new Error(`unknown forwarding method ${JSON.stringify(cell)}`);
  return forward;
}

function parseDestination(view: IpvsadmView, endpoint: string, rest: string): IpvsadmDestination {
  const { family, address, port } = parseEndpoint(endpoint);
  const base = { family, address, port };
  const cells = rest.split(/\s+/).filter((c) => c !== "");
  const need = (n: number): void => {
    if (cells.length !== n) throw new Error(`expected ${n} columns after the address, got ${cells.length}`);
  };
  switch (view) {
    case "default":
      need(4);
      return { ...base, forward: forwardOf(cells[0]), weight: integer(cells[1], "weight"), activeConns: integer(cells[2], "ActiveConn"), inactiveConns: integer(cells[3], "InActConn") };
    case "tun-info":
      need(5);
      return {
        ...base,
        forward: forwardOf(cells[0]),
        tunnel: parseTunnelInfo(cells[1] ?? ""),
        weight: integer(cells[2], "weight"),
        activeConns: integer(cells[3], "ActiveConn"),
        inactiveConns: integer(cells[4], "InActConn"),
      };
    case "thresholds":
      need(4);
      return { ...base, upperThreshold: integer(cells[0], "Uthreshold"), lowerThreshold: integer(cells[1], "Lthreshold"), activeConns: integer(cells[2], "ActiveConn"), inactiveConns: integer(cells[3], "InActConn") };
    case "persistent-conn":
      need(4);
      return { ...base, weight: integer(cells[0], "weight"), persistentConns: integer(cells[1], "PersistConn"), activeConns: integer(cells[2], "ActiveConn"), inactiveConns: integer(cells[3], "InActConn") };
    case "stats":
      return { ...base, stats: statsOf(cells) };
    case "rate":
      return { ...base, rates: ratesOf(cells) };
  }
}

/** Parses the output of `ipvsadm -L -n` in any of its views. Throws {@link IpvsadmParseError} on unknown lines. */
export function parseIpvsadmList(text: string): IpvsadmListing {
  const lines = text.split("\n");
  let version: string | null = null;
  let tableSize: number | null = null;
  let view: IpvsadmView | undefined;
  const services: MutableService[] = [];
  let current: MutableService | undefined;

  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? "").replace(/\s+$/, "");
    const fail = (problem: string): never => {
      throw new IpvsadmParseError(i + 1, lines[i] ?? "", problem);
    };
    const guard = <T>(fn: () => T): T => {
      try {
        return fn();
      } catch (err) {
        if (err instanceof IpvsadmParseError) throw err;
        return fail(err instanceof Error ? err.message : String(err));
      }
    };
    if (line === "") continue;
    const banner = BANNER.exec(line);
    if (banner) {
      version = banner[1] ?? null;
      tableSize = Number(banner[2]);
      continue;
    }
    if (line.startsWith("Prot LocalAddress:Port")) {
      const destHeader = (lines[i + 1] ?? "").replace(/\s+$/, "");
      if (!destHeader.trim().startsWith("-> RemoteAddress:Port")) fail("header not followed by the '-> RemoteAddress:Port' header");
      view = viewOf(line, destHeader);
      if (!view) fail(`unknown column headers ${JSON.stringify(line)} / ${JSON.stringify(destHeader.trim())}`);
      i++;
      continue;
    }
    if (!view) fail("data before the column headers");
    const v = view as IpvsadmView;
    const dest = DESTINATION.exec(line);
    if (dest) {
      if (!current) fail("destination line before any service line");
      const parsed = guard(() => parseDestination(v, dest[1] ?? "", dest[2] ?? ""));
      current?.destinations.push(parsed);
      continue;
    }
    const addr = SERVICE_ADDR.exec(line);
    const fwm = addr ? null : SERVICE_FWM.exec(line);
    if (!addr && !fwm) fail("neither a service, a destination nor a header line");
    let service: MutableService;
    let rest: string;
    if (addr) {
      const endpoint = guard(() => parseEndpoint(addr[2] ?? ""));
      const protocol = addr[1] as "TCP" | "UDP" | "SCTP";
      service = { key: `${protocol} ${addr[2]}`, protocol, family: endpoint.family, address: endpoint.address, port: endpoint.port, fwmark: null, destinations: [] };
      rest = addr[3] ?? "";
    } else {
      const m = fwm as RegExpExecArray;
      const inet6 = m[2] !== undefined;
      service = { key: `FWM ${m[1]}${inet6 ? " IPv6" : ""}`, protocol: "FWM", family: inet6 ? "inet6" : "inet", address: null, port: null, fwmark: Number(m[1]), destinations: [] };
      rest = m[3] ?? "";
    }
    if (v === "stats") service.stats = guard(() => statsOf(rest.split(/\s+/).filter((c) => c !== "")));
    else if (v === "rate") service.rates = guard(() => ratesOf(rest.split(/\s+/).filter((c) => c !== "")));
    else guard(() => parseServiceFlags(service, rest));
    services.push(service);
    current = service;
  }
  if (!view) throw new IpvsadmParseError(0, "", "no 'Prot LocalAddress:Port' header: not ipvsadm -L output");
  return { view, version, tableSize, services };
}

/** Command-line flags that select each view. */
const VIEW_FLAGS: Record<IpvsadmView, string[]> = {
  default: [],
  stats: ["--stats"],
  rate: ["--rate"],
  thresholds: ["--thresholds"],
  "persistent-conn": ["--persistent-conn"],
  "tun-info": ["--tun-info"],
};

/** Runs `ipvsadm -L -n` in the guest with the flags of `view` (and, for stats and rate, `--exact` unless told otherwise) and parses it. */
export function listIpvs(view: IpvsadmView = "default", opts: { exact?: boolean } = {}): IpvsadmListing {
  const args = ["-L", "-n", ...VIEW_FLAGS[view]];
  if ((view === "stats" || view === "rate") && (opts.exact ?? true)) args.push("--exact");
  const listing = parseIpvsadmList(ipvsadm(...args));
  if (listing.view !== view) throw new Error(`asked ipvsadm for the ${view} view, got ${listing.view}`);
  return listing;
}

/** Finds a service by its {@link IpvsadmService.key} (e.g. `TCP 10.0.0.1:80`), throwing with the keys present. */
export function serviceByKey(listing: IpvsadmListing, key: string): IpvsadmService {
  const found = listing.services.find((s) => s.key === key);
  if (!found) throw new Error(`ipvsadm lists no service ${key}; it lists: ${listing.services.map((s) => s.key).join(", ") || "none"}`);
  return found;
}
