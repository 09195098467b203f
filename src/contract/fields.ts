/**
 * The REST contract, defined once: every field of a service and a backend body with its type, range, allowed
 * values and default. The TypeBox schemas (./schemas.ts), core's normaliser (src/core/normalize.ts), the CLI
 * flags (src/cli/commands/), `--direct` and the configuration file are all built from these tables, so a
 * number or a list written here is written nowhere else.
 *
 * IPVS facts (families, protocols, schedulers, tunnel types and checksums, the largest weight, u16/u32) come
 * from src/ipvs/; pulse facts (types, the args each type reads) from src/health/options.ts. What is gorb's own
 * (defaults, caps, the backend forwarding names, scheduler flag names) is defined here.
 */
import { IP_VS_MAX_WEIGHT, NETMASK_RANGE, U16_MAX, U32_MAX } from "../ipvs/constants.ts";
import {
  FAMILIES,
  PERSISTENCE_ENGINES,
  PROTOCOLS,
  SCHEDULERS,
  TUNNEL_CHECKSUMS,
  TUNNEL_TYPES,
  type ForwardMethod,
} from "../ipvs/types.ts";
import { DEFAULT_INTERVAL, PULSE_TYPES } from "../health/options.ts";

/** Backend forwarding methods accepted in a backend's `method`: "ipip" is "tunnel" with an IPIP tunnel. */
export const BACKEND_METHODS = ["nat", "dr", "tunnel", "ipip", "local"] as const;
export type BackendMethod = (typeof BACKEND_METHODS)[number];

/** The IPVS forwarding method of each backend method. */
export const FORWARD_OF: Readonly<Record<BackendMethod, ForwardMethod>> = {
  nat: "nat",
  dr: "dr",
  tunnel: "tunnel",
  ipip: "tunnel",
  local: "local",
};

/** Scheduler flag names accepted in `flags`, and the IPVS flag bit each one sets. */
export const SCHED_FLAG_NAMES = {
  "sh-fallback": "sched1",
  "sh-port": "sched2",
  "mh-fallback": "sched1",
  "mh-port": "sched2",
  "flag-1": "sched1",
  "flag-2": "sched2",
  "flag-3": "sched3",
} as const;
export type SchedFlagName = keyof typeof SCHED_FLAG_NAMES;

/** The three scheduler flag bits of IPVS (IP_VS_SVC_F_SCHED1..3). */
export type SchedFlagBit = (typeof SCHED_FLAG_NAMES)[SchedFlagName];
const SCHED_FLAG_BITS: readonly SchedFlagBit[] = ["sched1", "sched2", "sched3"];

/** The names `flags` shows for each bit, per scheduler (sh and mh name theirs). */
function schedFlagNames(scheduler: string): Record<SchedFlagBit, SchedFlagName> {
  if (scheduler === "sh") return { sched1: "sh-fallback", sched2: "sh-port", sched3: "flag-3" };
  if (scheduler === "mh") return { sched1: "mh-fallback", sched2: "mh-port", sched3: "flag-3" };
  return { sched1: "flag-1", sched2: "flag-2", sched3: "flag-3" };
}

/**
 * The `flags` text of the bits set, each under `scheduler`'s own name, in bit order: a name is only a bit to the
 * kernel (mh-port is sh-port is flag-2), so "mh-port" on an sh service shows as "sh-port", as `ipvsadm -L` does.
 */
export function schedFlagsText(scheduler: string, bits: Readonly<Record<SchedFlagBit, boolean>>): string {
  const names = schedFlagNames(scheduler);
  return SCHED_FLAG_BITS.filter((bit) => bits[bit]).map((bit) => names[bit]).join("|");
}

/** Defaults of omitted fields. */
export const DEFAULTS = {
  protocol: "tcp",
  /** "wrr", as the original: pulse re-weights backends. */
  scheduler: "wrr",
  /** Seconds, when `persistent` is true and no `persistence_timeout` is given. */
  persistenceTimeout: 300,
  /** Family of a fwmark service without `family`. */
  fwmarkFamily: "inet",
  weight: 100,
  backendMethod: "nat",
  tunnelType: "ipip",
  tunnelChecksum: "nocsum",
  /** Percent of a service's backends that may be down before health stops draining (0 = off). */
  panicThreshold: 0,
  /** Backends that must be up (with an effective weight > 0) for this node to announce the VIP over BGP. */
  announceMinHealthy: 1,
  /** Healthy backends a service needs to be up (0 = no quorum; a sorry server then serves when none is up). */
  quorum: 0,
  hysteresis: 0,
  /** The sorry server's forwarding method. */
  sorryMethod: "nat",
  /** Daemon: where quorum_up / quorum_down programs must live (--hook-dir). */
  hookDir: "/etc/gorb/hooks",
  /** Daemon: how long a quorum hook may run before it is killed. */
  hookTimeoutMs: 10_000,
  /**
   * Daemon: the wait before the configuration file's services, refused because a name could not be looked up for a
   * reason that may pass (the resolver not ready or not answering), are applied again; it doubles up to the max.
   */
  declaredRetryMs: 2_000,
  declaredRetryMaxMs: 60_000,
  pulseType: "tcp",
  pulseInterval: DEFAULT_INTERVAL,
} as const;

