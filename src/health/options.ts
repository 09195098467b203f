/**
 * Pulse options: the GORB wire shape `{ type?, interval?, args? }` in, normalised PulseOptions out.
 * Pure (no I/O, no DNS): the monitor and the checkers only ever see normalised options.
 *
 * Decisions beyond the original (kobolog/gorb pulse/options.go, pulse/http.go):
 * - Types: tcp (default), http, https, udp, dns, tls, exec, none. Top-level keys match case-insensitively, as Go's decoder did;
 *   keys inside `args` are exact-case, as the original's map was.
 * - Durations (`interval`, `args.timeout`, `args.backoff`) use the original grammar plus `ms`; a unit is required.
 *   An interval below 100ms is refused so a typo ("5ms" for "5m") cannot flood a backend.
 * - Numeric args (`port`, `expect`, `rise`, `fall`) take JSON numbers or digit strings alike; anything else is an
 *   error naming the field (the original panicked on numbers and silently used defaults for junk).
 * - `args.host` / `args.port` redirect the probe for every probing type (tcp, http, https, udp), not only http.
 * - `type: "udp"` sends `args.send` (text) or `args.sendHex` (bytes) as one datagram and is Up when any datagram
 *   comes back before the timeout; an ICMP port-unreachable makes it Down at once. One of the two is required,
 *   because most UDP services stay silent on unknown input and a silent check would read as "always Down"
 *   (the original's UDP trap). For a UDP service with a TCP or HTTP health endpoint, use type tcp/http with
 *   `args.port` instead.
 * - https and tls take `ca` (absolute path of a PEM bundle, read by the checker) and `serverName` (SNI and the name
 *   the certificate must match; for https it defaults to `hostHeader` without its port).
 * - dns takes `name` (required), `qtype`, `rcode`, `answer`, `recursion`; exec takes `command` (absolute program,
 *   as a list or a space-split string) and `shell`; tls takes `expiryDays`.
 * - Args a type does not use are dropped (the original ignored all args except http's): not validated, not kept,
 *   not echoed (PULSE_ARG_KEYS); string args are capped in length by the REST contract (PULSE_ARG_MAX_LENGTH).
 */
import { isIP } from "node:net";
import { type Duration, MAX_DURATION_MS, describeValue, parseDuration } from "./duration.ts";
import { PulseOptionsError } from "./errors.ts";
import { DEFAULT_EXPECT, type ExpectSpec, parseExpect } from "./expect.ts";
import { isRecord } from "../record.ts";

/** PULSE_TYPES lists every PulseType, in the order error messages show them. */
export const PULSE_TYPES = ["tcp", "http", "https", "udp", "dns", "tls", "exec", "none"] as const;

/** PulseType is the kind of probe: tcp connect, http(s) request, udp datagram, dns query, tls handshake, an
 * operator's program (exec), or none (always Up). */
export type PulseType = (typeof PULSE_TYPES)[number];

/** The args every probing type reads. */
const PROBE_ARGS = ["host", "port", "timeout", "rise", "fall", "backoff"] as const;
const HTTP_ARGS = [...PROBE_ARGS, "method", "path", "expect", "hostHeader", "vhost"] as const;

/**
 * PULSE_ARG_KEYS lists, per type, the `args` keys that type uses (exact case). Every other key is dropped
 * when a pulse is read: it is neither validated nor kept nor echoed.
 */
export const PULSE_ARG_KEYS: Readonly<Record<PulseType, readonly string[]>> = {
  tcp: [...PROBE_ARGS, "via"],
  http: [...HTTP_ARGS, "via"],
  https: [...HTTP_ARGS, "tls-verify", "insecure", "ca", "serverName", "via"],
  udp: [...PROBE_ARGS, "send", "sendHex"],
  dns: [...PROBE_ARGS, "name", "qtype", "rcode", "answer", "recursion"],
  tls: [...PROBE_ARGS, "tls-verify", "insecure", "ca", "serverName", "expiryDays", "via"],
  exec: [...PROBE_ARGS, "command", "shell"],
  none: [],
};

