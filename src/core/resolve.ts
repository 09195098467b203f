/**
 * Turning specs into IPVS configs: the host of a service or backend becomes an address (DNS names allowed,
 * resolved once, IPv4 preferred, as the original's net.ResolveIPAddr did), then the spec becomes the
 * ServiceConfig / DestinationConfig the driver takes.
 *
 * The only I/O in core is the injected HostResolver; `dnsResolver()` is the real one.
 */
import { lookup } from "node:dns/promises";
import { addressFamily, canonicalAddress, describeService } from "../ipvs/address.ts";
import { isFwmarkKey, type DestinationConfig, type Family, type ServiceConfig, type ServiceFlags, type ServiceKey } from "../ipvs/types.ts";
import { addressProblem, type AddressRole } from "../contract/addresses.ts";
import { NETMASK_RANGE } from "../ipvs/constants.ts";
import { ValidationError, errorMessage } from "./errors.ts";
import { describeValue } from "../contract/json-values.ts";
import { FORWARD_OF, SCHED_FLAG_NAMES, type SchedFlagName } from "../contract/fields.ts";
import type { BackendSpec, ServiceSpec } from "./model.ts";

/** One address a host name resolves to. */
export interface ResolvedAddress {
  readonly address: string;
  readonly family: Family;
}

/**
 * HostResolver looks a DNS name up and returns every address it has (any order). It is only called for
 * names, never for address literals. It rejects with an Error whose message says why (e.g. ENOTFOUND).
 */
export type HostResolver = (host: string) => Promise<readonly ResolvedAddress[]>;

/** The system resolver (getaddrinfo via node:dns, so /etc/hosts counts). */
export function dnsResolver(): HostResolver {
  return async (host) => {
    const found = await lookup(host, { all: true, verbatim: true });
    const out: ResolvedAddress[] = [];
    for (const entry of found) {
      const family: Family = entry.family === 6 ? "inet6" : "inet";
      out.push({ address: canonicalAddress(entry.address), family });
    }
    return out;
  };
}

/** How to resolve a host: see resolveHost. */
interface ResolveOptions {
  readonly field: string;
  readonly required?: Family | null;
  readonly prefer?: Family | null;
  /** What the address is for: unspecified, broadcast and multicast addresses are refused as either. */
  readonly role?: AddressRole;
  /** The VIP interface (a loopback VIP needs "lo"); null when there is none. */
  readonly vipInterface?: string | null;
  /**
   * The address the object has now (a service's or backend's being changed or declared again): a name that still
   * resolves to it, among others of the family the rules pick, keeps it. A name with several addresses is answered
   * in turns (round-robin DNS), and taking the first each time moved the object at every apply.
   */
  readonly keep?: ResolvedAddress | null;
}

/**
 * The address of `host`: a literal as is (canonical text), a name through `resolver`. With `required`, the
 * address must be of that family; otherwise `prefer` wins when the name has both (IPv4 when null).
 * `field` names the field in errors.
 */
export async function resolveHost(host: string, resolver: HostResolver, options: ResolveOptions): Promise<ResolvedAddress> {
  return resolveLiteral(host, options) ?? checkedAddress(host, await lookupName(host, resolver, options), options);
}

/**
 * resolveHost for an address literal, in the call (no promise: a plan resolves 10,000 of them); null when `host`
 * is not a literal (a name, to look up with resolveHost).
 */
function resolveLiteral(host: string, options: ResolveOptions): ResolvedAddress | null {
  const literal = addressFamily(host);
  if (literal === null) return null;
  const required = options.required ?? null;
  if (required !== null && literal !== required) {
    throw new ValidationError(options.field, `${describeValue(host)} is an ${literal} address, expected ${required}`);
  }
  return checkedAddress(host, { address: literal === "inet" ? host : canonicalAddress(host), family: literal }, options);
}

function checkedAddress(host: string, found: ResolvedAddress, options: ResolveOptions): ResolvedAddress {
  const problem = addressProblem(found.address, found.family, options.role ?? "backend", options.vipInterface ?? null);
  if (problem !== null) {
    const what = addressFamily(host) !== null ? host : `${describeValue(host)} resolves to ${found.address}, which`;
    throw new ValidationError(options.field, `${what} ${problem}`);
  }
  return found;
}