/** Ranges of the numeric fields (inclusive). */
export const LIMITS = {
  port: { min: 1, max: U16_MAX },
  /** A backend of a fwmark service may have port 0 ("keep the packet's port"). */
  backendPort: { min: 0, max: U16_MAX },
  fwmark: { min: 1, max: U32_MAX },
  persistenceTimeout: { min: 1, max: U32_MAX },
  /** Any family; the per-family rule is NETMASK_RANGE. */
  persistenceNetmask: { min: Math.min(NETMASK_RANGE.inet.min, NETMASK_RANGE.inet6.min), max: NETMASK_RANGE.inet6.max },
  weight: { min: 0, max: IP_VS_MAX_WEIGHT },
  threshold: { min: 0, max: U32_MAX },
  tunnelPort: { min: 1, max: U16_MAX },
  panicThreshold: { min: 0, max: 100 },
  /** 0 = never announce the service's VIP. */
  announceMinHealthy: { min: 0, max: U16_MAX },
  /** quorum and hysteresis: counts of backends. */
  quorum: { min: 0, max: U16_MAX },
} as const;

/** Longest strings accepted (a DNS name is at most 253 characters). */
export const MAX_LENGTH = {
  host: 253,
  flags: 256,
  pulseInterval: 32,
  slowStart: 32,
  hook: 1024,
} as const;

/** How one field is typed on the wire. Enums are matched case-insensitively and "" means "the default". */
export type FieldType =
  | { readonly kind: "integer"; readonly min: number; readonly max: number; readonly rangeText?: string }
  | { readonly kind: "boolean" }
  | { readonly kind: "enum"; readonly values: readonly string[] }
  | {
      readonly kind: "string";
      readonly maxLength: number;
      readonly pattern?: string;
      /** What the value must be, in a 400 ("must be an IP address"). */
      readonly problem?: string;
      /** True: `problem` words a value of another type too (`5` for "5m"), not "must be a string". */
      readonly problemOfAnyType?: boolean;
    }
  | { readonly kind: "pulse" }
  | { readonly kind: "server" };

/** One field of a body: its type, what it means and its default as the docs show it. */
export type FieldDef = FieldType & { readonly description: string; readonly default?: string | number | boolean };

/** A host as text: no whitespace or control characters (the address or name is checked by core). */
const HOST = {
  kind: "string",
  maxLength: MAX_LENGTH.host,
  pattern: "^[^\\s\\u0000-\\u001f\\u007f]*$",
  problem: "must be an IP address or a DNS name",
} as const;

/** A quorum hook: "" (none) or an absolute path (checked against the daemon's --hook-dir by core). */
const HOOK = {
  kind: "string",
  maxLength: MAX_LENGTH.hook,
  pattern: "^(/[^\\u0000-\\u001f\\u007f]*)?$",
  problem: "must be the absolute path of a program under the hook directory",
} as const;

/** Forwarding methods of a sorry server: "tunnel" and "ipip" are both an IPIP tunnel, as a backend's "tunnel" is by default. */
export const SORRY_METHODS = ["nat", "dr", "tunnel", "ipip"] as const;
export type SorryMethod = (typeof SORRY_METHODS)[number];

/** The keys of a sorry_server object. */
export const SORRY_FIELDS = ["host", "port", "method"] as const;

const int = (range: { readonly min: number; readonly max: number }) => ({ kind: "integer", ...range }) as const;
const oneOf = (values: readonly string[]) => ({ kind: "enum", values }) as const;
const bool = { kind: "boolean" } as const;

