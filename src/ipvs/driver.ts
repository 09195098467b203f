/**
 * The IPVS driver port: everything above (core, API, CLI) talks to IPVS through this interface.
 * Two implementations: KernelIpvsDriver (generic netlink) and MemoryIpvsDriver (same semantics, in memory).
 *
 * Errors: every method rejects with IpvsError carrying the kernel's errno name:
 *   EEXIST  service or destination already exists
 *   ESRCH   no such service
 *   ENOENT  no such destination, or unknown scheduler / persistence engine
 *   EINVAL  invalid combination (GUE without port, mixed families without tunnel, bad IPv6 netmask, ...)
 *   ERANGE  weight out of range, or lower threshold above upper threshold
 */
import type {
  Destination,
  DestinationConfig,
  DestinationKey,
  IpvsInfo,
  IpvsOp,
  Service,
  ServiceConfig,
  ServiceKey,
  ServiceWithDestinations,
  Timeouts,
} from "./types.ts";
import type { IpvsError } from "./errors.ts";

/** Outcome of one op in a batch: null on success, the error otherwise. */
export type ApplyResult = (IpvsError | null)[];

export interface IpvsDriver {
  /** IPVS version and connection table size. */
  info(): Promise<IpvsInfo>;
  /** Connection timeouts (tcp, tcpfin, udp) in seconds. */
  getTimeouts(): Promise<Timeouts>;
  /** Set connection timeouts; a field left out (or 0) keeps its value. */
  setTimeouts(timeouts: Partial<Timeouts>): Promise<void>;
  /** Delete every virtual service. */
  flush(): Promise<void>;
  /** Zero the counters of one service, or of everything when key is omitted. */
  zero(key?: ServiceKey): Promise<void>;

  addService(service: ServiceConfig): Promise<void>;
  /** Replace a service's scheduler, flags, timeout, netmask and PE in place. */
  updateService(service: ServiceConfig): Promise<void>;
  deleteService(key: ServiceKey): Promise<void>;
  getService(key: ServiceKey): Promise<Service>;
  listServices(): Promise<Service[]>;

  addDestination(service: ServiceKey, destination: DestinationConfig): Promise<void>;
  /** Replace a destination's forwarding, weight, thresholds and tunnel options in place. */
  updateDestination(service: ServiceKey, destination: DestinationConfig): Promise<void>;
  deleteDestination(service: ServiceKey, destination: DestinationKey): Promise<void>;
  /** Destinations of a service; rejects with ESRCH when the service does not exist. */
  listDestinations(service: ServiceKey): Promise<Destination[]>;

  /** Every service with its destinations (one dump of services, one per service for destinations). */
  snapshot(): Promise<ServiceWithDestinations[]>;

  /**
   * Apply many writes. Ops run in order; a failed op does not stop the ones after it.
   * The kernel driver packs several requests into each send, so this is the fast path for bulk work.
   */
  apply(ops: readonly IpvsOp[]): Promise<ApplyResult>;

  /** Release the driver's resources (the netlink socket). */
  close(): void;
}
