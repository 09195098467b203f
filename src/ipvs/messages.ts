/**
 * Plain-English messages for IPVS failures, shared by both drivers so that the same failure reads the same
 * whether it came from the kernel (an errno with no text) or from the in-memory driver.
 *
 * The kernel driver gets only an errno back; `ipvsErrorFor(op, errno, context)` turns it into an IpvsError
 * whose message names the object, using what the request carried to tell apart the causes that share an errno
 * (ENOENT: scheduler or persistence engine; EINVAL: mixed family, GUE port or unroutable address).
 */
import { canonicalAddress, describeDestination, describeService } from "./address.ts";
import { IP_VS_MAX_WEIGHT, NETMASK_RANGE } from "./constants.ts";
import { ERRNO, IpvsError, errnoName, type IpvsField, type IpvsOperation } from "./errors.ts";
import type {
  DestinationConfig,
  DestinationKey,
  ServiceConfig,
  ServiceKey,
} from "./types.ts";
import { PERSISTENCE_ENGINES, SCHEDULERS, isFwmarkKey } from "./types.ts";

/** What the failed request was about; every field is optional, more context gives a more precise message. */
export interface IpvsErrorContext {
  /** The service the request addressed. Taken from `serviceConfig.key` when only that is given. */
  readonly service?: ServiceKey;
  /** The full service of an add-service / update-service request. */
  readonly serviceConfig?: ServiceConfig;
  /** The destination of a destination request: a key for delete, a full config for add and update. */
  readonly destination?: DestinationKey | DestinationConfig;
}

/** "tcp 10.0.0.1:80" with the address in canonical form when it parses. */
function serviceName(key: ServiceKey): string {
  if (isFwmarkKey(key)) return describeService(key);
  try {
    return describeService({ ...key, address: canonicalAddress(key.address) });
  } catch {
    return describeService(key);
  }
}

/** "10.77.1.2:80" with the address in canonical form when it parses. */
function destinationName(key: DestinationKey): string {
  try {
    return describeDestination({ ...key, address: canonicalAddress(key.address) });
  } catch {
    return describeDestination(key);
  }
}

function inService(dest: DestinationKey, service: ServiceKey): string {
  return `destination ${destinationName(dest)} in service ${serviceName(service)}`;
}

/** EEXIST on add-service. */
export function serviceExists(key: ServiceKey): IpvsError {
  return new IpvsError("add-service", ERRNO.EEXIST, `service ${serviceName(key)} already exists`);
}

/** ESRCH: the addressed service does not exist. */
export function noSuchService(op: IpvsOperation, key: ServiceKey): IpvsError {
  return new IpvsError(op, ERRNO.ESRCH, `no such service ${serviceName(key)}`);
}

/** ENOENT on add/update-service: the kernel has no ip_vs_<name> module. */
export function unknownScheduler(op: IpvsOperation, key: ServiceKey, scheduler: string): IpvsError {
  return new IpvsError(
    op,
    ERRNO.ENOENT,
    `unknown scheduler ${JSON.stringify(scheduler)} (no ip_vs_${scheduler} module) for service ${serviceName(key)}`,
    { field: "scheduler" },
  );
}

/** ENOENT on add/update-service: the kernel has no ip_vs_pe_<name> module. */
export function unknownPersistenceEngine(op: IpvsOperation, key: ServiceKey, pe: string): IpvsError {
  return new IpvsError(
    op,
    ERRNO.ENOENT,
    `unknown persistence engine ${JSON.stringify(pe)} (no ip_vs_pe_${pe} module) for service ${serviceName(key)}`,
    { field: "pe" },
  );
}

/** EINVAL on add/update-service: an IPv6 service's netmask is a prefix length that must be 1..128. */
export function badIpv6Netmask(op: IpvsOperation, key: ServiceKey, netmask: number): IpvsError {
  return new IpvsError(
    op,
    ERRNO.EINVAL,
    `service ${serviceName(key)}: netmask ${netmask} is not an IPv6 prefix length (${NETMASK_RANGE.inet6.min}..${NETMASK_RANGE.inet6.max})`,
    { field: "netmask" },
  );
}

/** EEXIST on add-destination. */
export function destinationExists(service: ServiceKey, dest: DestinationKey): IpvsError {
  return new IpvsError(
    "add-destination",
    ERRNO.EEXIST,
    `destination ${destinationName(dest)} already exists in service ${serviceName(service)}`,
  );
}

