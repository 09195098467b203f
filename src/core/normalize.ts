/**
 * Pure normalisation of GORB request bodies into ServiceSpec / BackendSpec: defaults filled in, every value
 * checked, names lower-cased. No I/O: host names are resolved later (./resolve.ts).
 *
 * Field names and defaults follow kobolog/gorb (host, port, protocol "tcp", method "wrr", flags, persistent;
 * backend host, port, weight 100, method "nat", pulse) plus gorb's own fields (persistence, fwmark, one-packet,
 * tunnels, thresholds). Differences from the original, on purpose:
 *   - `persistent` really makes the service persistent (timeout `persistence_timeout`, default 300 s);
 *   - a backend `port` defaults to the service's port;
 *   - a backend `weight` of 0 creates a drained backend (the original turned every weight <= 0 into 100),
 *     a negative one is refused;
 *   - `method` (the scheduler) is checked against the schedulers IPVS ships and lower-cased;
 *   - flags may be separated by "|" or "," and are case-insensitive.
 */
import type { Family, Protocol, TunnelChecksum, TunnelType } from "../ipvs/types.ts";
import { SCHEDULERS } from "../ipvs/types.ts";
import { ValidationError } from "./errors.ts";
import {
  boolField,
  describeValue,
  enumField,
  intField,
  mergeFields,
  readFields,
  readPatchFields,
  stringField,
  type Fields,
} from "./fields.ts";
import {
  BACKEND_METHODS,
  DEFAULT_PANIC_THRESHOLD,
  DEFAULT_PERSISTENCE_TIMEOUT,
  DEFAULT_PROTOCOL,
  DEFAULT_SCHEDULER,
  DEFAULT_WEIGHT,
  MAX_WEIGHT,
  SCHED_FLAG_NAMES,
  type BackendMethod,
  type BackendSpec,
  type SchedFlagName,
  type ServiceSpec,
  type TunnelSpec,
} from "./model.ts";
import { normalizePulse } from "./pulse.ts";

/** Wire names of the service fields (lower case). */
export const SERVICE_FIELDS = [
  "host",
  "port",
  "protocol",
  "method",
  "flags",
  "persistent",
  "persistence_timeout",
  "persistence_netmask",
  "fwmark",
  "family",
  "pe",
  "one_packet",
  "panic_threshold",
] as const;

/** Wire names of the backend fields (lower case). `vsid` is accepted and ignored, as gorb keys by URL. */
export const BACKEND_FIELDS = [
  "host",
  "port",
  "weight",
  "method",
  "upper_threshold",
  "lower_threshold",
  "tunnel_type",
  "tunnel_port",
  "tunnel_checksum",
  "pulse",
  "vsid",
] as const;

/** Service fields that make up its identity: a PATCH may not change them. */
export const SERVICE_IDENTITY_FIELDS = ["host", "port", "protocol", "fwmark", "family"] as const;
/** Backend fields that make up its identity: a PATCH may not change them. */
export const BACKEND_IDENTITY_FIELDS = ["host", "port"] as const;

const U32_MAX = 0xffffffff;
const PROTOCOLS: readonly Protocol[] = ["tcp", "udp", "sctp"];
const FAMILIES: readonly Family[] = ["inet", "inet6"];
const TUNNEL_TYPES: readonly TunnelType[] = ["ipip", "gue", "gre"];
const CHECKSUMS: readonly TunnelChecksum[] = ["nocsum", "csum", "remcsum"];
const PERSISTENCE_ENGINES = ["sip"] as const;

/** The known fields of a service body (keys matched case-insensitively, nulls dropped). */
export function serviceFields(raw: unknown): Fields {
  return readFields(raw, SERVICE_FIELDS, "body");
}

/** The known fields of a backend body (keys matched case-insensitively, nulls dropped). */
export function backendFields(raw: unknown): Fields {
  return readFields(raw, BACKEND_FIELDS, "body");
}

/** A host field: a non-empty string without spaces or control characters, at most 253 characters. */
function hostText(fields: Fields, required: boolean): string {
  const host = stringField(fields, "host", "");
  if (host === "") {
    if (required) throw new ValidationError("host", "is required (an IP address or a DNS name)");
    return "";
  }
  if (host.length > 253 || /[\s\u0000-\u001f\u007f]/.test(host)) {
    throw new ValidationError("host", `must be an IP address or a DNS name, got ${describeValue(host)}`);
  }
  return host;
}

