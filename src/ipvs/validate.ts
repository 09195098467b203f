/**
 * Checks that run before a request reaches IPVS, shared by both drivers. They cover values the netlink
 * attributes cannot carry (a port above 65535, an IPv4 prefix above 32, a fwmark of 0 that would turn into an
 * address service) and a few gorb rules that keep the model unambiguous (tunnel options only on tunnel
 * destinations). Semantic checks the kernel makes itself (EEXIST, ESRCH, scheduler lookup, IPv6 netmask range,
 * thresholds, GUE port, mixed families) are NOT here: the kernel driver leaves them to the kernel and the
 * memory driver makes them in the kernel's order.
 *
 * Every check throws an IpvsError (EINVAL, or ERANGE for a weight) whose `field` is the attribute and whose
 * message names the object and the field. Request rules (what a client may ask for: defaults, which options go
 * together) are core's (src/core/normalize.ts over src/contract/); these are only what the attributes can carry.
 *
 * This module also holds the canonical forms both drivers must read back (`canonicalServiceKey`,
 * `canonicalTunnel`), so a config written through either driver reads back identically.
 */
import { addressFamily, canonicalAddress, describeDestination, describeService } from "./address.ts";
import type { IpvsOperation } from "./errors.ts";
import { invalidField, weightOutOfRange } from "./messages.ts";
import {
  IP_VS_MAX_WEIGHT,
  IP_VS_PENAME_MAXLEN,
  IP_VS_SCHEDNAME_MAXLEN,
  NETMASK_RANGE,
  U16_MAX,
  U32_MAX,
} from "./constants.ts";
import type { DestinationConfig, DestinationKey, ForwardMethod, ServiceConfig, ServiceKey, Timeouts, TunnelConfig } from "./types.ts";
import { FAMILIES, FORWARD_METHODS, PROTOCOLS, TUNNEL_CHECKSUMS, TUNNEL_TYPES, isFwmarkKey } from "./types.ts";

/** `list.includes(value)` for a value of any type (the lists are `as const` tuples of strings). */
function oneOf(list: readonly string[], value: unknown): boolean {
  return typeof value === "string" && list.includes(value);
}

/** A tunnel destination written without options: plain IPIP, no port, no checksum. */
export const PLAIN_IPIP: TunnelConfig = Object.freeze({ type: "ipip", port: 0, checksum: "nocsum" });

function isIntIn(value: unknown, min: number, max: number): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= min && value <= max;
}