/** Every args key some type uses, with the longest string it may be (the REST contract caps them). */
export const PULSE_ARG_MAX_LENGTH: Readonly<Record<string, number>> = {
  host: 255,
  port: 16,
  timeout: 32,
  rise: 16,
  fall: 16,
  backoff: 32,
  method: 32,
  path: 2048,
  expect: 256,
  hostHeader: 255,
  via: 8,
  vhost: 255,
  "tls-verify": 8,
  insecure: 8,
  ca: 65_536,
  serverName: 255,
  send: 65_507,
  sendHex: 2 * 65_507 + 1024,
  name: 255,
  qtype: 16,
  rcode: 16,
  answer: 255,
  recursion: 8,
  expiryDays: 16,
  command: 4096,
  shell: 8,
};

/** Args that may also be a list of strings (exec's command: the program and its arguments). */
export const PULSE_LIST_ARGS: Readonly<Record<string, number>> = { command: 64 };

/** `args` with only the keys `type` uses (exact case); null stays null. */
function knownPulseArgs(type: PulseType, args: Readonly<Record<string, unknown>> | null): Record<string, unknown> | null {
  if (args === null) return null;
  const out: Record<string, unknown> = {};
  for (const key of PULSE_ARG_KEYS[type]) if (Object.hasOwn(args, key)) out[key] = args[key];
  return out;
}

/** PulseWire is the GORB-compatible JSON shape of a pulse, as a client sends it (all optional). */
export interface PulseWire {
  type?: string;
  interval?: string;
  args?: Record<string, unknown> | null;
}

/** RenderedPulseWire is the shape GET responses show: defaults filled in, args echoed as sent (or null). */
export interface RenderedPulseWire {
  type: PulseType;
  interval: string;
  args: Record<string, unknown> | null;
}

/** HttpProbe holds what an http/https check sends and accepts. */
export interface HttpProbe {
  readonly scheme: "http" | "https";
  /** Upper-cased request method, default GET. */
  readonly method: string;
  /** Path plus query string, sent verbatim; default "/". */
  readonly path: string;
  readonly expect: ExpectSpec;
  /** Host header to send instead of the probed host:port, or null. */
  readonly hostHeader: string | null;
  /** False when certificate verification is off (https only; always true for http). */
  readonly tlsVerify: boolean;
  /** https: path of a PEM CA bundle to verify against instead of the system's, or null. */
  readonly ca: string | null;
  /** https: the SNI name and the name the certificate must match; defaults to hostHeader (without a port). */
  readonly serverName: string | null;
}

/** TlsProbe holds what a tls check verifies. */
export interface TlsProbe {
  readonly verify: boolean;
  readonly ca: string | null;
  readonly serverName: string | null;
  /** Fail when the certificate expires within this many days; null: only an expired one fails (when verifying). */
  readonly expiryDays: number | null;
}

/** DnsProbe holds the query a dns check sends and what the answer must be. */
export interface DnsProbe {
  readonly name: string;
  /** Query type number (1 A, 28 AAAA, ...) and its name. */
  readonly qtype: number;
  readonly qtypeName: string;
  /** The rcode that passes (0 NOERROR by default). */
  readonly rcode: number;
  /** An answer record that must be present (an address for A/AAAA, a name for CNAME/NS/PTR/MX, text for TXT), or null. */
  readonly answer: string | null;
  /** Ask for recursion (RD flag); default false: a health check asks the server about its own zones. */
  readonly recursion: boolean;
}

/** ExecProbe holds the script an exec check runs. */
export interface ExecProbe {
  /** argv; with `shell`, ["/bin/sh", "-c", text]. argv[0] is an absolute path. */
  readonly argv: readonly string[];
  readonly shell: boolean;
}

/** UdpProbe holds the datagram a udp check sends, as lower-case hex. */
export interface UdpProbe {
  readonly payloadHex: string;
}

