/**
 * Service and backend bodies -> ServiceSpec / BackendSpec. Two steps:
 *   1. `serviceFields` / `backendFields` (and the PATCH variants) read a body against the REST contract
 *      (src/contract/): keys case-insensitive, unknown keys dropped, every value type- and range-checked by the
 *      contract's TypeBox schema. The result is the field map core keeps.
 *   2. `normalizeServiceFields` / `normalizeBackendFields` apply the rules a schema cannot say (which fields
 *      go together, per-family ranges, defaults that depend on other fields) and fill in the defaults.
 * No I/O: host names are resolved later (./resolve.ts). Every problem is a ValidationError naming the field.
 *
 * Differences from the original (kobolog/gorb), on purpose:
 *   - `persistent` really makes the service persistent (timeout `persistence_timeout`, default 300 s);
 *   - a backend `port` defaults to the service's port;
 *   - a backend `weight` of 0 creates a drained backend (the original turned every weight <= 0 into 100),
 *     a negative one is refused;
 *   - `method` (the scheduler) is checked against the schedulers IPVS ships and lower-cased;
 *   - flags may be separated by "|" or "," and are case-insensitive; they are kept under the scheduler's own
 *     names (mh-port on an sh service is sh-port: the same IPVS bit), as the kernel's table shows them;
 *   - unknown keys (also `vsid`, and pulse args a type does not read) are dropped, not kept;
 *   - a dr, tunnel or local backend (or dr/ipip sorry server) of an address service is on the service's port
 *     (checkForwardedPort, checkSorryPort: checked on writes only).
 */
import type { TSchema } from "@sinclair/typebox";
import { canonicalBackendBody, canonicalServiceBody, compileChecks, contractProblem, type BodyMode } from "../contract/check.ts";
import {
  BACKEND_FIELDS,
  BACKEND_IDENTITY_FIELDS,
  BACKEND_METHODS,
  DEFAULTS,
  LIMITS,
  SCHED_FLAG_NAMES,
  SERVICE_FIELDS,
  SERVICE_IDENTITY_FIELDS,
  SORRY_METHODS,
  schedFlagsText,
  type SchedFlagName,
} from "../contract/fields.ts";
import { isIP } from "node:net";
import { addressProblem } from "../contract/addresses.ts";
import { canonicalAddress } from "../ipvs/address.ts";
import { parseDuration } from "../health/duration.ts";
import { PulseOptionsError } from "../health/errors.ts";
import { BackendBody, BackendPatchBody, ServiceBody, ServicePatchBody } from "../contract/schemas.ts";
import { NETMASK_RANGE } from "../ipvs/constants.ts";
import {
  FAMILIES,
  PERSISTENCE_ENGINES,
  PROTOCOLS,
  SCHEDULERS,
  TUNNEL_CHECKSUMS,
  TUNNEL_TYPES,
  type Family,
  type Protocol,
} from "../ipvs/types.ts";
import { ValidationError } from "./errors.ts";
import { describeValue } from "../contract/json-values.ts";
import {
  boolField,
  enumField,
  fieldsOf,
  intField,
  isChecked,
  mergeFields,
  objectOf,
  stringField,
  type Fields,
} from "./fields.ts";
import type { BackendMethod } from "../contract/fields.ts";
import type { BackendSpec, ServiceSpec, SorrySpec, TunnelSpec } from "./model.ts";
import { normalizePulse } from "./pulse.ts";

export { BACKEND_FIELDS, BACKEND_IDENTITY_FIELDS, SERVICE_FIELDS, SERVICE_IDENTITY_FIELDS };

/** `canonical` checked against `schema`; a ValidationError naming the field otherwise. */
function checked(schema: TSchema, canonical: unknown): Fields {
  const found = contractProblem(schema, canonical);
  if (found !== null) throw new ValidationError(found.field, found.problem);
  return fieldsOf(canonical);
}

/**
 * A field map the caller already built from a body the contract accepted (the API: its route checked the
 * canonical body against the same schema), as it is; anything else is read and checked here.
 */
function alreadyChecked(raw: unknown): raw is Fields {
  return raw instanceof Map && isChecked(raw);
}