/** ENOENT on update/delete-destination. */
export function noSuchDestination(op: IpvsOperation, service: ServiceKey, dest: DestinationKey): IpvsError {
  return new IpvsError(
    op,
    ERRNO.ENOENT,
    `no such destination ${destinationName(dest)} in service ${serviceName(service)}`,
  );
}

/** ERANGE: weight below 0 or above 2^31-1. */
export function weightOutOfRange(op: IpvsOperation, service: ServiceKey, dest: DestinationConfig): IpvsError {
  return new IpvsError(
    op,
    ERRNO.ERANGE,
    `${inService(dest, service)}: weight ${dest.weight} is outside 0..${IP_VS_MAX_WEIGHT}`,
    { field: "weight" },
  );
}

/** ERANGE: lower threshold above upper threshold (the kernel checks this even when the upper one is 0). */
export function thresholdsOutOfOrder(op: IpvsOperation, service: ServiceKey, dest: DestinationConfig): IpvsError {
  return new IpvsError(
    op,
    ERRNO.ERANGE,
    `${inService(dest, service)}: lower threshold ${dest.lowerThreshold} is above upper threshold ${dest.upperThreshold}`,
    { field: "lowerThreshold" },
  );
}

/** EINVAL: a GUE tunnel needs a destination UDP port. */
export function gueWithoutPort(op: IpvsOperation, service: ServiceKey, dest: DestinationKey): IpvsError {
  return new IpvsError(op, ERRNO.EINVAL, `${inService(dest, service)}: a gue tunnel needs a tunnel port other than 0`, {
    field: "tunnelPort",
  });
}

/** EINVAL: a destination of another family than its service is only possible over a tunnel. */
export function mixedFamily(
  op: IpvsOperation,
  service: ServiceKey,
  dest: DestinationKey & { readonly forward?: string },
): IpvsError {
  const forward = dest.forward === undefined ? "" : `, not ${JSON.stringify(dest.forward)}`;
  return new IpvsError(
    op,
    ERRNO.EINVAL,
    `${inService(dest, service)}: an ${dest.family} destination in an ${service.family} service needs forward "tunnel"${forward}`,
    { field: "address" },
  );
}

/** EINVAL on add-destination: the kernel only takes unicast (or local) addresses it can route. */
export function destinationNotRoutable(op: IpvsOperation, service: ServiceKey, dest: DestinationKey): IpvsError {
  return new IpvsError(
    op,
    ERRNO.EINVAL,
    `${inService(dest, service)}: the address is not a unicast or local address the kernel can route`,
    { field: "address" },
  );
}

/**
 * EINVAL for a field gorb cannot send: `field` is the attribute, `subject` names the object, `problem` says
 * what is wrong with it.
 */
export function invalidField(op: IpvsOperation, field: IpvsField, subject: string | (() => string), problem: string): IpvsError {
  // A function: the subject's text is made only for an error (every destination of a batch is checked).
  return new IpvsError(op, ERRNO.EINVAL, `${typeof subject === "string" ? subject : subject()}: ${problem}`, { field });
}

const ERRNO_TEXT: Readonly<Record<string, string>> = {
  EPERM: "operation not permitted (IPVS needs CAP_NET_ADMIN)",
  ENOENT: "no such file or directory",
  ESRCH: "no such process",
  EINTR: "interrupted",
  EIO: "input/output error",
  ENOMEM: "out of memory",
  EBUSY: "busy",
  EEXIST: "already exists",
  EINVAL: "invalid argument",
  ERANGE: "value out of range",
  EAGAIN: "try again",
  ENOBUFS: "no buffer space",
  ENOPROTOOPT: "protocol not available (the ip_vs module is going away)",
  EOPNOTSUPP: "operation not supported",
  EAFNOSUPPORT: "address family not supported (is IPv6 enabled in the kernel?)",
  ETIMEDOUT: "timed out",
};

function subjectOf(context: IpvsErrorContext): string {
  const service = context.service ?? context.serviceConfig?.key;
  if (service !== undefined && context.destination !== undefined) return inService(context.destination, service);
  if (service !== undefined) return `service ${serviceName(service)}`;
  return "";
}