interface PulseCommon {
  /** The interval between check starts, with the text it came from. */
  readonly interval: Duration;
  readonly intervalMs: number;
  /** Per-check timeout; never longer than the interval. */
  readonly timeoutMs: number;
  /** Consecutive successes needed to go from Down to Up. */
  readonly rise: number;
  /** Consecutive failures needed to go from Up to Down. */
  readonly fall: number;
  /** Back-off cap while Down, or null when back-off is off (the original's behaviour). */
  readonly backoffMaxMs: number | null;
  /** Host to probe instead of the backend's, or null. */
  readonly host: string | null;
  /** Port to probe instead of the backend's, or null. */
  readonly port: number | null;
  /** The args object as sent, echoed by renderPulseWire; null when none was sent. */
  readonly args: Readonly<Record<string, unknown>> | null;
  /**
   * "direct": probe the backend's own address; "vip": probe the service's address through IPVS, marked so that
   * IPVS sends it to this backend the way it forwards clients (dr and tunnel backends; core wires it up).
   */
  readonly via: PulseVia;
  /** A string equal for two options exactly when they probe the same way (type, host/port override, probe args). */
  readonly probeKey: string;
}

/** PulseOptions are normalised pulse settings; `http` is set for http/https, `udp` for udp. */
export type PulseOptions = PulseCommon &
  (
    | { readonly type: "tcp" | "none"; readonly http: null; readonly udp: null }
    | { readonly type: "http" | "https"; readonly http: HttpProbe; readonly udp: null }
    | { readonly type: "udp"; readonly http: null; readonly udp: UdpProbe }
    | { readonly type: "tls"; readonly http: null; readonly udp: null; readonly tls: TlsProbe }
    | { readonly type: "dns"; readonly http: null; readonly udp: null; readonly dns: DnsProbe }
    | { readonly type: "exec"; readonly http: null; readonly udp: null; readonly exec: ExecProbe }
  );

/** DEFAULT_INTERVAL is the original's default interval text. */
export const DEFAULT_INTERVAL = "1m";
/** DEFAULT_TIMEOUT_MS is the original's fixed dial/request timeout; capped by the interval. */
export const DEFAULT_TIMEOUT_MS = 5_000;
/** MIN_INTERVAL_MS is the shortest interval accepted. */
export const MIN_INTERVAL_MS = 100;
/**
 * MIN_TIMEOUT_MS is the shortest check timeout accepted: below it a healthy backend's answer, or gorb's own timer
 * slack, fails the check, and every backend is drained for a typo ("5ms" for "5s").
 */
const MIN_TIMEOUT_MS = 50;
/** MAX_THRESHOLD is the largest rise/fall: the size of the health window. */
export const MAX_THRESHOLD = 100;
/** BACKOFF_FACTOR: `backoff: true` caps the back-off at this many intervals. */
const BACKOFF_FACTOR = 8;
/** MAX_UDP_PAYLOAD is the largest datagram a udp pulse may send (IPv4 UDP payload limit). */
const MAX_UDP_PAYLOAD = 65_507;

