/**
 * Netlink and generic-netlink constants, from include/uapi/linux/netlink.h and genetlink.h.
 */

/** Fixed header sizes. */
export const NLMSG_HDRLEN = 16; // struct nlmsghdr
export const GENL_HDRLEN = 4; // struct genlmsghdr
export const NLA_HDRLEN = 4; // struct nlattr

/** Reserved message types (netlink.h). */
export const NLMSG = {
  NOOP: 1,
  ERROR: 2,
  DONE: 3,
  OVERRUN: 4,
} as const;

/** nlmsg_flags (netlink.h). */
export const NLM_F = {
  REQUEST: 0x01,
  MULTI: 0x02,
  ACK: 0x04,
  ECHO: 0x08,
  DUMP_INTR: 0x10,
  DUMP_FILTERED: 0x20,
  ROOT: 0x100,
  MATCH: 0x200,
  /** NLM_F_ROOT | NLM_F_MATCH */
  DUMP: 0x300,
  /** Flags of an NLMSG_ERROR message (acknowledgement flags). */
  CAPPED: 0x100,
  ACK_TLVS: 0x200,
} as const;

/** enum nlmsgerr_attrs: extended-ack TLVs after the echoed request. */
export const NLMSGERR_ATTR = {
  MSG: 1,
  OFFS: 2,
  COOKIE: 3,
  POLICY: 4,
  MISS_TYPE: 5,
  MISS_NEST: 6,
} as const;

/** nla_type bits. */
export const NLA_F_NESTED = 0x8000;
const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

/** Generic netlink controller (genetlink.h). */
export const GENL_ID_CTRL = 0x10;
export const CTRL_CMD = {
  GETFAMILY: 3,
} as const;
export const CTRL_ATTR = {
  FAMILY_ID: 1,
  FAMILY_NAME: 2,
  VERSION: 3,
  HDRSIZE: 4,
  MAXATTR: 5,
} as const;

/** Socket-level protocol numbers and options used by the transport. */
export const NETLINK_ROUTE = 0;
export const NETLINK_GENERIC = 16;
export const SOL_NETLINK = 270;
export const NETLINK_CAP_ACK = 10;
export const NETLINK_EXT_ACK = 11;