function generic(op: IpvsOperation, errno: number, context: IpvsErrorContext): IpvsError {
  const code = errnoName(errno);
  const subject = subjectOf(context);
  const what = ERRNO_TEXT[code] ?? "error";
  return new IpvsError(op, errno, `${op}${subject === "" ? "" : ` ${subject}`} failed: ${what} (${code})`);
}

function isFullDestination(dest: DestinationKey | DestinationConfig | undefined): dest is DestinationConfig {
  return dest !== undefined && "forward" in dest && "weight" in dest;
}

/** Where an errno came from: the kernel's extended-ack text and the transport error, when there are any. */
export interface KernelReply {
  readonly kernelMessage?: string | null;
  readonly cause?: unknown;
}

/**
 * The IpvsError for an errno the kernel returned to `op`, with a message built from what the request carried
 * and the attribute it concerns; `reply` adds the kernel's extended-ack text and the transport error as cause.
 * Both drivers use it, so the same failure has the same text whichever driver reports it.
 */
export function ipvsErrorFor(
  op: IpvsOperation,
  errno: number,
  context: IpvsErrorContext = {},
  reply: KernelReply = {},
): IpvsError {
  const error = describeErrno(op, errno, context);
  if ((reply.kernelMessage ?? null) === null && reply.cause === undefined) return error;
  return new IpvsError(op, errno, error.message, {
    field: error.field,
    kernelMessage: reply.kernelMessage ?? null,
    cause: reply.cause,
  });
}

function describeErrno(op: IpvsOperation, errno: number, context: IpvsErrorContext): IpvsError {
  const service = context.service ?? context.serviceConfig?.key;
  const dest = context.destination;
  const isServiceOp = op === "add-service" || op === "update-service";
  const isDestOp = op === "add-destination" || op === "update-destination" || op === "delete-destination";

  if (service !== undefined) {
    if (errno === ERRNO.ESRCH) return noSuchService(op, service);
    if (errno === ERRNO.EEXIST && op === "add-service") return serviceExists(service);
  }

  if (isServiceOp && service !== undefined && context.serviceConfig !== undefined) {
    const cfg = context.serviceConfig;
    if (errno === ERRNO.ENOENT) {
      // The kernel looks the scheduler up first, then the persistence engine; both fail with ENOENT.
      const knownScheduler = (SCHEDULERS as readonly string[]).includes(cfg.scheduler);
      if (cfg.pe === null || !knownScheduler) return unknownScheduler(op, service, cfg.scheduler);
      if (!(PERSISTENCE_ENGINES as readonly string[]).includes(cfg.pe)) return unknownPersistenceEngine(op, service, cfg.pe);
      return new IpvsError(
        op,
        errno,
        `unknown scheduler ${JSON.stringify(cfg.scheduler)} or persistence engine ${JSON.stringify(cfg.pe)} ` +
          `(no ip_vs_${cfg.scheduler} or ip_vs_pe_${cfg.pe} module) for service ${serviceName(service)}`,
      );
    }
    const v6 = NETMASK_RANGE.inet6;
    if (errno === ERRNO.EINVAL && service.family === "inet6" && (cfg.netmask < v6.min || cfg.netmask > v6.max)) {
      return badIpv6Netmask(op, service, cfg.netmask);
    }
  }

  if (isDestOp && service !== undefined && dest !== undefined) {
    if (errno === ERRNO.EEXIST && op === "add-destination") return destinationExists(service, dest);
    if (errno === ERRNO.ENOENT) return noSuchDestination(op, service, dest);
    if (isFullDestination(dest)) {
      if (errno === ERRNO.ERANGE) {
        if (dest.weight < 0 || dest.weight > IP_VS_MAX_WEIGHT) return weightOutOfRange(op, service, dest);
        if (dest.lowerThreshold > dest.upperThreshold) return thresholdsOutOfOrder(op, service, dest);
      }
      if (errno === ERRNO.EINVAL) {
        if (dest.family !== service.family && dest.forward !== "tunnel") return mixedFamily(op, service, dest);
        if (dest.forward === "tunnel" && dest.tunnel?.type === "gue" && dest.tunnel.port === 0) {
          return gueWithoutPort(op, service, dest);
        }
        if (op === "add-destination") return destinationNotRoutable(op, service, dest);
      }
    }
  }

  return generic(op, errno, context);
}