const METHOD_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const FORBIDDEN_METHODS = new Set(["CONNECT", "TRACE", "TRACK"]);
const HOSTNAME = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_.])?$/;
const IPV6ISH = /^[0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?$/;
/** Dotted digits only: meant as an IPv4 address, never a DNS name (a top-level label is not all digits). */
const IPV4ISH = /^[0-9.]+$/;
const NO_SPACE_OR_CONTROL = /^[^\u0000-\u0020\u007f]+$/;

/** Where errors point: the prefix of every field name, "pulse" unless the caller nests it elsewhere. */
export interface ParsePulseOptions {
  field?: string;
}

/**
 * parsePulseOptions validates and normalises a pulse as sent on the wire. `undefined`/`null` mean "all defaults"
 * (tcp every 1m). Throws PulseOptionsError naming the first bad field.
 */
export function parsePulseOptions(input: unknown, opts: ParsePulseOptions = {}): PulseOptions {
  const options = parseProbeOptions(input, opts);
  const raw = options.args?.via;
  if (raw === undefined) {
    // A type that cannot check through the VIP drops `via` with its other unread args, but never silently a
    // "vip": the check would go direct and pass while the clients' path is broken.
    if (asksForVip(input)) {
      throw new PulseOptionsError(`${opts.field ?? "pulse"}.args.via`, `"vip" is for ${VIA_PULSE_TYPES.join(", ")} checks, not ${options.type}`);
    }
    return options;
  }
  const via = parseVia(raw, `${opts.field ?? "pulse"}.args.via`);
  if (via === "direct") return options;
  if (options.host !== null) {
    throw new PulseOptionsError(`${opts.field ?? "pulse"}.args.host`, `cannot be combined with "via": "vip" (the probe goes to the service's address)`);
  }
  return { ...options, via, probeKey: JSON.stringify([options.probeKey, via]) };
}

function parseProbeOptions(input: unknown, opts: ParsePulseOptions): PulseOptions {
  const base = opts.field ?? "pulse";
  const obj = input === undefined || input === null ? {} : input;
  if (!isRecord(obj)) {
    throw new PulseOptionsError(base, `must be an object such as {"type":"tcp","interval":"5s"}, got ${describeValue(obj)}`);
  }
  const type = parseType(pickFolded(obj, "type"), `${base}.type`);
  const rawInterval = pickFolded(obj, "interval");
  const interval = parseDuration(rawInterval === undefined || rawInterval === "" ? DEFAULT_INTERVAL : rawInterval, `${base}.interval`);
  if (interval.ms < MIN_INTERVAL_MS) {
    throw new PulseOptionsError(`${base}.interval`, `${JSON.stringify(interval.text)} is too short, at least ${MIN_INTERVAL_MS}ms`);
  }
  const rawArgs = pickFolded(obj, "args");
  if (rawArgs !== undefined && rawArgs !== null && !isRecord(rawArgs)) {
    throw new PulseOptionsError(`${base}.args`, `must be an object, got ${describeValue(rawArgs)}`);
  }
  const args: Readonly<Record<string, unknown>> | null =
    rawArgs === undefined || rawArgs === null ? null : knownPulseArgs(type, rawArgs);
  const a = args ?? {};
  const f = (key: string) => `${base}.args.${key}`;

  const defaultTimeout = Math.min(DEFAULT_TIMEOUT_MS, interval.ms);
  if (type === "none") {
    const common = commonOf(interval, defaultTimeout, 1, 1, null, null, null, args);
    return { ...common, type, http: null, udp: null, probeKey: JSON.stringify([type]) };
  }

  const host = a.host === undefined ? null : parseHost(a.host, f("host"));
  const port = a.port === undefined ? null : parseWhole(a.port, f("port"), 1, 65_535);
  const timeoutMs = a.timeout === undefined ? defaultTimeout : parseTimeout(a.timeout, f("timeout"), interval);
  const rise = a.rise === undefined ? 1 : parseWhole(a.rise, f("rise"), 1, MAX_THRESHOLD);
  const fall = a.fall === undefined ? 1 : parseWhole(a.fall, f("fall"), 1, MAX_THRESHOLD);
  const backoffMaxMs = parseBackoff(a.backoff, f("backoff"), interval);
  const common = commonOf(interval, timeoutMs, rise, fall, backoffMaxMs, host, port, args);

  if (type === "http" || type === "https") {
    const http = parseHttpProbe(type, a, f);
    return { ...common, type, http, udp: null, probeKey: JSON.stringify([type, host, port, http]) };
  }
  if (type === "udp") {
    const udp = parseUdpProbe(a, f);
    return { ...common, type, http: null, udp, probeKey: JSON.stringify([type, host, port, udp]) };
  }
  if (type === "tls") {
    const probe = parseTlsProbe(a, f);
    return { ...common, type, http: null, udp: null, tls: probe, probeKey: JSON.stringify([type, host, port, probe]) };
  }
  if (type === "dns") {
    const dns = parseDnsProbe(a, f);
    return { ...common, type, http: null, udp: null, dns, probeKey: JSON.stringify([type, host, port, dns]) };
  }
  if (type === "exec") {
    const exec = parseExecProbe(a, f);
    return { ...common, type, http: null, udp: null, exec, probeKey: JSON.stringify([type, host, port, exec]) };
  }
  return { ...common, type, http: null, udp: null, probeKey: JSON.stringify([type, host, port]) };
}

/** renderPulseWire gives the GORB wire shape of normalised options, for GET responses and persistence. */
export function renderPulseWire(options: PulseOptions): RenderedPulseWire {
  return { type: options.type, interval: options.interval.text, args: options.args === null ? null : { ...options.args } };
}

/** A host and port to probe. */
export interface ProbeTarget {
  readonly host: string;
  readonly port: number;
  /**
   * Checks through the VIP: the SO_MARK of the probe's socket (IPVS schedules the probe by it), and the address
   * whose route gives the probe's source address (the backend's own: it answers there, not to the VIP).
   */
  readonly mark?: number;
  readonly sourceFor?: string;
}

/** probeTarget applies the `args.host` / `args.port` overrides to a backend's address. */
export function probeTarget(backend: ProbeTarget, options: PulseOptions): ProbeTarget {
  const target = { host: options.host ?? backend.host, port: options.port ?? backend.port };
  return backend.mark === undefined ? target : { ...target, mark: backend.mark, sourceFor: backend.sourceFor ?? backend.host };
}

/** Where a check goes: see PulseCommon.via. */
const PULSE_VIAS = ["direct", "vip"] as const;
export type PulseVia = (typeof PULSE_VIAS)[number];

/** The pulse types that can check through the VIP (their args read `via`). */
const VIA_PULSE_TYPES: readonly PulseType[] = PULSE_TYPES.filter((t) => PULSE_ARG_KEYS[t].includes("via"));

/** True when `value` says "vip" as `via` does (any case, spaces around). */
export function saysVip(value: unknown): boolean {
  return typeof value === "string" && value.trim().toLowerCase() === "vip";
}

/** True when a pulse as sent has `args.via` "vip", whatever its type reads. */
function asksForVip(input: unknown): boolean {
  if (!isRecord(input)) return false;
  const args = pickFolded(input, "args");
  return isRecord(args) && Object.hasOwn(args, "via") && saysVip(args.via);
}

function parseVia(value: unknown, field: string): PulseVia {
  const v = typeof value === "string" ? value.trim().toLowerCase() : value;
  for (const known of PULSE_VIAS) if (known === v) return known;
  throw new PulseOptionsError(field, `must be one of ${PULSE_VIAS.join(", ")}, got ${typeof value === "string" ? JSON.stringify(value) : describeValue(value)}`);
}

function commonOf(
  interval: Duration,
  timeoutMs: number,
  rise: number,
  fall: number,
  backoffMaxMs: number | null,
  host: string | null,
  port: number | null,
  args: Readonly<Record<string, unknown>> | null,
): Omit<PulseCommon, "probeKey"> {
  return { interval, intervalMs: interval.ms, timeoutMs, rise, fall, backoffMaxMs, host, port, args, via: "direct" };
}

function parseType(value: unknown, field: string): PulseType {
  if (value === undefined || value === "") return "tcp";
  if (typeof value !== "string") throw new PulseOptionsError(field, `must be a string, got ${describeValue(value)}`);
  const t = value.trim().toLowerCase();
  for (const known of PULSE_TYPES) if (known === t) return known;
  throw new PulseOptionsError(field, `unknown pulse type ${JSON.stringify(value)}, use one of ${PULSE_TYPES.join(", ")}`);
}

function parseHttpProbe(type: "http" | "https", a: Record<string, unknown>, f: (k: string) => string): HttpProbe {
  // "" is GET, and a path without its leading "/" gets one ("" is "/"), as the original's Go request and URL
  // types read them: GORB clients with a struct of strings send "" for what they leave unset.
  let method = "GET";
  if (a.method !== undefined) {
    if (typeof a.method !== "string") throw new PulseOptionsError(f("method"), `must be a string, got ${describeValue(a.method)}`);
    method = a.method.trim().toUpperCase() || "GET";
    if (!METHOD_TOKEN.test(method)) throw new PulseOptionsError(f("method"), `invalid method ${JSON.stringify(a.method)}`);
    if (FORBIDDEN_METHODS.has(method)) {
      throw new PulseOptionsError(f("method"), `method ${method} cannot be used for a health check`);
    }
  }
  let path = "/";
  if (a.path !== undefined) {
    if (typeof a.path !== "string") throw new PulseOptionsError(f("path"), `must be a string, got ${describeValue(a.path)}`);
    if (a.path !== "" && !NO_SPACE_OR_CONTROL.test(a.path)) {
      throw new PulseOptionsError(f("path"), `must not contain spaces or control characters (percent-encode them)`);
    }
    path = a.path.startsWith("/") ? a.path : `/${a.path}`;
  }
  const expect = a.expect === undefined ? DEFAULT_EXPECT : parseExpect(a.expect, f("expect"));
  const hostHeader = parseHostHeader(a, f);
  let tlsVerify = true;
  let ca: string | null = null;
  let serverName: string | null = null;
  if (type === "https") {
    tlsVerify = parseVerify(a, f);
    ca = a.ca === undefined ? null : parseCaPath(a.ca, f("ca"));
    serverName = a.serverName === undefined ? hostOnly(hostHeader) : parseServerName(a.serverName, f("serverName"));
  }
  return { scheme: type, method, path, expect, hostHeader, tlsVerify, ca, serverName };
}

function parseVerify(a: Record<string, unknown>, f: (k: string) => string): boolean {
  const verify = a["tls-verify"] === undefined ? undefined : parseBool(a["tls-verify"], f("tls-verify"));
  const insecure = a.insecure === undefined ? undefined : parseBool(a.insecure, f("insecure"));
  if (verify !== undefined && insecure !== undefined && verify === insecure) {
    throw new PulseOptionsError(f("insecure"), `contradicts ${f("tls-verify")}`);
  }
  return verify ?? !(insecure ?? false);
}

/** hostOnly strips a port from a Host header value ("api.example.org:8443" -> "api.example.org"). */
function hostOnly(hostHeader: string | null): string | null {
  if (hostHeader === null) return null;
  if (hostHeader.startsWith("[")) return hostHeader.slice(1, hostHeader.indexOf("]"));
  const colon = hostHeader.lastIndexOf(":");
  return colon > 0 && hostHeader.indexOf(":") === colon ? hostHeader.slice(0, colon) : hostHeader;
}

function parseCaPath(value: unknown, field: string): string {
  if (typeof value !== "string" || !value.startsWith("/") || value.split("/").includes("..") || !NO_SPACE_OR_CONTROL.test(value)) {
    throw new PulseOptionsError(field, `must be the absolute path of a PEM file, got ${describeValue(value)}`);
  }
  return value;
}

function parseServerName(value: unknown, field: string): string {
  if (typeof value !== "string" || !HOSTNAME.test(value.trim()) || value.trim().length > 253) {
    throw new PulseOptionsError(field, `must be a DNS name, got ${describeValue(value)}`);
  }
  return value.trim();
}

function parseTlsProbe(a: Record<string, unknown>, f: (k: string) => string): TlsProbe {
  const verify = parseVerify(a, f);
  const ca = a.ca === undefined ? null : parseCaPath(a.ca, f("ca"));
  const serverName = a.serverName === undefined ? null : parseServerName(a.serverName, f("serverName"));
  const expiryDays = a.expiryDays === undefined ? null : parseWhole(a.expiryDays, f("expiryDays"), 0, 3650);
  return { verify, ca, serverName, expiryDays };
}

/** DNS_TYPES maps the query types a dns check can ask for to their numbers. */
const DNS_TYPES: Readonly<Record<string, number>> = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, ANY: 255 };
/** DNS_RCODES maps rcode names to numbers: every name the 4-bit header rcode has (RFC 1035, RFC 2136). */
export const DNS_RCODES: Readonly<Record<string, number>> = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  YXDOMAIN: 6,
  YXRRSET: 7,
  NXRRSET: 8,
  NOTAUTH: 9,
  NOTZONE: 10,
};