function show(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

function serviceSubject(key: ServiceKey): string {
  return `service ${describeService(key)}`;
}

/** Throws EINVAL unless the key can be sent: a known family, and a fwmark 1..2^32-1 or protocol + address + port. */
export function validateServiceKey(op: IpvsOperation, key: ServiceKey): void {
  const subject = (): string => serviceSubject(key);
  if (!oneOf(FAMILIES, key.family)) {
    throw invalidField(op, "family", subject, `family ${show(key.family)} is not "inet" or "inet6"`);
  }
  if (isFwmarkKey(key)) {
    if (!isIntIn(key.fwmark, 1, U32_MAX)) {
      throw invalidField(op, "fwmark", subject, `fwmark ${show(key.fwmark)} is not an integer in 1..${U32_MAX}`);
    }
    return;
  }
  if (!oneOf(PROTOCOLS, key.protocol)) {
    throw invalidField(op, "protocol", subject, `protocol ${show(key.protocol)} is not one of ${PROTOCOLS.join(", ")}`);
  }
  const family = typeof key.address === "string" ? addressFamily(key.address) : null;
  if (family === null) throw invalidField(op, "address", subject, `address ${show(key.address)} is not an IP address`);
  if (family !== key.family) {
    throw invalidField(op, "address", subject, `address ${key.address} is not an ${key.family} address`);
  }
  if (!isIntIn(key.port, 0, U16_MAX)) {
    throw invalidField(op, "port", subject, `port ${show(key.port)} is not an integer in 0..${U16_MAX}`);
  }
}

function checkName(op: IpvsOperation, subject: () => string, field: "scheduler" | "pe", value: unknown, maxLen: number): void {
  if (typeof value !== "string" || value.length === 0) {
    throw invalidField(op, field, subject, `${field} ${show(value)} is not a non-empty name`);
  }
  // The attribute is a NUL-terminated string; the kernel policy rejects longer ones.
  if (value.length > maxLen - 1 || !/^[A-Za-z0-9_-]+$/.test(value)) {
    throw invalidField(
      op,
      field,
      subject,
      `${field} ${show(value)} must be up to ${maxLen - 1} letters, digits, "_" or "-"`,
    );
  }
}

/** Throws EINVAL unless the whole service can be sent (key, scheduler and PE names, flags, timeout, netmask). */
export function validateServiceConfig(op: IpvsOperation, config: ServiceConfig): void {
  validateServiceKey(op, config.key);
  const subject = (): string => serviceSubject(config.key);
  checkName(op, subject, "scheduler", config.scheduler, IP_VS_SCHEDNAME_MAXLEN);
  if (config.pe !== null) checkName(op, subject, "pe", config.pe, IP_VS_PENAME_MAXLEN);
  const flags = config.flags as unknown;
  if (typeof flags !== "object" || flags === null) throw invalidField(op, "flags", subject, "flags are missing");
  for (const name of ["persistent", "onePacket", "sched1", "sched2", "sched3"] as const) {
    if (typeof config.flags[name] !== "boolean") {
      throw invalidField(op, "flags", subject, `flag ${name} is ${show(config.flags[name])}, not true or false`);
    }
  }
  if (!isIntIn(config.timeout, 0, U32_MAX)) {
    throw invalidField(op, "timeout", subject, `timeout ${show(config.timeout)} is not a number of seconds in 0..${U32_MAX}`);
  }
  if (config.key.family === "inet") {
    if (!isIntIn(config.netmask, NETMASK_RANGE.inet.min, NETMASK_RANGE.inet.max)) {
      throw invalidField(op, "netmask", subject, `netmask ${show(config.netmask)} is not an IPv4 prefix length (${NETMASK_RANGE.inet.min}..${NETMASK_RANGE.inet.max})`);
    }
  } else if (!isIntIn(config.netmask, 0, U32_MAX)) {
    // 1..128 is the kernel's own rule (EINVAL), checked by the kernel or, for the memory driver, in its place.
    throw invalidField(op, "netmask", subject, `netmask ${show(config.netmask)} is not an IPv6 prefix length (${NETMASK_RANGE.inet6.min}..${NETMASK_RANGE.inet6.max})`);
  }
}

function destinationSubject(service: ServiceKey, dest: DestinationKey): string {
  return `destination ${describeDestination(dest)} in ${serviceSubject(service)}`;
}

/** Throws EINVAL unless the destination key can be sent (family, address of that family, port 0..65535). */
export function validateDestinationKey(op: IpvsOperation, service: ServiceKey, dest: DestinationKey): void {
  const subject = (): string => destinationSubject(service, dest);
  if (!oneOf(FAMILIES, dest.family)) {
    throw invalidField(op, "family", subject, `family ${show(dest.family)} is not "inet" or "inet6"`);
  }
  const family = typeof dest.address === "string" ? addressFamily(dest.address) : null;
  if (family === null) throw invalidField(op, "address", subject, `address ${show(dest.address)} is not an IP address`);
  if (family !== dest.family) throw invalidField(op, "address", subject, `address ${dest.address} is not an ${dest.family} address`);
  if (!isIntIn(dest.port, 0, U16_MAX)) {
    throw invalidField(op, "port", subject, `port ${show(dest.port)} is not an integer in 0..${U16_MAX}`);
  }
}

/**
 * Throws unless the destination can be sent: EINVAL for a bad key, forwarding method, threshold or tunnel
 * option, ERANGE for a weight outside 0..2^31-1 (the kernel's own errno for it).
 * Tunnel options are only allowed with forward "tunnel"; a port only with GUE; remcsum only with GUE.
 */
export function validateDestinationConfig(op: IpvsOperation, service: ServiceKey, dest: DestinationConfig): void {
  validateDestinationKey(op, service, dest);
  const subject = (): string => destinationSubject(service, dest);
  if (!oneOf(FORWARD_METHODS, dest.forward)) {
    throw invalidField(op, "forward", subject, `forward ${show(dest.forward)} is not one of ${FORWARD_METHODS.join(", ")}`);
  }
  if (typeof dest.weight !== "number" || !Number.isInteger(dest.weight)) {
    throw invalidField(op, "weight", subject, `weight ${show(dest.weight)} is not an integer`);
  }
  if (dest.weight < 0 || dest.weight > IP_VS_MAX_WEIGHT) throw weightOutOfRange(op, service, dest);
  for (const field of ["upperThreshold", "lowerThreshold"] as const) {
    if (!isIntIn(dest[field], 0, U32_MAX)) {
      throw invalidField(op, field, subject, `${field} ${show(dest[field])} is not an integer in 0..${U32_MAX}`);
    }
  }
  const tunnel = dest.tunnel;
  if (tunnel === null) return;
  if (dest.forward !== "tunnel") {
    throw invalidField(op, "tunnelType", subject, `tunnel options need forward "tunnel", not ${JSON.stringify(dest.forward)}`);
  }
  if (!oneOf(TUNNEL_TYPES, tunnel.type)) {
    throw invalidField(op, "tunnelType", subject, `tunnel type ${show(tunnel.type)} is not one of ${TUNNEL_TYPES.join(", ")}`);
  }
  if (!isIntIn(tunnel.port, 0, U16_MAX)) {
    throw invalidField(op, "tunnelPort", subject, `tunnel port ${show(tunnel.port)} is not an integer in 0..${U16_MAX}`);
  }
  if (tunnel.type !== "gue" && tunnel.port !== 0) {
    throw invalidField(op, "tunnelPort", subject, `tunnel port ${tunnel.port} is only for gue tunnels, not ${tunnel.type}`);
  }
  if (!oneOf(TUNNEL_CHECKSUMS, tunnel.checksum)) {
    throw invalidField(op, "tunnelChecksum", subject, `tunnel checksum ${show(tunnel.checksum)} is not one of ${TUNNEL_CHECKSUMS.join(", ")}`);
  }
  if (tunnel.checksum === "remcsum" && tunnel.type !== "gue") {
    throw invalidField(op, "tunnelChecksum", subject, `tunnel checksum "remcsum" is only for gue tunnels, not ${tunnel.type}`);
  }
  if (tunnel.type === "ipip" && tunnel.checksum !== "nocsum") {
    throw invalidField(op, "tunnelChecksum", subject, `tunnel checksum ${JSON.stringify(tunnel.checksum)} is only for gue and gre tunnels`);
  }
}

/** Throws EINVAL unless every given timeout is a number of seconds in 0..2^32-1 (0 keeps the current value). */
export function validateTimeouts(op: IpvsOperation, timeouts: Partial<Timeouts>): void {
  for (const field of ["tcp", "tcpFin", "udp"] as const) {
    const value = timeouts[field];
    if (value !== undefined && !isIntIn(value, 0, U32_MAX)) {
      throw invalidField(op, "timeouts", "timeouts", `${field} ${show(value)} is not a number of seconds in 0..${U32_MAX}`);
    }
  }
}

/** The key with its address in canonical text (IPv6 compressed, lower case). Expects a validated key. */
export function canonicalServiceKey(key: ServiceKey): ServiceKey {
  if (isFwmarkKey(key)) return { family: key.family, fwmark: key.fwmark };
  return { family: key.family, protocol: key.protocol, address: canonicalAddress(key.address), port: key.port };
}

/** The destination key with its address in canonical text. Expects a validated key. */
export function canonicalDestinationKey(key: DestinationKey): DestinationKey {
  return { family: key.family, address: canonicalAddress(key.address), port: key.port };
}

/**
 * The tunnel options as both drivers read them back: null for every forwarding method but "tunnel", and for
 * "tunnel" always an object; a tunnel written as null reads back as PLAIN_IPIP (the kernel reports type 0,
 * port 0, flags 0 for it).
 */
export function canonicalTunnel(forward: ForwardMethod, tunnel: TunnelConfig | null): TunnelConfig | null {
  if (forward !== "tunnel") return null;
  const t = tunnel ?? PLAIN_IPIP;
  return { type: t.type, port: t.port, checksum: t.checksum };
}