/** The fields of PUT/PATCH /service/:service (GORB's first, in GORB's order), in the order errors are reported. */
export const SERVICE_FIELD_DEFS = {
  host: { ...HOST, description: "VIP: an IP address or a DNS name (resolved once, IPv4 preferred); default: the first address of -i" },
  port: { ...int(LIMITS.port), description: "required unless fwmark is given" },
  protocol: { ...oneOf(PROTOCOLS), default: DEFAULTS.protocol, description: "transport protocol" },
  method: { ...oneOf(SCHEDULERS), default: DEFAULTS.scheduler, description: "IPVS scheduler" },
  flags: {
    kind: "string",
    maxLength: MAX_LENGTH.flags,
    description: `scheduler flags separated by | or ,: ${Object.keys(SCHED_FLAG_NAMES).join(", ")}; shown under the scheduler's own names (mh-port on sh is sh-port, the same IPVS bit)`,
  },
  persistent: { ...bool, default: false, description: "client persistence (IP_VS_SVC_F_PERSISTENT)" },
  persistence_timeout: {
    ...int(LIMITS.persistenceTimeout),
    default: DEFAULTS.persistenceTimeout,
    description: "seconds; needs persistent: true",
  },
  persistence_netmask: {
    ...int(LIMITS.persistenceNetmask),
    description: `prefix length grouping clients (${NETMASK_RANGE.inet.min}-${NETMASK_RANGE.inet.max} for IPv4, ` +
      `${NETMASK_RANGE.inet6.min}-${NETMASK_RANGE.inet6.max} for IPv6); needs persistent: true`,
  },
  fwmark: { ...int(LIMITS.fwmark), description: "firewall-mark service instead of host, port and protocol" },
  family: { ...oneOf(FAMILIES), description: "address family (fwmark services: default inet)" },
  pe: { ...oneOf(PERSISTENCE_ENGINES), description: "persistence engine; needs persistent: true" },
  one_packet: { ...bool, default: false, description: "schedule each datagram on its own (udp and fwmark only)" },
  panic_threshold: {
    ...int(LIMITS.panicThreshold),
    default: DEFAULTS.panicThreshold,
    description: "percent of backends that may be down at once before health checks stop draining (0 = off)",
  },
  announce_min_healthy: {
    ...int(LIMITS.announceMinHealthy),
    default: DEFAULTS.announceMinHealthy,
    description: "BGP: backends that must be up with weight > 0 for this node to announce the VIP (0 = never announce)",
  },
  hash_fallback: {
    ...bool,
    default: true,
    description:
      "sh and mh only: also set the fallback flag (sh-fallback / mh-fallback) in IPVS, so new flows hashed to a backend at " +
      "weight 0 (drained, in maintenance, down) go to another backend instead of being dropped; false: only the flags given",
  },
  sorry_server: {
    kind: "server",
    description: 'failover: {"host": IP, "port": N, "method": "nat"|"dr"|"tunnel"|"ipip"} serving alone while the service is down (no quorum)',
  },
  quorum: {
    ...int(LIMITS.quorum),
    default: DEFAULTS.quorum,
    description: "failover: healthy backends (up, configured weight > 0) the service needs to be up (0 = off)",
  },
  hysteresis: {
    ...int(LIMITS.quorum),
    default: DEFAULTS.hysteresis,
    description: "failover: down below quorum - hysteresis healthy backends, up again at quorum + hysteresis",
  },
  quorum_up: { ...HOOK, description: "failover: program (under the daemon's --hook-dir) run when the service comes up" },
  quorum_down: { ...HOOK, description: "failover: program (under the daemon's --hook-dir) run when the service goes down" },

} as const satisfies Record<string, FieldDef>;