function parseDnsProbe(a: Record<string, unknown>, f: (k: string) => string): DnsProbe {
  if (typeof a.name !== "string" || a.name.trim() === "") {
    throw new PulseOptionsError(f("name"), `a dns pulse needs the name to query, e.g. "example.org", got ${describeValue(a.name)}`);
  }
  const name = a.name.trim().replace(/\.$/, "").toLowerCase();
  const labels = name === "" ? [] : name.split(".");
  if (name.length > 253 || labels.some((l) => l.length === 0 || l.length > 63 || !/^[a-z0-9_-]+$/.test(l))) {
    throw new PulseOptionsError(f("name"), `invalid DNS name ${JSON.stringify(a.name)}`);
  }
  let qtypeName = "A";
  if (a.qtype !== undefined) {
    const t = typeof a.qtype === "string" ? a.qtype.trim().toUpperCase() : "";
    if (DNS_TYPES[t] === undefined) {
      throw new PulseOptionsError(f("qtype"), `unknown query type ${describeValue(a.qtype)}, use one of ${Object.keys(DNS_TYPES).join(", ")}`);
    }
    qtypeName = t;
  }
  let rcode = 0;
  if (a.rcode !== undefined) {
    const r = typeof a.rcode === "string" ? DNS_RCODES[a.rcode.trim().toUpperCase()] : undefined;
    if (r !== undefined) rcode = r;
    else rcode = parseWhole(a.rcode, f("rcode"), 0, 15);
  }
  let answer: string | null = null;
  if (a.answer !== undefined) {
    if (typeof a.answer !== "string" || a.answer.trim() === "") throw new PulseOptionsError(f("answer"), `must be a non-empty string, got ${describeValue(a.answer)}`);
    answer = a.answer.trim();
    if (qtypeName !== "TXT") answer = answer.replace(/\.$/, "").toLowerCase();
  }
  const recursion = a.recursion === undefined ? false : parseBool(a.recursion, f("recursion"));
  return { name, qtype: DNS_TYPES[qtypeName] as number, qtypeName, rcode, answer, recursion };
}