function serviceFieldsOf(raw: unknown, mode: BodyMode): Fields {
  if (alreadyChecked(raw)) return raw;
  return checked(mode === "put" ? ServiceBody : ServicePatchBody, canonicalServiceBody(raw, mode));
}

function backendFieldsOf(raw: unknown, mode: BodyMode): Fields {
  if (alreadyChecked(raw)) return raw;
  return checked(mode === "put" ? BackendBody : BackendPatchBody, canonicalBackendBody(raw, mode));
}

/**
 * Compile the body checks of this module (a declared set's, a PATCH's) ahead of their first use; see compileChecks.
 * The API's routes have their own, compiled by Elysia.
 */
export function precompileBodyChecks(): Promise<void> {
  return compileChecks([ServiceBody, BackendBody, ServicePatchBody, BackendPatchBody]);
}

/** The known fields of a service body, checked against the contract (nulls dropped). */
export function serviceFields(raw: unknown): Fields {
  return serviceFieldsOf(raw, "put");
}

/** The known fields of a backend body, checked against the contract (nulls dropped). */
export function backendFields(raw: unknown): Fields {
  return backendFieldsOf(raw, "put");
}

/** The fields of a service PATCH body; a null keeps its meaning "back to the default". */
export function servicePatchFields(raw: unknown): Fields {
  return serviceFieldsOf(raw, "patch");
}

/** The fields of a backend PATCH body; a null keeps its meaning "back to the default". */
export function backendPatchFields(raw: unknown): Fields {
  return backendFieldsOf(raw, "patch");
}

/** A host field: "" (only where allowed) or text the contract accepted. */
function hostText(fields: Fields, required: boolean): string {
  const host = stringField(fields, "host", "");
  if (host === "" && required) throw new ValidationError("host", "is required (an IP address or a DNS name)");
  return host;
}

/** `flags` under the scheduler's own names (schedFlagsText): the kernel knows only the bits the names set. */
function flagsOf(fields: Fields, scheduler: string): string {
  const text = stringField(fields, "flags", "");
  if (text.trim() === "") return "";
  const bits = { sched1: false, sched2: false, sched3: false };
  for (const part of text.split(/[|,]/)) {
    const name = part.trim().toLowerCase();
    if (name === "") throw new ValidationError("flags", `has an empty flag in ${describeValue(text)}`);
    if (!Object.hasOwn(SCHED_FLAG_NAMES, name)) {
      throw new ValidationError(
        "flags",
        `unknown flag ${describeValue(part.trim())}; known: ${Object.keys(SCHED_FLAG_NAMES).join(", ")}`,
      );
    }
    bits[SCHED_FLAG_NAMES[name as SchedFlagName]] = true;
  }
  return schedFlagsText(scheduler, bits);
}

/** Throws unless a field that only makes sense with `persistent: true` is left out. */
function needsPersistent(fields: Fields, name: string, persistent: boolean): void {
  if (!persistent && fields.has(name)) throw new ValidationError(name, "needs persistent: true");
}

/** Throws unless an integer field is in [min, max] (a rule narrower than the contract's range). */
function within(name: string, value: number, min: number, max: number, why = ""): void {
  if (value < min || value > max) throw new ValidationError(name, `must be ${min}-${max}${why}, got ${value}`);
}

/**
 * A ServiceSpec from service fields: the contract's checks (unless the map came from serviceFields or a merge of
 * checked maps, see ./fields.ts) and then the rules between fields.
 */
export function normalizeServiceFields(input: Fields): ServiceSpec {
  const fields = isChecked(input) ? input : serviceFields(objectOf(input));
  const kept = fields as WithSpecs;
  let spec = kept[SERVICE_SPEC];
  if (spec === undefined) kept[SERVICE_SPEC] = spec = serviceSpecOf(fields);
  return spec;
}

/**
 * Specs already worked out, by checked field map (field maps are never changed once built, specs are read-only):
 * an apply reads each declared object's fields when the set arrives, when it is planned and when it is run.
 */
const SERVICE_SPEC: unique symbol = Symbol("service spec");
/** The same for backends, with the service's port and fwmark they were worked out for. */
const BACKEND_SPEC: unique symbol = Symbol("backend spec");
/** A field map with the specs worked out from it, kept on the map itself (a WeakMap's insert costs more). */
type WithSpecs = Fields & {
  [SERVICE_SPEC]?: ServiceSpec;
  [BACKEND_SPEC]?: { readonly port: number; readonly fwmark: number | null; readonly spec: BackendSpec };
};