function schedulerOf(fields: Fields): string {
  const method = stringField(fields, "method", "");
  if (method === "") return DEFAULT_SCHEDULER;
  const lower = method.toLowerCase();
  if (!(SCHEDULERS as readonly string[]).includes(lower)) {
    throw new ValidationError("method", `must be one of ${SCHEDULERS.join(", ")}, got ${describeValue(method)}`);
  }
  return lower;
}

function flagsOf(fields: Fields): string {
  const text = stringField(fields, "flags", "");
  if (text.trim() === "") return "";
  const names: SchedFlagName[] = [];
  for (const part of text.split(/[|,]/)) {
    const name = part.trim().toLowerCase();
    if (name === "") throw new ValidationError("flags", `has an empty flag in ${describeValue(text)}`);
    if (!Object.hasOwn(SCHED_FLAG_NAMES, name)) {
      throw new ValidationError(
        "flags",
        `unknown flag ${describeValue(part.trim())}; known: ${Object.keys(SCHED_FLAG_NAMES).join(", ")}`,
      );
    }
    const known = name as SchedFlagName;
    if (!names.includes(known)) names.push(known);
  }
  return names.join("|");
}

/** Throws unless a field that only makes sense with `persistent: true` is left out. */
function needsPersistent(fields: Fields, name: string, persistent: boolean): void {
  if (!persistent && fields.has(name)) throw new ValidationError(name, "needs persistent: true");
}

/** A ServiceSpec from already-read fields. */
export function normalizeServiceFields(fields: Fields): ServiceSpec {
  const fwmark = intField(fields, "fwmark", 1, U32_MAX, null);
  let host = "";
  let port = 0;
  let protocol: Protocol = DEFAULT_PROTOCOL;
  let family: Family | null;
  if (fwmark !== null) {
    for (const name of ["host", "port", "protocol"] as const) {
      if (fields.has(name)) throw new ValidationError(name, "is not used by a fwmark service; leave it out");
    }
    family = enumField(fields, "family", FAMILIES, "inet");
  } else {
    if (!fields.has("port")) throw new ValidationError("port", "is required (1-65535), or give a fwmark");
    port = intField(fields, "port", 1, 65535, 0);
    host = hostText(fields, false);
    protocol = enumField(fields, "protocol", PROTOCOLS, DEFAULT_PROTOCOL);
    family = enumField(fields, "family", FAMILIES, null);
  }
  const method = schedulerOf(fields);
  const flags = flagsOf(fields);
  const persistent = boolField(fields, "persistent", false);
  needsPersistent(fields, "persistence_timeout", persistent);
  needsPersistent(fields, "persistence_netmask", persistent);
  needsPersistent(fields, "pe", persistent);
  const persistenceTimeout = persistent
    ? intField(fields, "persistence_timeout", 1, U32_MAX, DEFAULT_PERSISTENCE_TIMEOUT)
    : 0;
  const persistenceNetmask = intField(fields, "persistence_netmask", 0, 128, null);
  if (persistenceNetmask !== null && family === "inet" && persistenceNetmask > 32) {
    throw new ValidationError("persistence_netmask", `must be 0-32 for an inet service, got ${persistenceNetmask}`);
  }
  if (persistenceNetmask === 0 && family === "inet6") {
    throw new ValidationError("persistence_netmask", "must be 1-128 for an inet6 service, got 0");
  }
  const pe = enumField(fields, "pe", PERSISTENCE_ENGINES, null);
  const onePacket = boolField(fields, "one_packet", false);
  if (onePacket && fwmark === null && protocol !== "udp") {
    throw new ValidationError("one_packet", `is only for udp and fwmark services, not ${protocol}`);
  }
  const panicThreshold = intField(fields, "panic_threshold", 0, 100, DEFAULT_PANIC_THRESHOLD);
  return {
    host,
    port,
    protocol,
    method,
    flags,
    persistent,
    persistenceTimeout,
    persistenceNetmask,
    fwmark,
    family,
    pe,
    onePacket,
    panicThreshold,
  };
}

/** A ServiceSpec from a GORB service body (PUT /service/:service). */
export function normalizeService(raw: unknown): ServiceSpec {
  return normalizeServiceFields(serviceFields(raw));
}