function parseExecProbe(a: Record<string, unknown>, f: (k: string) => string): ExecProbe {
  const shell = a.shell === undefined ? false : parseBool(a.shell, f("shell"));
  let argv: string[];
  if (typeof a.command === "string" && a.command.trim() !== "") {
    argv = shell ? ["/bin/sh", "-c", a.command] : a.command.trim().split(/\s+/);
  } else if (Array.isArray(a.command) && a.command.length > 0 && a.command.every((x) => typeof x === "string" && x !== "")) {
    if (shell) throw new PulseOptionsError(f("shell"), `a shell runs a command string, not an argument list`);
    argv = [...(a.command as string[])];
  } else {
    throw new PulseOptionsError(f("command"), `an exec pulse needs a command: an absolute path and arguments, as a list or a string, got ${describeValue(a.command)}`);
  }
  if (argv.length > 64 || argv.some((x) => x.length > 4096 || x.includes("\u0000"))) {
    throw new PulseOptionsError(f("command"), `at most 64 arguments of 4096 bytes, without NUL`);
  }
  const exe = argv[0] as string;
  if (!exe.startsWith("/") || exe.split("/").includes("..")) {
    throw new PulseOptionsError(f("command"), `the program must be an absolute path without "..", got ${JSON.stringify(exe)}`);
  }
  return { argv, shell };
}