/** The address of a name (not a literal) through `resolver`. */
async function lookupName(host: string, resolver: HostResolver, options: ResolveOptions): Promise<ResolvedAddress> {
  const { field } = options;
  const required = options.required ?? null;
  if (!/^[A-Za-z0-9_.-]+$/.test(host)) {
    throw new ValidationError(field, `must be an IP address or a DNS name, got ${describeValue(host)}`);
  }
  // A name's last label is never all digits or hex (RFC 3696, 2): such text is an address the resolver would read
  // with inet_aton's rules ("010.0.0.1" is 8.0.0.1, "0x0a000001" is 10.0.0.1), not what the client meant.
  const last = host.replace(/\.$/, "").split(".").pop() ?? "";
  if (/^(\d+|0x[0-9a-f]*)$/i.test(last)) {
    throw new ValidationError(field, `${describeValue(host)} is not an IP address as gorb reads them (dotted decimal without leading zeros, or IPv6) nor a DNS name`);
  }
  let found: readonly ResolvedAddress[];
  try {
    found = await resolver(host);
  } catch (error) {
    throw new ValidationError(field, `cannot resolve ${describeValue(host)}: ${errorMessage(error)}`, { cause: error });
  }
  const prefer = required ?? options.prefer ?? "inet";
  const match = found.find((a) => a.family === prefer) ?? (required === null ? found[0] : undefined);
  if (match === undefined) {
    const what = required === null ? "no address" : `no ${required} address`;
    throw new ValidationError(field, `cannot resolve ${describeValue(host)}: it has ${what}`);
  }
  const keep = options.keep ?? null;
  if (keep !== null && keep.family === match.family && found.some((a) => a.family === keep.family && a.address === keep.address)) return keep;
  return match;
}

/** The IPVS flags of a spec. */
export function serviceFlagsOf(spec: ServiceSpec): ServiceFlags {
  const bits = { sched1: false, sched2: false, sched3: false };
  if (spec.flags !== "") {
    for (const name of spec.flags.split("|")) bits[SCHED_FLAG_NAMES[name as SchedFlagName]] = true;
  }
  // sh and mh keep a weight-0 destination in their hash table: without the fallback flag, new flows hashed to
  // a drained (or down, or in maintenance) backend are dropped. gorb sets it unless hash_fallback is false.
  if (spec.hashFallback && (spec.method === "sh" || spec.method === "mh")) bits.sched1 = true;
  return { persistent: spec.persistent, onePacket: spec.onePacket, ...bits };
}

/** The ServiceConfig of a spec whose key is already known (pure). Checks the netmask against the family. */
export function toServiceConfig(spec: ServiceSpec, key: ServiceKey): ServiceConfig {
  const { min, max } = NETMASK_RANGE[key.family];
  const netmask = spec.persistenceNetmask ?? max;
  if (netmask < min || netmask > max) {
    throw new ValidationError("persistence_netmask", `must be ${min}-${max} for an ${key.family} service, got ${netmask}`);
  }
  return {
    key,
    scheduler: spec.method,
    flags: serviceFlagsOf(spec),
    timeout: spec.persistenceTimeout,
    netmask,
    pe: spec.pe,
  };
}

/**
 * The key of a service spec: fwmark services need no lookup; address services resolve `host`, or use
 * `defaultAddress` (the first address of the default interface) when the host is "". The address must be
 * one a VIP can be (src/contract/addresses.ts); `vipInterface` is the daemon's --vip-interface.
 */
export async function resolveServiceKey(
  spec: ServiceSpec,
  resolver: HostResolver,
  defaultAddress: string | null,
  vipInterface: string | null = null,
  keep: ServiceKey | null = null,
): Promise<ServiceKey> {
  if (spec.fwmark !== null) return { family: spec.family ?? "inet", fwmark: spec.fwmark };
  let host = spec.host;
  if (host === "") {
    if (defaultAddress === null) {
      throw new ValidationError("host", "is required: gorb has no default address (the -i interface has none)");
    }
    host = defaultAddress;
  }
  const held = keep === null || isFwmarkKey(keep) ? null : { address: keep.address, family: keep.family };
  const resolved = await resolveHost(host, resolver, { field: "host", required: spec.family, role: "vip", vipInterface, keep: held });
  return { family: resolved.family, protocol: spec.protocol, address: resolved.address, port: spec.port };
}

