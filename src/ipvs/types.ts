/**
 * Domain types of the IPVS driver: what a virtual service and a destination (real server) are,
 * independent of how they travel over netlink. Addresses are canonical text (see ./address.ts).
 */

/** Address families of services and destinations. */
export const FAMILIES = ["inet", "inet6"] as const;
/** Address family of a service or destination. */
export type Family = (typeof FAMILIES)[number];

/** Transport protocols of a non-fwmark service. */
export const PROTOCOLS = ["tcp", "udp", "sctp"] as const;
/** Transport protocol of a non-fwmark service. */
export type Protocol = (typeof PROTOCOLS)[number];

/** Packet forwarding methods of a destination (IP_VS_CONN_F_*). */
export const FORWARD_METHODS = ["nat", "local", "tunnel", "dr", "bypass"] as const;
/** Packet forwarding method of a destination (IP_VS_CONN_F_*). */
export type ForwardMethod = (typeof FORWARD_METHODS)[number];

/** Encapsulations of a tunnel destination (Linux 5.2+, GRE 5.3+). */
export const TUNNEL_TYPES = ["ipip", "gue", "gre"] as const;
/** Encapsulation of a tunnel destination. */
export type TunnelType = (typeof TUNNEL_TYPES)[number];

/** Checksum modes of a GUE or GRE tunnel. remcsum is GUE only; ipip takes none. */
export const TUNNEL_CHECKSUMS = ["nocsum", "csum", "remcsum"] as const;
/** Checksum mode of a tunnel. */
export type TunnelChecksum = (typeof TUNNEL_CHECKSUMS)[number];

/** Persistence engines the kernel ships (ip_vs_pe_<name>). */
export const PERSISTENCE_ENGINES = ["sip"] as const;

/** The schedulers the kernel ships as ip_vs_<name> modules. */
export const SCHEDULERS = [
  "rr",
  "wrr",
  "lc",
  "wlc",
  "lblc",
  "lblcr",
  "dh",
  "sh",
  "sed",
  "nq",
  "fo",
  "ovf",
  "mh",
  "twos",
] as const;
export type KnownScheduler = (typeof SCHEDULERS)[number];

/** Identity of a virtual service addressed by protocol, address and port. */
export interface AddressServiceKey {
  readonly family: Family;
  readonly protocol: Protocol;
  readonly address: string;
  readonly port: number;
}

/** Identity of a virtual service addressed by firewall mark. */
export interface FwmarkServiceKey {
  readonly family: Family;
  readonly fwmark: number;
}

/** A service is identified either by (family, protocol, address, port) or by (family, fwmark). */
export type ServiceKey = AddressServiceKey | FwmarkServiceKey;

/** Service flags (IP_VS_SVC_F_*), without the kernel-internal HASHED bit. */
export interface ServiceFlags {
  /** IP_VS_SVC_F_PERSISTENT: clients stick to a destination for `timeout` seconds. */
  readonly persistent: boolean;
  /** IP_VS_SVC_F_ONEPACKET: schedule every UDP datagram on its own (UDP and fwmark only). */
  readonly onePacket: boolean;
  /** IP_VS_SVC_F_SCHED1: sh-fallback / mh-fallback. */
  readonly sched1: boolean;
  /** IP_VS_SVC_F_SCHED2: sh-port / mh-port. */
  readonly sched2: boolean;
  /** IP_VS_SVC_F_SCHED3: flag-3 (no named meaning in the kernel). */
  readonly sched3: boolean;
}

/** Everything that configures a virtual service. */
export interface ServiceConfig {
  readonly key: ServiceKey;
  /** Scheduler name, e.g. "wrr". */
  readonly scheduler: string;
  readonly flags: ServiceFlags;
  /** Persistence timeout in seconds (meaningful when flags.persistent). */
  readonly timeout: number;
  /**
   * Persistence granularity as a prefix length: 0..32 for IPv4 (sent as a dotted mask),
   * 1..128 for IPv6 (sent as a prefix length, which the kernel requires to be 1..128).
   */
  readonly netmask: number;
  /** Persistence engine; only "sip" exists. null for none. */
  readonly pe: string | null;
}

/** Traffic counters and rates. Counters count since the last zero; rates are per second. */
export interface Stats {
  readonly conns: number;
  readonly inPkts: number;
  readonly outPkts: number;
  readonly inBytes: number;
  readonly outBytes: number;
  readonly cps: number;
  readonly inPps: number;
  readonly outPps: number;
  readonly inBps: number;
  readonly outBps: number;
}

/** A virtual service as read back from IPVS. */
export interface Service extends ServiceConfig {
  readonly stats: Stats;
}

/** Identity of a destination within its service. */
export interface DestinationKey {
  readonly family: Family;
  readonly address: string;
  readonly port: number;
}

/** Tunnel parameters of a tunnel destination. */
export interface TunnelConfig {
  readonly type: TunnelType;
  /** GUE destination UDP port (required for GUE, 0 otherwise). */
  readonly port: number;
  readonly checksum: TunnelChecksum;
}

/** Everything that configures a destination. */
export interface DestinationConfig extends DestinationKey {
  readonly forward: ForwardMethod;
  /** 0 = quiescent: no new connections. */
  readonly weight: number;
  /** Upper connection threshold, 0 = none. */
  readonly upperThreshold: number;
  /** Lower connection threshold, must be <= upperThreshold. */
  readonly lowerThreshold: number;
  /** Only for forward = "tunnel"; null means plain IPIP with no options. */
  readonly tunnel: TunnelConfig | null;
}

/** A destination as read back from IPVS. */
export interface Destination extends DestinationConfig {
  readonly activeConns: number;
  readonly inactiveConns: number;
  readonly persistentConns: number;
  readonly stats: Stats;
}

/** IPVS global information (IPVS_CMD_GET_INFO). */
export interface IpvsInfo {
  /** e.g. "1.2.1". */
  readonly version: string;
  readonly versionCode: number;
  readonly connTableSize: number;
}

/** Connection timeouts in seconds (IPVS_CMD_GET_CONFIG / SET_CONFIG). */
export interface Timeouts {
  readonly tcp: number;
  readonly tcpFin: number;
  readonly udp: number;
}

/** A service together with its destinations. */
export interface ServiceWithDestinations {
  readonly service: Service;
  readonly destinations: readonly Destination[];
}

/** One write in a batch (see IpvsDriver.apply). */
export type IpvsOp =
  | { readonly op: "add-service"; readonly service: ServiceConfig }
  | { readonly op: "update-service"; readonly service: ServiceConfig }
  | { readonly op: "delete-service"; readonly key: ServiceKey }
  | { readonly op: "add-destination"; readonly service: ServiceKey; readonly destination: DestinationConfig }
  | { readonly op: "update-destination"; readonly service: ServiceKey; readonly destination: DestinationConfig }
  | { readonly op: "delete-destination"; readonly service: ServiceKey; readonly destination: DestinationKey };

/** Empty stats, for freshly created objects and for tests. */
export const ZERO_STATS: Stats = Object.freeze({
  conns: 0,
  inPkts: 0,
  outPkts: 0,
  inBytes: 0,
  outBytes: 0,
  cps: 0,
  inPps: 0,
  outPps: 0,
  inBps: 0,
  outBps: 0,
});

/** No flags set. */
export const NO_FLAGS: ServiceFlags = Object.freeze({
  persistent: false,
  onePacket: false,
  sched1: false,
  sched2: false,
  sched3: false,
});

/** True when the key addresses a fwmark service. */
export function isFwmarkKey(key: ServiceKey): key is FwmarkServiceKey {
  return "fwmark" in key;
}
