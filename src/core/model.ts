/**
 * The desired state gorb keeps for each virtual service and backend, in normalised form, and the GORB wire
 * shapes they are shown as. A spec is what the client asked for with every default filled in; addresses are
 * resolved separately (./resolve.ts), so a spec still carries the host as the client wrote it.
 */
import type { BackendMethod, SorryMethod } from "../contract/fields.ts";
import type { Family, Protocol, TunnelChecksum, TunnelType } from "../ipvs/types.ts";
import type { RenderedPulseWire } from "../health/options.ts";
import type { PulseSpec } from "./pulse.ts";

/** A virtual service as the client asked for it, defaults filled in. */
export interface ServiceSpec {
  /** Host as sent ("" = the default address); a name or an address literal. Ignored for fwmark services. */
  readonly host: string;
  /** Port 1..65535, or 0 for a fwmark service. */
  readonly port: number;
  readonly protocol: Protocol;
  /** Scheduler name, lower case, one of SCHEDULERS. */
  readonly method: string;
  /** Canonical flag list: the flag names joined with "|", in the order given, without duplicates. */
  readonly flags: string;
  readonly persistent: boolean;
  /** Seconds; 0 when not persistent. */
  readonly persistenceTimeout: number;
  /** Persistence granularity as a prefix length; null = a single client address (/32 or /128). */
  readonly persistenceNetmask: number | null;
  /** Firewall mark, or null for an address service. */
  readonly fwmark: number | null;
  /**
   * Requested address family: required for fwmark services (default "inet"); for address services it picks
   * which address of a DNS name to use and must match an address literal. null = any (IPv4 preferred).
   */
  readonly family: Family | null;
  /** Persistence engine ("sip") or null. */
  readonly pe: string | null;
  readonly onePacket: boolean;
  /**
   * Percent (0..100) of the service's backends that may be down at once; when more would be, health checks
   * stop draining (panic mode). 0 = off.
   */
  readonly panicThreshold: number;
  /** BGP: backends that must be up with weight > 0 for this node to announce the VIP; 0 = never announce. */
  readonly announceMinHealthy: number;
  /** sh/mh: also set the scheduler's fallback flag in IPVS (a weight-0 backend's flows go elsewhere). */
  readonly hashFallback: boolean;
  /** Failover (./failover.ts): the destination that serves alone while the service is down; null = none. */
  readonly sorryServer: SorrySpec | null;
  /** Healthy backends the service needs to be up; 0 = no quorum. */
  readonly quorum: number;
  readonly hysteresis: number;
  /** Programs run when the service comes up / goes down ("" = none). */
  readonly quorumUp: string;
  readonly quorumDown: string;
}

/** A sorry server: an IP address literal (never resolved), a port (0: the service's) and a method. */
export interface SorrySpec {
  readonly host: string;
  readonly port: number;
  readonly method: SorryMethod;
}

/** Tunnel options of a tunnel backend. */
export interface TunnelSpec {
  readonly type: TunnelType;
  readonly port: number;
  readonly checksum: TunnelChecksum;
}

/** A backend (real server) as the client asked for it, defaults filled in. */
export interface BackendSpec {
  /** Host as sent; a name or an address literal. */
  readonly host: string;
  /** Port; the service's port when the client gives none. */
  readonly port: number;
  /** Configured weight 0..2^31-1 (0 = created drained). */
  readonly weight: number;
  readonly method: BackendMethod;
  readonly upperThreshold: number;
  readonly lowerThreshold: number;
  /** Tunnel options; non-null exactly when method is "tunnel" or "ipip". */
  readonly tunnel: TunnelSpec | null;
  readonly pulse: PulseSpec;
  /** Operator override: effective weight 0 while true, whatever health says. */
  readonly maintenance: boolean;
  /** Slow start (./slow-start.ts): milliseconds of the linear weight ramp after creation or recovery; 0 = off. */
  readonly slowStartMs: number;
}

/** `options` of GET /service/:service: the GORB fields first, in GORB's order, then gorb's own. */
export interface ServiceOptionsView {
  host: string;
  port: number;
  protocol: string;
  method: string;
  flags: string;
  persistent: boolean;
  persistence_timeout: number;
  persistence_netmask: number;
  fwmark: number;
  family: Family;
  pe: string;
  one_packet: boolean;
  panic_threshold: number;
  announce_min_healthy: number;
  hash_fallback: boolean;
  sorry_server: { host: string; port: number; method: string } | null;
  quorum: number;
  hysteresis: number;
  quorum_up: string;
  quorum_down: string;
  /** The address the service is bound to (the resolved host); "" for fwmark services. */
  address: string;
}

/** `options` of GET /service/:service/:backend. `weight` is the configured weight. */
export interface BackendOptionsView {
  host: string;
  port: number;
  weight: number;
  method: string;
  pulse: RenderedPulseWire;
  vsid: string;
  upper_threshold: number;
  lower_threshold: number;
  tunnel_type: string;
  tunnel_port: number;
  tunnel_checksum: string;
  /** The slow-start duration as given ("30s"); "" when off. */
  slow_start: string;
  /** The resolved address of the backend. */
  address: string;
  maintenance: boolean;
}
