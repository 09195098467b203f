/**
 * Errors of the netlink layer. NetlinkError is a kernel NLMSG_ERROR reply; NetlinkDecodeError is a
 * malformed message (a bug or a hostile peer, never a normal kernel answer).
 */

/** Extended acknowledgement details (NLMSGERR_ATTR_*), when the kernel sent any. */
export interface ExtendedAck {
  readonly message?: string;
  readonly offset?: number;
}

/** The kernel answered a request with a negative errno. */
export class NetlinkError extends Error {
  override readonly name = "NetlinkError";
  /** Positive errno (e.g. 3 for ESRCH). */
  readonly errno: number;
  readonly seq: number;
  readonly extAck: ExtendedAck;

  constructor(errno: number, seq: number, extAck: ExtendedAck = {}) {
    super(`netlink request ${seq} failed with errno ${errno}${extAck.message ? `: ${extAck.message}` : ""}`);
    this.errno = errno;
    this.seq = seq;
    this.extAck = extAck;
  }
}

/** Bytes that do not decode as netlink. */
export class NetlinkDecodeError extends Error {
  override readonly name = "NetlinkDecodeError";
}
