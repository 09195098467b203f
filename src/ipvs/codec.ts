/**
 * IPVS attributes <-> domain objects. Pure: writes into a ByteWriter, reads from an AttributeSet.
 *
 * Byte-order notes (see ip_vs_ctl.c): ports are big-endian u16; addresses are raw bytes (the kernel
 * returns 16 bytes even for IPv4); the netmask is the raw 4 bytes the kernel stores, which is the
 * dotted mask in network order for IPv4 and the prefix length in host order for IPv6.
 */
import { AttributeSet, ByteWriter, HOST_LITTLE_ENDIAN } from "../netlink/attributes.ts";
import { NetlinkDecodeError } from "../netlink/errors.ts";
import { addressToBytes, bytesToAddress, maskToPrefix, prefixToMask } from "./address.ts";
import {
  AF_INET,
  AF_INET6,
  IPPROTO_SCTP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPVS_CMD_ATTR,
  IPVS_DEST_ATTR,
  IPVS_INFO_ATTR,
  IPVS_STATS_ATTR,
  IPVS_SVC_ATTR,
  IP_VS_CONN_F,
  IP_VS_CONN_F_FWD_MASK,
  IP_VS_CONN_F_TUNNEL_TYPE,
  IP_VS_SVC_F,
  IP_VS_TUNNEL_ENCAP_FLAG,
  NETMASK_RANGE,
} from "./constants.ts";
import {
  type DestinationConfig,
  type DestinationKey,
  type Family,
  type ForwardMethod,
  type IpvsInfo,
  type Protocol,
  type Service,
  type ServiceConfig,
  type ServiceFlags,
  type ServiceKey,
  type Stats,
  type Timeouts,
  type TunnelChecksum,
  type TunnelConfig,
  type TunnelType,
  ZERO_STATS,
  isFwmarkKey,
} from "./types.ts";

export const familyNumber = (f: Family): number => (f === "inet" ? AF_INET : AF_INET6);

export function familyFromNumber(n: number): Family {
  if (n === AF_INET) return "inet";
  if (n === AF_INET6) return "inet6";
  throw new NetlinkDecodeError(`unknown address family ${n}`);
}

const PROTOCOLS: Record<Protocol, number> = { tcp: IPPROTO_TCP, udp: IPPROTO_UDP, sctp: IPPROTO_SCTP };
export const protocolNumber = (p: Protocol): number => PROTOCOLS[p];
const PROTOCOL_BY_NUMBER = new Map<number, Protocol>(Object.entries(PROTOCOLS).map(([k, v]) => [v, k as Protocol]));
function protocolFromNumber(n: number): Protocol {
  const p = PROTOCOL_BY_NUMBER.get(n);
  if (p === undefined) throw new NetlinkDecodeError(`unknown IP protocol ${n}`);
  return p;
}

const FORWARD: Record<ForwardMethod, number> = {
  nat: IP_VS_CONN_F.MASQ,
  local: IP_VS_CONN_F.LOCALNODE,
  tunnel: IP_VS_CONN_F.TUNNEL,
  dr: IP_VS_CONN_F.DROUTE,
  bypass: IP_VS_CONN_F.BYPASS,
};
export const forwardNumber = (f: ForwardMethod): number => FORWARD[f];
const FORWARD_BY_NUMBER = new Map<number, ForwardMethod>(Object.entries(FORWARD).map(([k, v]) => [v, k as ForwardMethod]));
export function forwardFromNumber(n: number): ForwardMethod {
  const f = FORWARD_BY_NUMBER.get(n & IP_VS_CONN_F_FWD_MASK);
  if (f === undefined) throw new NetlinkDecodeError(`unknown forwarding method ${n}`);
  return f;
}

const TUNNEL_TYPES: Record<TunnelType, number> = {
  ipip: IP_VS_CONN_F_TUNNEL_TYPE.IPIP,
  gue: IP_VS_CONN_F_TUNNEL_TYPE.GUE,
  gre: IP_VS_CONN_F_TUNNEL_TYPE.GRE,
};
const TUNNEL_BY_NUMBER = new Map<number, TunnelType>(Object.entries(TUNNEL_TYPES).map(([k, v]) => [v, k as TunnelType]));
function tunnelTypeFromNumber(n: number): TunnelType {
  const t = TUNNEL_BY_NUMBER.get(n);
  if (t === undefined) throw new NetlinkDecodeError(`unknown tunnel type ${n}`);
  return t;
}