function parseHostHeader(a: Record<string, unknown>, f: (k: string) => string): string | null {
  let result: string | null = null;
  for (const key of ["hostHeader", "vhost"]) {
    const v = a[key];
    if (v === undefined) continue;
    if (typeof v !== "string" || v.trim() === "") {
      throw new PulseOptionsError(f(key), `must be a non-empty string, got ${describeValue(v)}`);
    }
    const value = v.trim();
    if (!NO_SPACE_OR_CONTROL.test(value)) throw new PulseOptionsError(f(key), `must not contain spaces or control characters`);
    if (result !== null && result !== value) throw new PulseOptionsError(f(key), `conflicts with ${f("hostHeader")}`);
    result = value;
  }
  return result;
}

function parseUdpProbe(a: Record<string, unknown>, f: (k: string) => string): UdpProbe {
  if (a.send !== undefined && a.sendHex !== undefined) {
    throw new PulseOptionsError(f("sendHex"), `give either ${f("send")} or ${f("sendHex")}, not both`);
  }
  let hex: string;
  if (a.send !== undefined) {
    if (typeof a.send !== "string") throw new PulseOptionsError(f("send"), `must be a string, got ${describeValue(a.send)}`);
    hex = Buffer.from(a.send, "utf8").toString("hex");
  } else if (a.sendHex !== undefined) {
    if (typeof a.sendHex !== "string" || !/^(?:[0-9A-Fa-f]{2})*$/.test(a.sendHex.replace(/\s+/g, ""))) {
      throw new PulseOptionsError(f("sendHex"), `must be a string of hex byte pairs such as "0a0b", got ${describeValue(a.sendHex)}`);
    }
    hex = a.sendHex.replace(/\s+/g, "").toLowerCase();
  } else {
    throw new PulseOptionsError(
      f("send"),
      `a udp pulse needs a payload the backend answers (args.send or args.sendHex); to check a UDP service over TCP or HTTP, use type "tcp" or "http" with args.port`,
    );
  }
  if (hex.length / 2 > MAX_UDP_PAYLOAD) {
    throw new PulseOptionsError(a.send !== undefined ? f("send") : f("sendHex"), `payload is ${hex.length / 2} bytes, at most ${MAX_UDP_PAYLOAD}`);
  }
  return { payloadHex: hex };
}

