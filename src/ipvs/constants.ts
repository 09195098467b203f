/**
 * Constants of the IPVS generic-netlink family, from the kernel's uapi header
 * include/uapi/linux/ip_vs.h. Names follow the header so they can be grepped side by side.
 */

/** IPVS_GENL_NAME / IPVS_GENL_VERSION. */
export const IPVS_GENL_NAME = "IPVS";
export const IPVS_GENL_VERSION = 1;

/** enum IPVS_CMD_* */
export const IPVS_CMD = {
  NEW_SERVICE: 1,
  SET_SERVICE: 2,
  DEL_SERVICE: 3,
  GET_SERVICE: 4,
  NEW_DEST: 5,
  SET_DEST: 6,
  DEL_DEST: 7,
  GET_DEST: 8,
  NEW_DAEMON: 9,
  DEL_DAEMON: 10,
  GET_DAEMON: 11,
  SET_CONFIG: 12,
  GET_CONFIG: 13,
  SET_INFO: 14,
  GET_INFO: 15,
  ZERO: 16,
  FLUSH: 17,
} as const;

/** enum IPVS_CMD_ATTR_* (first level). */
export const IPVS_CMD_ATTR = {
  SERVICE: 1,
  DEST: 2,
  DAEMON: 3,
  TIMEOUT_TCP: 4,
  TIMEOUT_TCP_FIN: 5,
  TIMEOUT_UDP: 6,
} as const;

/** enum IPVS_SVC_ATTR_* (inside IPVS_CMD_ATTR_SERVICE). */
export const IPVS_SVC_ATTR = {
  AF: 1,
  PROTOCOL: 2,
  ADDR: 3,
  PORT: 4,
  FWMARK: 5,
  SCHED_NAME: 6,
  FLAGS: 7,
  TIMEOUT: 8,
  NETMASK: 9,
  STATS: 10,
  PE_NAME: 11,
  STATS64: 12,
} as const;

/** enum IPVS_DEST_ATTR_* (inside IPVS_CMD_ATTR_DEST). */
export const IPVS_DEST_ATTR = {
  ADDR: 1,
  PORT: 2,
  FWD_METHOD: 3,
  WEIGHT: 4,
  U_THRESH: 5,
  L_THRESH: 6,
  ACTIVE_CONNS: 7,
  INACT_CONNS: 8,
  PERSIST_CONNS: 9,
  STATS: 10,
  ADDR_FAMILY: 11,
  STATS64: 12,
  TUN_TYPE: 13,
  TUN_PORT: 14,
  TUN_FLAGS: 15,
} as const;

/** enum IPVS_STATS_ATTR_* (inside STATS and STATS64). */
export const IPVS_STATS_ATTR = {
  CONNS: 1,
  INPKTS: 2,
  OUTPKTS: 3,
  INBYTES: 4,
  OUTBYTES: 5,
  CPS: 6,
  INPPS: 7,
  OUTPPS: 8,
  INBPS: 9,
  OUTBPS: 10,
  PAD: 11,
} as const;

/** enum IPVS_INFO_ATTR_*. */
export const IPVS_INFO_ATTR = {
  VERSION: 1,
  CONN_TAB_SIZE: 2,
} as const;

/** IP_VS_SVC_F_* service flags. HASHED is kernel-internal and always set in dumps. */
export const IP_VS_SVC_F = {
  PERSISTENT: 0x0001,
  HASHED: 0x0002,
  ONEPACKET: 0x0004,
  SCHED1: 0x0008,
  SCHED2: 0x0010,
  SCHED3: 0x0020,
} as const;

/** IP_VS_CONN_F_FWD_MASK and the forwarding methods carried in IPVS_DEST_ATTR_FWD_METHOD. */
export const IP_VS_CONN_F_FWD_MASK = 0x0007;
export const IP_VS_CONN_F = {
  MASQ: 0,
  LOCALNODE: 1,
  TUNNEL: 2,
  DROUTE: 3,
  BYPASS: 4,
} as const;

/** enum ip_vs_tunnel_type / IP_VS_CONN_F_TUNNEL_TYPE_*. */
export const IP_VS_CONN_F_TUNNEL_TYPE = {
  IPIP: 0,
  GUE: 1,
  GRE: 2,
} as const;

/** IP_VS_TUNNEL_ENCAP_FLAG_* (bit values). NOCSUM is the absence of both bits. */
export const IP_VS_TUNNEL_ENCAP_FLAG = {
  NOCSUM: 0,
  CSUM: 1 << 0,
  REMCSUM: 1 << 1,
} as const;

/** Address families and IP protocols as the kernel numbers them. */
export const AF_INET = 2;
export const AF_INET6 = 10;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_SCTP = 132;

/** IP_VS_SCHEDNAME_MAXLEN / IP_VS_PENAME_MAXLEN include the terminating NUL. */
export const IP_VS_SCHEDNAME_MAXLEN = 16;
export const IP_VS_PENAME_MAXLEN = 16;

/** Largest destination weight: the kernel keeps it in an int and answers ERANGE above INT_MAX. */
export const IP_VS_MAX_WEIGHT = 0x7fffffff;
/** Largest u16 / u32 attribute value (ports; fwmarks, timeouts, thresholds). */
export const U16_MAX = 0xffff;
export const U32_MAX = 0xffffffff;

/**
 * Persistence netmask as a prefix length, per family: IPv4 sends a dotted mask (any prefix 0..32), IPv6 a
 * prefix length the kernel requires to be 1..128 (EINVAL otherwise).
 */
export const NETMASK_RANGE = { inet: { min: 0, max: 32 }, inet6: { min: 1, max: 128 } } as const;