function tunnelFlagsNumber(c: TunnelChecksum): number {
  if (c === "csum") return IP_VS_TUNNEL_ENCAP_FLAG.CSUM;
  if (c === "remcsum") return IP_VS_TUNNEL_ENCAP_FLAG.REMCSUM;
  return IP_VS_TUNNEL_ENCAP_FLAG.NOCSUM;
}
function tunnelChecksumFromNumber(n: number): TunnelChecksum {
  if (n & IP_VS_TUNNEL_ENCAP_FLAG.REMCSUM) return "remcsum";
  if (n & IP_VS_TUNNEL_ENCAP_FLAG.CSUM) return "csum";
  return "nocsum";
}

/** The IP_VS_SVC_F_* bits of a ServiceFlags. */
export function flagsToBits(f: ServiceFlags): number {
  return (
    (f.persistent ? IP_VS_SVC_F.PERSISTENT : 0) |
    (f.onePacket ? IP_VS_SVC_F.ONEPACKET : 0) |
    (f.sched1 ? IP_VS_SVC_F.SCHED1 : 0) |
    (f.sched2 ? IP_VS_SVC_F.SCHED2 : 0) |
    (f.sched3 ? IP_VS_SVC_F.SCHED3 : 0)
  );
}

/** ServiceFlags from IP_VS_SVC_F_* bits (HASHED and unknown bits ignored). */
function bitsToFlags(bits: number): ServiceFlags {
  return {
    persistent: (bits & IP_VS_SVC_F.PERSISTENT) !== 0,
    onePacket: (bits & IP_VS_SVC_F.ONEPACKET) !== 0,
    sched1: (bits & IP_VS_SVC_F.SCHED1) !== 0,
    sched2: (bits & IP_VS_SVC_F.SCHED2) !== 0,
    sched3: (bits & IP_VS_SVC_F.SCHED3) !== 0,
  };
}

/** Write the identifying attributes of a service (enough for DEL/GET/ZERO and for destination commands). */
function writeServiceIdentity(w: ByteWriter, key: ServiceKey): void {
  w.u16(IPVS_SVC_ATTR.AF, familyNumber(key.family));
  if (isFwmarkKey(key)) {
    w.u32(IPVS_SVC_ATTR.FWMARK, key.fwmark);
    return;
  }
  w.u16(IPVS_SVC_ATTR.PROTOCOL, protocolNumber(key.protocol));
  w.attr(IPVS_SVC_ATTR.ADDR, addressToBytes(key.address));
  w.u16be(IPVS_SVC_ATTR.PORT, key.port);
}

/** IPVS_CMD_ATTR_SERVICE with the identity only. */
export function writeServiceKey(w: ByteWriter, key: ServiceKey): void {
  w.nested(IPVS_CMD_ATTR.SERVICE, (n) => writeServiceIdentity(n, key));
}

/** writeServiceKey's bytes on their own (to be written again with ByteWriter.putBytes). */
export function encodeServiceKey(key: ServiceKey): Uint8Array {
  const w = new ByteWriter(64);
  writeServiceKey(w, key);
  return w.toBytes();
}

/** IPVS_CMD_ATTR_SERVICE with every field NEW_SERVICE / SET_SERVICE need (a full replace). */
export function writeServiceConfig(w: ByteWriter, s: ServiceConfig): void {
  w.nested(IPVS_CMD_ATTR.SERVICE, (n) => {
    writeServiceIdentity(n, s.key);
    n.string(IPVS_SVC_ATTR.SCHED_NAME, s.scheduler);
    if (s.pe !== null) n.string(IPVS_SVC_ATTR.PE_NAME, s.pe);
    const flags = new Uint8Array(8);
    const dv = new DataView(flags.buffer);
    dv.setUint32(0, flagsToBits(s.flags), HOST_LITTLE_ENDIAN);
    // Mask: every bit we manage, so a SET clears what the caller turned off, and nothing else (HASHED).
    dv.setUint32(4, ~IP_VS_SVC_F.HASHED >>> 0, HOST_LITTLE_ENDIAN);
    n.attr(IPVS_SVC_ATTR.FLAGS, flags);
    n.u32(IPVS_SVC_ATTR.TIMEOUT, s.timeout);
    if (s.key.family === "inet") n.u32be(IPVS_SVC_ATTR.NETMASK, prefixToMask(s.netmask));
    else n.u32(IPVS_SVC_ATTR.NETMASK, s.netmask);
  });
}