function serviceSpecOf(fields: Fields): ServiceSpec {
  const fwmark = intField(fields, "fwmark", null);
  let host = "";
  let port = 0;
  let protocol: Protocol = DEFAULTS.protocol;
  let family: Family | null;
  if (fwmark !== null) {
    for (const name of ["host", "port", "protocol"] as const) {
      if (fields.has(name)) throw new ValidationError(name, "is not used by a fwmark service; leave it out");
    }
    family = enumField(fields, "family", FAMILIES, DEFAULTS.fwmarkFamily);
  } else {
    if (!fields.has("port")) {
      throw new ValidationError("port", `is required (${LIMITS.port.min}-${LIMITS.port.max}), or give a fwmark`);
    }
    port = intField(fields, "port", 0);
    host = hostText(fields, false);
    protocol = enumField(fields, "protocol", PROTOCOLS, DEFAULTS.protocol);
    family = enumField(fields, "family", FAMILIES, null);
  }
  const method = enumField(fields, "method", SCHEDULERS, DEFAULTS.scheduler);
  const flags = flagsOf(fields, method);
  const persistent = boolField(fields, "persistent", false);
  needsPersistent(fields, "persistence_timeout", persistent);
  needsPersistent(fields, "persistence_netmask", persistent);
  needsPersistent(fields, "pe", persistent);
  const persistenceTimeout = persistent ? intField(fields, "persistence_timeout", DEFAULTS.persistenceTimeout) : 0;
  const persistenceNetmask = intField(fields, "persistence_netmask", null);
  if (persistenceNetmask !== null && family !== null) {
    const { min, max } = NETMASK_RANGE[family];
    within("persistence_netmask", persistenceNetmask, min, max, ` for an ${family} service`);
  }
  const pe = enumField(fields, "pe", PERSISTENCE_ENGINES, null);
  const onePacket = boolField(fields, "one_packet", false);
  if (onePacket && fwmark === null && protocol !== "udp") {
    throw new ValidationError("one_packet", `is only for udp and fwmark services, not ${protocol}`);
  }
  const panicThreshold = intField(fields, "panic_threshold", DEFAULTS.panicThreshold);
  const announceMinHealthy = intField(fields, "announce_min_healthy", DEFAULTS.announceMinHealthy);
  const hashFallback = boolField(fields, "hash_fallback", true);
  const failover = failoverOf(fields, family, fwmark === null ? port : 0);
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
    announceMinHealthy,
    hashFallback,
    ...failover,
  };
}

/** `sorry_server.host` as the body has it (messages quote it so, not its canonical form); "" when there is none. */
export function sorryHostSent(fields: Fields): string {
  const raw = fields.get("sorry_server");
  const host = typeof raw === "object" && raw !== null ? (raw as { host?: unknown }).host : undefined;
  return typeof host === "string" ? host : "";
}

