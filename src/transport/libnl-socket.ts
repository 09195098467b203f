/**
 * A DatagramSocket over libnl: nl_socket_alloc/nl_connect for the socket, nl_sendto to send our own
 * encoded bytes, recvmmsg(2) into fixed slots for every datagram already queued. Every blocking call has a timeout (SO_RCVTIMEO, SO_SNDTIMEO), so a stuck kernel or a lost
 * reply costs at most that long, never a frozen daemon.
 */
import { MSG_TRUNC, MSG_WAITFORONE, ReceiveSlots, pageSize, SOL_SOCKET, SO_RCVBUFFORCE, SO_RCVTIMEO, SO_SNDBUFFORCE, SO_SNDTIMEO, setSockOptInt, setSockOptTimeval } from "../../ffi/libc.ts";
import { NLE_AGAIN, type Libnl, type NlSocketHandle, openLibnl } from "../../ffi/libnl.ts";
import { ERRNO } from "../errno.ts";
import { LibnlError, SyscallError } from "../../ffi/errors.ts";
import { NETLINK_CAP_ACK, NETLINK_EXT_ACK, SOL_NETLINK } from "../netlink/constants.ts";
import { type DatagramSocket, type SocketHandle, TransportError, TransportTimeoutError } from "./datagram-socket.ts";

/** Options of a libnl-backed socket. */
export interface LibnlSocketOptions {
  /** Netlink protocol (NETLINK_GENERIC, NETLINK_ROUTE). */
  readonly protocol: number;
  /** Longest a single send or receive may block. */
  readonly timeoutMs: number;
  /** Receive buffer (SO_RCVBUF); large so that bursts of ACKs and dumps never overflow. */
  readonly receiveBufferBytes?: number;
  readonly sendBufferBytes?: number;
  /**
   * The largest datagram the socket is read with (each receive slot's size; default 64 KiB). The kernel sizes the
   * buffer of every dump pass to the reader's buffer (max_recvmsg_len, at most 32 KiB), so a socket that only sees
   * small messages can ask for less: see KernelIpvsDriver. A datagram larger than this is an error, never cut.
   */
  readonly datagramBytes?: number;
}

/**
 * The receive slots: 16, of 64 KiB unless the socket says otherwise (datagramBytes). The kernel sizes a dump's
 * datagrams to at most 32 KiB, and each ACK is a datagram of its own, so a batch of 128 requests is read in 8 calls
 * instead of 128, and a dump's last data and its NLMSG_DONE in one.
 */
const SLOTS = 16;
const DEFAULT_DATAGRAM_BYTES = 64 * 1024;

/**
 * The datagram size for a socket whose messages are all small (IPVS: every message is well under a page): one
 * page, at least 4 KiB and at most 8 KiB. The kernel fills a dump datagram up to the larger of NLMSG_GOODSIZE (a
 * page less the kernel's own overhead, 8 KiB less it on larger pages) and the reader's buffer, so a page-sized
 * buffer takes every datagram the kernel makes and keeps each dump pass in one page of kernel memory; a 64 KiB
 * buffer had every pass allocate 32 KiB for a few hundred bytes.
 */
export function smallMessageDatagramBytes(): number {
  return Math.min(8192, Math.max(4096, pageSize()));
}

/** A netlink socket opened through libnl. */
export class LibnlSocket implements DatagramSocket {
  private readonly nl: Libnl;
  private sock: NlSocketHandle | null;
  private readonly fd: number;
  private slots: ReceiveSlots | null = null;
  private readonly datagramBytes: number;

  constructor(options: LibnlSocketOptions) {
    this.datagramBytes = options.datagramBytes ?? DEFAULT_DATAGRAM_BYTES;
    this.nl = openLibnl();
    const sock = this.nl.openSocket(options.protocol);
    this.sock = sock;
    try {
      this.fd = this.nl.fd(sock);
      const rx = options.receiveBufferBytes ?? 8 * 1024 * 1024;
      const tx = options.sendBufferBytes ?? 1024 * 1024;
      this.nl.setBufferSize(sock, rx, tx);
      // As root, lift the buffers past net.core.rmem_max / wmem_max; without privilege keep what we got.
      tryOpt(() => setSockOptInt(this.fd, SOL_SOCKET, SO_RCVBUFFORCE, rx));
      tryOpt(() => setSockOptInt(this.fd, SOL_SOCKET, SO_SNDBUFFORCE, tx));
      // Short ACKs (header only) and extended-ack TLVs when the kernel has them.
      tryOpt(() => setSockOptInt(this.fd, SOL_NETLINK, NETLINK_CAP_ACK, 1));
      tryOpt(() => setSockOptInt(this.fd, SOL_NETLINK, NETLINK_EXT_ACK, 1));
      setSockOptTimeval(this.fd, SOL_SOCKET, SO_RCVTIMEO, options.timeoutMs);
      setSockOptTimeval(this.fd, SOL_SOCKET, SO_SNDTIMEO, options.timeoutMs);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  send(bytes: Uint8Array): void {
    const sock = this.open();
    try {
      this.nl.send(sock, bytes);
    } catch (e) {
      // libnl maps EAGAIN (send timeout) to NLE_AGAIN.
      if (e instanceof LibnlError && e.code === NLE_AGAIN) throw new TransportTimeoutError("netlink send timed out", { cause: e });
      throw new TransportError(`netlink send failed: ${e instanceof Error ? e.message : String(e)}`, ERRNO.EIO, { cause: e });
    }
  }

  receive(): readonly Uint8Array[] {
    this.open();
    const slots = (this.slots ??= new ReceiveSlots(SLOTS, this.datagramBytes));
    for (;;) {
      const n = slots.receive(this.fd, MSG_TRUNC | MSG_WAITFORONE);
      if (n > 0) {
        const out: Uint8Array[] = [];
        for (let i = 0; i < n; i++) {
          const length = slots.length(i);
          if (length > slots.size) throw new TransportError(`netlink datagram of ${length} bytes exceeds the ${slots.size}-byte buffer`, ERRNO.EMSGSIZE);
          out.push(slots.slot(i, length));
        }
        return out;
      }
      receiveFailure(n === 0 ? ERRNO.EIO : -n);
    }
  }

  handle(): SocketHandle {
    this.open();
    return { fd: this.fd, datagramBytes: this.datagramBytes };
  }

  close(): void {
    if (this.sock === null) return;
    this.nl.freeSocket(this.sock);
    this.sock = null;
  }

  private open(): NlSocketHandle {
    if (this.sock === null) throw new TransportError("netlink socket is closed", ERRNO.EBADF);
    return this.sock;
  }
}

/** A failed receive: returns for EINTR (the caller retries), throws the timeout or the error otherwise. */
function receiveFailure(errno: number): void {
  if (errno === ERRNO.EINTR) return;
  if (errno === ERRNO.EAGAIN) throw new TransportTimeoutError("netlink receive timed out");
  throw new TransportError(`netlink receive failed with errno ${errno}`, errno);
}

function tryOpt(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof SyscallError)) throw e;
  }
}
