/**
 * The discovery seam: gorb announces each virtual service to a service registry (Consul) when it is created
 * (and again at every start) and withdraws it when it is deleted. Announcing never fails a request: implementations queue and retry in
 * the background and only log.
 */

/** What gorb announces for one virtual service. */
export interface ServiceRegistration {
  /** The gorb service id; the registry's service name. */
  readonly id: string;
  /** The service's address (the VIP). */
  readonly address: string;
  readonly port: number;
  /** "tcp", "udp" or "sctp"; becomes a tag. */
  readonly protocol: string;
}

/** Discovery registers services with a registry. Every method returns at once and never throws. */
export interface Discovery {
  /** Announce a service (again, if it already was: the registry replaces it). */
  expose(registration: ServiceRegistration): void;
  /** Withdraw a service. */
  remove(id: string): void;
  /**
   * Stop retrying; resolves when done. Registrations outlive a restart (IPVS keeps serving): implementations
   * withdraw them here only when configured to (ConsulDiscovery's deregisterOnClose).
   */
  close(): Promise<void>;
}