function parseHost(value: unknown, field: string): string {
  if (typeof value !== "string") throw new PulseOptionsError(field, `must be a string, got ${describeValue(value)}`);
  let host = value.trim();
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  // An address must be a valid one: a typo ("10.0.0.300", "fd00::1::2") looked up as a name fails every check with
  // ENOTFOUND and drains the backend.
  const ok = host.includes(":")
    ? IPV6ISH.test(host) && isIP(host) === 6
    : IPV4ISH.test(host)
      ? isIP(host) === 4
      : HOSTNAME.test(host) && host.length <= 253;
  if (!ok) throw new PulseOptionsError(field, `invalid host ${JSON.stringify(value)}, use an IP address or a DNS name`);
  return host;
}

function parseTimeout(value: unknown, field: string, interval: Duration): number {
  const t = parseDuration(value, field);
  if (t.ms < MIN_TIMEOUT_MS) throw new PulseOptionsError(field, `${JSON.stringify(t.text)} is too short, at least ${MIN_TIMEOUT_MS}ms`);
  if (t.ms > interval.ms) {
    throw new PulseOptionsError(
      field,
      `${JSON.stringify(t.text)} is longer than the interval ${JSON.stringify(interval.text)}; a check must end before the next one starts`,
    );
  }
  return t.ms;
}

function parseBackoff(value: unknown, field: string, interval: Duration): number | null {
  if (value === undefined || value === false || value === "false") return null;
  if (value === true || value === "true") return Math.min(interval.ms * BACKOFF_FACTOR, MAX_DURATION_MS);
  if (typeof value !== "string") {
    throw new PulseOptionsError(field, `must be true, false or a maximum interval such as "10m", got ${describeValue(value)}`);
  }
  const cap = parseDuration(value, field);
  if (cap.ms < interval.ms) {
    throw new PulseOptionsError(field, `maximum ${JSON.stringify(cap.text)} is shorter than the interval ${JSON.stringify(interval.text)}`);
  }
  return cap.ms;
}

function parseWhole(value: unknown, field: string, min: number, max: number): number {
  let n: number | null = null;
  if (typeof value === "number" && Number.isInteger(value)) n = value;
  else if (typeof value === "string" && /^\s*\d+\s*$/.test(value)) n = Number(value.trim());
  if (n === null || n < min || n > max) {
    throw new PulseOptionsError(field, `must be a whole number from ${min} to ${max}, got ${describeValue(value)}`);
  }
  return n;
}

function parseBool(value: unknown, field: string): boolean {
  if (value === true || value === false) return value;
  if (typeof value === "string") {
    const v = value.trim().toLowerCase();
    if (v === "true") return true;
    if (v === "false") return false;
  }
  throw new PulseOptionsError(field, `must be true or false, got ${describeValue(value)}`);
}

/**
 * `obj[key]`, else the first key equal to it case-insensitively (Go's encoding/json matched struct keys that way,
 * preferring an exact match). Shared with the contract's body checks.
 */
export function pickFolded(obj: Record<string, unknown>, key: string): unknown {
  if (Object.hasOwn(obj, key)) return obj[key];
  for (const k of Object.keys(obj)) if (k.toLowerCase() === key) return obj[k];
  return undefined;
}