/** IPVS_CMD_ATTR_DEST with the identity only (DEL_DEST). */
export function writeDestinationKey(w: ByteWriter, d: DestinationKey): void {
  w.nested(IPVS_CMD_ATTR.DEST, (n) => {
    n.u16(IPVS_DEST_ATTR.ADDR_FAMILY, familyNumber(d.family));
    n.attr(IPVS_DEST_ATTR.ADDR, addressToBytes(d.address));
    n.u16be(IPVS_DEST_ATTR.PORT, d.port);
  });
}

/** IPVS_CMD_ATTR_DEST with every field NEW_DEST / SET_DEST need (a full replace). */
export function writeDestinationConfig(w: ByteWriter, d: DestinationConfig): void {
  w.nested(IPVS_CMD_ATTR.DEST, (n) => {
    n.u16(IPVS_DEST_ATTR.ADDR_FAMILY, familyNumber(d.family));
    n.attr(IPVS_DEST_ATTR.ADDR, addressToBytes(d.address));
    n.u16be(IPVS_DEST_ATTR.PORT, d.port);
    n.u32(IPVS_DEST_ATTR.FWD_METHOD, forwardNumber(d.forward));
    n.u32(IPVS_DEST_ATTR.WEIGHT, d.weight);
    n.u32(IPVS_DEST_ATTR.U_THRESH, d.upperThreshold);
    n.u32(IPVS_DEST_ATTR.L_THRESH, d.lowerThreshold);
    // Tunnel attributes exist since Linux 5.2; only send them when asked, so older kernels keep working.
    if (d.forward === "tunnel" && d.tunnel !== null) {
      n.u8(IPVS_DEST_ATTR.TUN_TYPE, TUNNEL_TYPES[d.tunnel.type]);
      n.u16be(IPVS_DEST_ATTR.TUN_PORT, d.tunnel.port);
      n.u16(IPVS_DEST_ATTR.TUN_FLAGS, tunnelFlagsNumber(d.tunnel.checksum));
    }
  });
}

/** Connection timeouts for SET_CONFIG; 0 or absent means "unchanged". */
export function writeTimeouts(w: ByteWriter, t: Partial<Timeouts>): void {
  if (t.tcp !== undefined) w.u32(IPVS_CMD_ATTR.TIMEOUT_TCP, t.tcp);
  if (t.tcpFin !== undefined) w.u32(IPVS_CMD_ATTR.TIMEOUT_TCP_FIN, t.tcpFin);
  if (t.udp !== undefined) w.u32(IPVS_CMD_ATTR.TIMEOUT_UDP, t.udp);
}

/**
 * The text of an address attribute of a reply. IPVS sends the 16 bytes of a union nf_inet_addr for either family
 * (IPv4 in the first 4); fewer than the family needs is a malformed reply, not a caller's bad literal (the
 * TypeError of bytesToAddress).
 */
export function addressFromReply(bytes: Uint8Array, family: Family, what: string): string {
  const need = family === "inet" ? 4 : 16;
  if (bytes.length < need) throw new NetlinkDecodeError(`${what} of ${bytes.length} bytes for ${family} (needs ${need})`);
  return bytesToAddress(bytes, family);
}

function required<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new NetlinkDecodeError(`missing ${what}`);
  return v;
}

/** Stats from a STATS64 nest (preferred) or a legacy STATS nest. */
function decodeStats(attrs: AttributeSet, stats64Type: number, statsType: number): Stats {
  const s64 = attrs.nested(stats64Type);
  if (s64) {
    const g = (t: number) => s64.u64n(t) ?? 0;
    return {
      conns: g(IPVS_STATS_ATTR.CONNS),
      inPkts: g(IPVS_STATS_ATTR.INPKTS),
      outPkts: g(IPVS_STATS_ATTR.OUTPKTS),
      inBytes: g(IPVS_STATS_ATTR.INBYTES),
      outBytes: g(IPVS_STATS_ATTR.OUTBYTES),
      cps: g(IPVS_STATS_ATTR.CPS),
      inPps: g(IPVS_STATS_ATTR.INPPS),
      outPps: g(IPVS_STATS_ATTR.OUTPPS),
      inBps: g(IPVS_STATS_ATTR.INBPS),
      outBps: g(IPVS_STATS_ATTR.OUTBPS),
    };
  }
  const s = attrs.nested(statsType);
  if (!s) return ZERO_STATS;
  const u = (t: number) => s.u32(t) ?? 0;
  const b = (t: number) => s.u64n(t) ?? 0;
  return {
    conns: u(IPVS_STATS_ATTR.CONNS),
    inPkts: u(IPVS_STATS_ATTR.INPKTS),
    outPkts: u(IPVS_STATS_ATTR.OUTPKTS),
    inBytes: b(IPVS_STATS_ATTR.INBYTES),
    outBytes: b(IPVS_STATS_ATTR.OUTBYTES),
    cps: u(IPVS_STATS_ATTR.CPS),
    inPps: u(IPVS_STATS_ATTR.INPPS),
    outPps: u(IPVS_STATS_ATTR.OUTPPS),
    inBps: u(IPVS_STATS_ATTR.INBPS),
    outBps: u(IPVS_STATS_ATTR.OUTBPS),
  };
}