/**
 * The DestinationConfig of a backend spec for `service`, with `weight` as the weight to write. A backend
 * must be of the service's family unless it is reached through a tunnel.
 */
export function toDestinationConfig(
  spec: BackendSpec,
  address: ResolvedAddress,
  service: ServiceKey,
  weight: number,
): DestinationConfig {
  const forward = FORWARD_OF[spec.method];
  if (address.family !== service.family && forward !== "tunnel") {
    throw new ValidationError(
      "host",
      `${address.address} is an ${address.family} address but service ${describeService(service)} is ` +
        `${service.family}; only a tunnel backend may differ`,
    );
  }
  return {
    family: address.family,
    address: address.address,
    port: spec.port,
    forward,
    weight,
    upperThreshold: spec.upperThreshold,
    lowerThreshold: spec.lowerThreshold,
    tunnel: spec.tunnel === null ? null : { ...spec.tunnel },
  };
}

/**
 * The address of a backend's host: the service's family is required, or only preferred for a tunnel. `keep`: the
 * backend's address now, kept while the name still has it (see ResolveOptions.keep).
 */
export function resolveBackendAddress(
  spec: BackendSpec,
  service: ServiceKey,
  resolver: HostResolver,
  keep: ResolvedAddress | null = null,
): Promise<ResolvedAddress> {
  return resolveHost(spec.host, resolver, { ...backendResolveOptions(spec, service), keep });
}

/** resolveBackendAddress for a host that is an address literal, in the call; null for a name. */
export function backendLiteral(spec: BackendSpec, service: ServiceKey): ResolvedAddress | null {
  return resolveLiteral(spec.host, backendResolveOptions(spec, service));
}

function backendResolveOptions(spec: BackendSpec, service: ServiceKey): ResolveOptions {
  const tunnel = FORWARD_OF[spec.method] === "tunnel";
  return { field: "host", required: tunnel ? null : service.family, prefer: service.family, role: "backend" };
}

/** How long a DNS lookup may take before the request is refused (field "host"). */
export const DEFAULT_RESOLVE_TIMEOUT_MS = 2000;

/** ResolveTimeoutError: a name did not resolve in time; `ms` is the limit. */
export class ResolveTimeoutError extends Error {
  override readonly name = "ResolveTimeoutError";
  readonly ms: number;

  constructor(ms: number) {
    super(`did not resolve within ${ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`}`);
    this.ms = ms;
  }
}

/** `resolver` with a time limit: a lookup still running after `ms` rejects with ResolveTimeoutError. */
export function withTimeout(resolver: HostResolver, ms: number): HostResolver {
  return (host) =>
    new Promise<readonly ResolvedAddress[]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new ResolveTimeoutError(ms)), ms);
      resolver(host).then(
        (found) => {
          clearTimeout(timer);
          resolve(found);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error);
        },
      );
    });
}

/** The DNS names among `hosts` (address literals and empty hosts need no lookup). */
export function namesOf(hosts: Iterable<unknown>): Set<string> {
  const names = new Set<string>();
  for (const host of hosts) {
    if (typeof host === "string" && host !== "" && addressFamily(host) === null && /^[A-Za-z0-9_.-]+$/.test(host)) names.add(host);
  }
  return names;
}

/**
 * Look every DNS name among `hosts` up now, in parallel (gorb calls this before it takes its lock, so a slow
 * resolver never holds up other requests or health-driven drains), and return a resolver that answers from
 * those results: the same answers or errors, without waiting again. A name that was not looked up goes to
 * `resolver` (already time-limited).
 */
export async function prefetchHosts(hosts: Iterable<unknown>, resolver: HostResolver): Promise<HostResolver> {
  const results = new Map<string, { ok: true; found: readonly ResolvedAddress[] } | { ok: false; error: unknown }>();
  await Promise.all(
    [...namesOf(hosts)].map(async (name) => {
      try {
        results.set(name, { ok: true, found: await resolver(name) });
      } catch (error) {
        results.set(name, { ok: false, error });
      }
    }),
  );
  return async (host) => {
    const known = results.get(host);
    if (known === undefined) return resolver(host);
    if (known.ok) return known.found;
    throw known.error;
  };
}