function tunnelOf(fields: Fields, method: BackendMethod): TunnelSpec | null {
  if (method !== "tunnel" && method !== "ipip") {
    for (const name of ["tunnel_type", "tunnel_port", "tunnel_checksum"] as const) {
      if (fields.has(name)) throw new ValidationError(name, `needs method "tunnel", not ${describeValue(method)}`);
    }
    return null;
  }
  const type = enumField(fields, "tunnel_type", TUNNEL_TYPES, "ipip");
  if (method === "ipip" && type !== "ipip") {
    throw new ValidationError("tunnel_type", `method "ipip" is an ipip tunnel; use method "tunnel" for ${type}`);
  }
  let port = 0;
  if (type === "gue") {
    if (!fields.has("tunnel_port")) throw new ValidationError("tunnel_port", "is required for a gue tunnel (1-65535)");
    port = intField(fields, "tunnel_port", 1, 65535, 0);
  } else if (fields.has("tunnel_port")) {
    throw new ValidationError("tunnel_port", `is only for gue tunnels, not ${type}`);
  }
  const checksum = enumField(fields, "tunnel_checksum", CHECKSUMS, "nocsum");
  if (checksum === "remcsum" && type !== "gue") {
    throw new ValidationError("tunnel_checksum", `"remcsum" is only for gue tunnels, not ${type}`);
  }
  if (checksum !== "nocsum" && type === "ipip") {
    throw new ValidationError("tunnel_checksum", `${describeValue(checksum)} is only for gue and gre tunnels`);
  }
  return { type, port, checksum };
}

/**
 * A BackendSpec from already-read fields, for a backend of `service`: the port defaults to the service's
 * port (a fwmark service's backends default to port 0, "keep the packet's port").
 */
export function normalizeBackendFields(fields: Fields, service: ServiceSpec): BackendSpec {
  const host = hostText(fields, true);
  const port = intField(fields, "port", service.fwmark === null ? 1 : 0, 65535, service.port);
  const weight = intField(fields, "weight", 0, MAX_WEIGHT, DEFAULT_WEIGHT);
  const method = enumField(fields, "method", BACKEND_METHODS, "nat");
  const tunnel = tunnelOf(fields, method);
  const upperThreshold = intField(fields, "upper_threshold", 0, U32_MAX, 0);
  const lowerThreshold = intField(fields, "lower_threshold", 0, U32_MAX, 0);
  if (lowerThreshold > upperThreshold) {
    throw new ValidationError(
      "lower_threshold",
      `must not exceed upper_threshold (${upperThreshold}), got ${lowerThreshold}`,
    );
  }
  const pulse = normalizePulse(fields.get("pulse"));
  return { host, port, weight, method, upperThreshold, lowerThreshold, tunnel, pulse };
}

/** A BackendSpec from a GORB backend body (PUT /service/:service/:backend). */
export function normalizeBackend(raw: unknown, service: ServiceSpec): BackendSpec {
  return normalizeBackendFields(backendFields(raw), service);
}

/** The fields of a service PATCH body; a null keeps its meaning "back to the default". */
export function servicePatchFields(raw: unknown): Fields {
  return readPatchFields(raw, SERVICE_FIELDS, "body");
}

/** The fields of a backend PATCH body; a null keeps its meaning "back to the default". */
export function backendPatchFields(raw: unknown): Fields {
  return readPatchFields(raw, BACKEND_FIELDS, "body");
}

/**
 * The fields of a service after a PATCH: `patch` over `base`, where turning persistence off also drops the
 * persistence options the base had (unless the patch sets them, which is then an error).
 */
export function patchServiceFields(base: Fields, patch: Fields): Fields {
  const merged = mergeFields(base, patch);
  if (patch.has("persistent") && patch.get("persistent") !== true) {
    for (const name of ["persistence_timeout", "persistence_netmask", "pe"]) {
      if (!patch.has(name)) merged.delete(name);
    }
  }
  return merged;
}

/**
 * The fields of a backend after a PATCH: `patch` over `base`, where switching to a method without a tunnel
 * also drops the tunnel options the base had (unless the patch sets them, which is then an error).
 */
export function patchBackendFields(base: Fields, patch: Fields): Fields {
  const merged = mergeFields(base, patch);
  if (patch.has("method")) {
    const method = patch.get("method");
    const tunnel = typeof method === "string" && ["tunnel", "ipip"].includes(method.toLowerCase());
    if (!tunnel) {
      for (const name of ["tunnel_type", "tunnel_port", "tunnel_checksum"]) {
        if (!patch.has(name)) merged.delete(name);
      }
    }
  }
  return merged;
}