/** A Service from the attributes of a NEW_SERVICE reply (the whole genl attribute set). */
export function decodeService(msgAttrs: AttributeSet): Service {
  const a = required(msgAttrs.nested(IPVS_CMD_ATTR.SERVICE), "IPVS_CMD_ATTR_SERVICE");
  const family = familyFromNumber(required(a.u16(IPVS_SVC_ATTR.AF), "service AF"));
  const fwmark = a.u32(IPVS_SVC_ATTR.FWMARK);
  let key: ServiceKey;
  if (fwmark !== undefined && fwmark !== 0) {
    key = { family, fwmark };
  } else {
    key = {
      family,
      protocol: protocolFromNumber(required(a.u16(IPVS_SVC_ATTR.PROTOCOL), "service protocol")),
      address: addressFromReply(required(a.bytes(IPVS_SVC_ATTR.ADDR), "service address"), family, "service address"),
      port: required(a.u16be(IPVS_SVC_ATTR.PORT), "service port"),
    };
  }
  const flagsBytes = required(a.bytes(IPVS_SVC_ATTR.FLAGS), "service flags");
  if (flagsBytes.length < 4) throw new NetlinkDecodeError(`service flags of ${flagsBytes.length} bytes`);
  const bits = new DataView(flagsBytes.buffer, flagsBytes.byteOffset, 4).getUint32(0, HOST_LITTLE_ENDIAN);
  const netmask = family === "inet" ? maskToPrefix(a.u32be(IPVS_SVC_ATTR.NETMASK) ?? 0xffffffff) : (a.u32(IPVS_SVC_ATTR.NETMASK) ?? NETMASK_RANGE.inet6.max);
  return {
    key,
    scheduler: a.string(IPVS_SVC_ATTR.SCHED_NAME) ?? "",
    flags: bitsToFlags(bits),
    timeout: a.u32(IPVS_SVC_ATTR.TIMEOUT) ?? 0,
    netmask,
    pe: a.string(IPVS_SVC_ATTR.PE_NAME) ?? null,
    stats: decodeStats(a, IPVS_SVC_ATTR.STATS64, IPVS_SVC_ATTR.STATS),
  };
}

/** The tunnel options of a tunnel destination's nest that carries IPVS_DEST_ATTR_TUN_TYPE. */
export function tunnelFromAttributes(a: AttributeSet): TunnelConfig {
  return {
    type: tunnelTypeFromNumber(required(a.u8(IPVS_DEST_ATTR.TUN_TYPE), "tunnel type")),
    port: a.u16be(IPVS_DEST_ATTR.TUN_PORT) ?? 0,
    checksum: tunnelChecksumFromNumber(a.u16(IPVS_DEST_ATTR.TUN_FLAGS) ?? 0),
  };
}

/** IpvsInfo from a SET_INFO reply. */
export function decodeInfo(attrs: AttributeSet): IpvsInfo {
  const code = required(attrs.u32(IPVS_INFO_ATTR.VERSION), "IPVS version");
  return {
    versionCode: code,
    version: `${(code >> 16) & 0xff}.${(code >> 8) & 0xff}.${code & 0xff}`,
    connTableSize: required(attrs.u32(IPVS_INFO_ATTR.CONN_TAB_SIZE), "connection table size"),
  };
}

/** Timeouts from a SET_CONFIG reply. */
export function decodeTimeouts(attrs: AttributeSet): Timeouts {
  return {
    tcp: attrs.u32(IPVS_CMD_ATTR.TIMEOUT_TCP) ?? 0,
    tcpFin: attrs.u32(IPVS_CMD_ATTR.TIMEOUT_TCP_FIN) ?? 0,
    udp: attrs.u32(IPVS_CMD_ATTR.TIMEOUT_UDP) ?? 0,
  };
}