/** The failover fields of a service (sorry server, quorum, hysteresis, hooks); see ./failover.ts. */
function failoverOf(
  fields: Fields,
  family: Family | null,
  servicePort: number,
): Pick<ServiceSpec, "sorryServer" | "quorum" | "hysteresis" | "quorumUp" | "quorumDown"> {
  const quorum = intField(fields, "quorum", DEFAULTS.quorum);
  const hysteresis = intField(fields, "hysteresis", DEFAULTS.hysteresis);
  if (hysteresis > 0 && hysteresis >= quorum) {
    throw new ValidationError("hysteresis", `must be less than quorum (${quorum}), got ${hysteresis}`);
  }
  let sorryServer: SorrySpec | null = null;
  const raw = fields.get("sorry_server");
  if (typeof raw === "object" && raw !== null) {
    const server = raw as { port?: unknown; method?: unknown };
    const host = sorryHostSent(fields);
    if (host === "") throw new ValidationError("sorry_server.host", "is required (an IP address)");
    const ipFamily = isIP(host);
    if (ipFamily === 0) throw new ValidationError("sorry_server.host", `must be an IP address, got ${describeValue(host)}`);
    const hostFamily: Family = ipFamily === 4 ? "inet" : "inet6";
    if (family !== null && family !== hostFamily) {
      throw new ValidationError("sorry_server.host", `must be an ${family} address like the service, got ${describeValue(host)}`);
    }
    const problem = addressProblem(host, hostFamily, "sorry", null);
    if (problem !== null) throw new ValidationError("sorry_server.host", `${host} ${problem}`);
    const port = typeof server.port === "number" ? server.port : servicePort;
    const method = SORRY_METHODS.find((m) => m === server.method) ?? DEFAULTS.sorryMethod;
    // Kept in canonical form, as backends' addresses are: it is compared with theirs (2001:DB8::A is 2001:db8::a).
    sorryServer = { host: hostFamily === "inet" ? host : canonicalAddress(host), port, method };
  }
  return {
    sorryServer,
    quorum,
    hysteresis,
    quorumUp: stringField(fields, "quorum_up", ""),
    quorumDown: stringField(fields, "quorum_down", ""),
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
  const type = enumField(fields, "tunnel_type", TUNNEL_TYPES, DEFAULTS.tunnelType);
  if (method === "ipip" && type !== "ipip") {
    throw new ValidationError("tunnel_type", `method "ipip" is an ipip tunnel; use method "tunnel" for ${type}`);
  }
  let port = 0;
  if (type === "gue") {
    if (!fields.has("tunnel_port")) {
      throw new ValidationError("tunnel_port", `is required for a gue tunnel (${LIMITS.tunnelPort.min}-${LIMITS.tunnelPort.max})`);
    }
    port = intField(fields, "tunnel_port", 0);
  } else if (fields.has("tunnel_port")) {
    throw new ValidationError("tunnel_port", `is only for gue tunnels, not ${type}`);
  }
  const checksum = enumField(fields, "tunnel_checksum", TUNNEL_CHECKSUMS, DEFAULTS.tunnelChecksum);
  if (checksum === "remcsum" && type !== "gue") {
    throw new ValidationError("tunnel_checksum", `"remcsum" is only for gue tunnels, not ${type}`);
  }
  if (checksum !== "nocsum" && type === "ipip") {
    throw new ValidationError("tunnel_checksum", `${describeValue(checksum)} is only for gue and gre tunnels`);
  }
  return { type, port, checksum };
}

/**
 * A BackendSpec from backend fields, for a backend of `service`: the port defaults to the service's port
 * (a fwmark service's backends default to port 0, "keep the packet's port").
 */
export function normalizeBackendFields(input: Fields, service: ServiceSpec): BackendSpec {
  const fields = isChecked(input) ? input : backendFields(objectOf(input));
  const kept = fields as WithSpecs;
  const known = kept[BACKEND_SPEC];
  if (known !== undefined && known.port === service.port && known.fwmark === service.fwmark) return known.spec;
  const spec = backendSpecOf(fields, service);
  kept[BACKEND_SPEC] = { port: service.port, fwmark: service.fwmark, spec };
  return spec;
}

function backendSpecOf(fields: Fields, service: ServiceSpec): BackendSpec {
  const host = hostText(fields, true);
  const port = intField(fields, "port", service.port);
  if (service.fwmark === null) within("port", port, LIMITS.port.min, LIMITS.port.max);
  const weight = intField(fields, "weight", DEFAULTS.weight);
  const method = enumField(fields, "method", BACKEND_METHODS, DEFAULTS.backendMethod);
  const tunnel = tunnelOf(fields, method);
  const upperThreshold = intField(fields, "upper_threshold", 0);
  const lowerThreshold = intField(fields, "lower_threshold", 0);
  if (lowerThreshold > upperThreshold) {
    throw new ValidationError(
      "lower_threshold",
      `must not exceed upper_threshold (${upperThreshold}), got ${lowerThreshold}`,
    );
  }
  const pulse = normalizePulse(fields.get("pulse"));
  if (pulse.via === "vip") {
    // The probe takes the path of a client's packets: only dr and tunnel backends keep the VIP as destination.
    if (method !== "dr" && method !== "tunnel" && method !== "ipip") {
      throw new ValidationError("pulse.args.via", `"vip" is for dr and tunnel backends, this one is ${method}`);
    }
    if (service.fwmark !== null) throw new ValidationError("pulse.args.via", `"vip" needs a service with an address; a fwmark service has none to probe`);
  }
  const maintenance = boolField(fields, "maintenance", false);
  const slowStartMs = slowStartOf(fields);
  return { host, port, weight, method, upperThreshold, lowerThreshold, tunnel, pulse, maintenance, slowStartMs };
}

/**
 * Refuses a backend whose check would connect to port 0: a fwmark service's backend without a port keeps the
 * packet's port, so a check that connects (every type but exec and none) needs `pulse.args.port`. Called where
 * a backend is created or its port or pulse changed, not on restore or adoption (a saved backend stays as it was).
 */
export function checkProbePort(spec: BackendSpec): void {
  const pulse = spec.pulse;
  if (spec.port !== 0 || pulse.port !== null || pulse.type === "exec" || pulse.type === "none") return;
  throw new ValidationError(
    "pulse.args.port",
    `is required: this backend has no port (a fwmark service's backend keeps the packet's port), so its ${pulse.type} check needs one; or use pulse type none`,
  );
}

/**
 * Refuses a port IPVS would not use. dr, tunnel (ipip) and local destinations get the client's packets with their
 * destination port unchanged (only nat rewrites it), so on an address service such a destination on another port
 * than the service's is reached on the service's port while gorb would check the one given: a backend blamed for a
 * port no client uses. ipvsadm silently forces the service's port there; gorb says so instead (`pulse.args.port`
 * checks another port). A fwmark service's destinations keep the packet's port, whatever theirs. Called where a
 * backend is created (the API, an apply's set, --direct) or its method changed; not on restore, adoption or another
 * node's rows (a backend saved before the rule, or by an older node, stays as it was).
 */
export function checkForwardedPort(spec: BackendSpec, service: ServiceSpec): void {
  const problem = forwardedPortProblem(spec, service);
  if (problem !== null) throw new ValidationError("port", problem);
}

/** What checkForwardedPort refuses, as the problem of its `port` error; null for a port IPVS uses. */
export function forwardedPortProblem(spec: BackendSpec, service: ServiceSpec): string | null {
  if (service.fwmark !== null || spec.method === "nat" || spec.port === service.port) return null;
  return (
    `must be the service's port ${service.port} for a ${spec.method} backend, got ${spec.port}: IPVS forwards ${spec.method} ` +
    "packets without changing their port (only nat does); leave port out, and set pulse.args.port to check another port"
  );
}

/** The same rule for a service's sorry server (`sorry_server.port`), where one is created or changed. */
export function checkSorryPort(service: ServiceSpec): void {
  const problem = sorryPortProblem(service);
  if (problem !== null) throw new ValidationError("sorry_server.port", problem);
}

/** What checkSorryPort refuses, as the problem of its `sorry_server.port` error; null when there is nothing to refuse. */
export function sorryPortProblem(service: ServiceSpec): string | null {
  const sorry = service.sorryServer;
  if (sorry === null || service.fwmark !== null || sorry.method === "nat" || sorry.port === service.port) return null;
  return (
    `must be the service's port ${service.port} for method ${sorry.method}, got ${sorry.port}: IPVS forwards ${sorry.method} ` +
    "packets without changing their port (only nat does); leave it out"
  );
}

/** `slow_start` in milliseconds (the pulse duration grammar); 0 when left out or "". */
function slowStartOf(fields: Fields): number {
  const text = stringField(fields, "slow_start", "").trim();
  if (text === "") return 0;
  try {
    return parseDuration(text, "slow_start").ms;
  } catch (error) {
    if (error instanceof PulseOptionsError) throw new ValidationError(error.field, error.problem, { cause: error });
    throw error;
  }
}

/** A BackendSpec from a GORB backend body (PUT /service/:service/:backend). */
export function normalizeBackend(raw: unknown, service: ServiceSpec): BackendSpec {
  return normalizeBackendFields(backendFields(raw), service);
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
    const tunnel = method === "tunnel" || method === "ipip";
    if (!tunnel) {
      for (const name of ["tunnel_type", "tunnel_port", "tunnel_checksum"]) {
        if (!patch.has(name)) merged.delete(name);
      }
    }
  }
  return merged;
}