/** The fields of PUT/PATCH /service/:service/:backend, in the order errors are reported. */
export const BACKEND_FIELD_DEFS = {
  host: { ...HOST, description: "backend address or DNS name; required on PUT" },
  port: {
    ...int(LIMITS.backendPort),
    // Errors say the range of the common case; 0 is only for a fwmark service's backends.
    rangeText: `${LIMITS.port.min}-${LIMITS.port.max}`,
    description: "default: the service's port (0 only for fwmark services); with method dr, tunnel or local only the service's port",
  },
  weight: { ...int(LIMITS.weight), default: DEFAULTS.weight, description: "0 creates the backend drained" },
  method: { ...oneOf(BACKEND_METHODS), default: DEFAULTS.backendMethod, description: "forwarding method (ipip = tunnel with an IPIP tunnel)" },
  tunnel_type: { ...oneOf(TUNNEL_TYPES), default: DEFAULTS.tunnelType, description: "with method tunnel" },
  tunnel_port: { ...int(LIMITS.tunnelPort), description: "GUE destination port (gue only)" },
  tunnel_checksum: {
    ...oneOf(TUNNEL_CHECKSUMS),
    default: DEFAULTS.tunnelChecksum,
    description: "gue and gre; remcsum is gue only",
  },
  upper_threshold: { ...int(LIMITS.threshold), default: 0, description: "connection threshold (0 = none)" },
  lower_threshold: { ...int(LIMITS.threshold), default: 0, description: "must not exceed upper_threshold" },
  pulse: { kind: "pulse", description: `health check; default {"type": "${DEFAULTS.pulseType}", "interval": "${DEFAULTS.pulseInterval}"}` },
  maintenance: {
    ...bool,
    default: false,
    description: "operator override: effective weight 0 while true, whatever the health checks say (they keep running)",
  },
  slow_start: {
    kind: "string",
    maxLength: MAX_LENGTH.slowStart,
    description: 'failover: ramp the weight up linearly over this long after creation or recovery ("30s"; off by default)',
  },
} as const satisfies Record<string, FieldDef>;

export type ServiceFieldName = keyof typeof SERVICE_FIELD_DEFS;
export type BackendFieldName = keyof typeof BACKEND_FIELD_DEFS;

/** Wire names of the service fields (lower case). */
export const SERVICE_FIELDS = Object.keys(SERVICE_FIELD_DEFS) as ServiceFieldName[];
/**
 * Wire names of the backend fields (lower case). GORB clients also send `vsid`: it is accepted and dropped
 * (gorb keys backends by URL), like every other unknown key.
 */
export const BACKEND_FIELDS = Object.keys(BACKEND_FIELD_DEFS) as BackendFieldName[];

/** Service fields that make up its identity: a PATCH may not change them. */
export const SERVICE_IDENTITY_FIELDS = ["host", "port", "protocol", "fwmark", "family"] as const;
/** Backend fields that make up its identity: a PATCH may not change them. */
export const BACKEND_IDENTITY_FIELDS = ["host", "port"] as const;

/** The pulse fields (keys matched case-insensitively, as the rest of a body). */
export const PULSE_FIELDS = ["type", "interval", "args"] as const;
export { PULSE_TYPES };

/**
 * The `code` of every error answer ({"error", "code", ...}), one per kind of failure: core's errors carry all but
 * INTERNAL, which the API gives an unexpected exception (a 500 that hides its details).
 */
export const ERROR_CODES = [
  "VALIDATION",
  "UNAUTHORIZED",
  "FORBIDDEN",
  "NOT_FOUND",
  "TIMEOUT",
  "CONFLICT",
  "LIMIT",
  "PRECONDITION_FAILED",
  "TOO_LARGE",
  "KERNEL",
  "INTERNAL",
  "UNAVAILABLE",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Drains (POST /service/:service/:backend/drain): what happens when the drain ends. */
export const DRAIN_THEN = ["remove", "keep"] as const;
export type DrainThen = (typeof DRAIN_THEN)[number];

/** Drain defaults and limits. */
export const DRAIN = {
  /** How long a drain waits for the backend's connections to end before it ends anyway. */
  timeout: "5m",
  /** remove: the backend is deleted when the drain ends; keep: it stays at weight 0 until undrained. */
  then: "remove",
  /** The longest drain accepted, as written in messages and in ms; 0s is accepted (end at once). */
  maxTimeout: "7d",
  maxTimeoutMs: 7 * 24 * 3600 * 1000,
  /** Longest timeout text. */
  timeoutLength: 32,
  /** What a timeout must be, in the 400 of a bad one (a string of another form, or a value of another type). */
  timeoutProblem: "must be a duration such as 30s, 5m or 2h",
} as const satisfies { then: DrainThen; [k: string]: unknown };

/** The fields of POST /service/:service/:backend/drain. */
export const DRAIN_FIELD_DEFS = {
  timeout: {
    kind: "string",
    maxLength: DRAIN.timeoutLength,
    problem: DRAIN.timeoutProblem,
    problemOfAnyType: true,
    description: `how long to wait for the backend's connections to end: 30s, 5m, 2h (0s: do not wait; at most ${DRAIN.maxTimeout})`,
    default: DRAIN.timeout,
  },
  then: { ...oneOf(DRAIN_THEN), default: DRAIN.then, description: "when the drain ends: remove the backend, or keep it at weight 0" },
} as const satisfies Record<string, FieldDef>;
