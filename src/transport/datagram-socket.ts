/**
 * The socket seam: the connection speaks to the kernel through this interface, so tests can drive it
 * with a fake that answers in bytes, and the real one (libnl-socket.ts) stays a thin FFI wrapper.
 */

/** A receive or send did not complete within the socket timeout. */
export class TransportTimeoutError extends Error {
  override readonly name = "TransportTimeoutError";
}

/** A socket call failed with errno. */
export class TransportError extends Error {
  override readonly name = "TransportError";
  readonly errno: number;
  constructor(message: string, errno: number, options?: { cause?: unknown }) {
    super(message, options);
    this.errno = errno;
  }
}

/** A connected netlink datagram socket. */
export interface DatagramSocket {
  /** Send one datagram (it may hold several messages). Throws TransportTimeoutError or TransportError. */
  send(bytes: Uint8Array): void;
  /**
   * Receive one datagram, waiting for it, then every further one already queued, up to the socket's limit (a
   * batch's ACKs, a dump's last part and its NLMSG_DONE), in one system call. The views are only valid until the
   * next receive. Throws TransportTimeoutError when nothing arrived within the socket's timeout.
   */
  receive(): readonly Uint8Array[];
  close(): void;
  /**
   * What another thread needs to run dumps on this socket (./dump-thread.ts): its descriptor and the datagram size
   * it reads with. Absent on sockets that have no descriptor (test fakes): their dumps run in the calling thread.
   */
  handle?(): SocketHandle;
}

/** A socket's descriptor and the largest datagram it is read with. */
export interface SocketHandle {
  readonly fd: number;
  readonly datagramBytes: number;
}
