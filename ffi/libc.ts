/**
 * The few libc calls the netlink transport needs that libnl does not wrap: recvmmsg into caller-owned buffers
 * (ReceiveSlots), setsockopt for timeouts and netlink options, send for the dump thread, close, and errno; and
 * shutdown, with which the daemon sheds API connections beyond its cap (src/daemon/connection-shedder.ts); and
 * memfd_create, for the file in memory the compiled executable's libnl is loaded from (./libnl-copies.ts). Loaded
 * on first use, by absolute path.
 */
import { FFIType, type FFIFunction, dlopen, ptr, read } from "bun:ffi";
import { LibraryLoadError, SyscallError } from "./errors.ts";
import { findSystemLibrary } from "./library-path.ts";

const LIBC_SONAME = "libc.so.6";

const symbols = {
  recvmmsg: { args: [FFIType.i32, FFIType.ptr, FFIType.u32, FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  __errno_location: { args: [], returns: FFIType.ptr },
  shutdown: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  getpagesize: { args: [], returns: FFIType.i32 },
  send: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64_fast },
  memfd_create: { args: [FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
} as const;

/**
 * dlopen libc by absolute path (./library-path.ts: a bare soname could be found in the current directory) with
 * `table`'s symbols; LibraryLoadError when it is missing or a symbol cannot be bound. Every libc binding of ffi/
 * loads through here, each with its own table, once.
 */
function openLibc<const S extends Record<string, FFIFunction>>(table: S): ReturnType<typeof dlopen<S>>["symbols"] {
  const path = findSystemLibrary(LIBC_SONAME);
  if (path === null) throw new LibraryLoadError(LIBC_SONAME, "libc6", new Error("not found in the ld.so cache or the system library directories"));
  try {
    return dlopen(path, table).symbols;
  } catch (e) {
    throw new LibraryLoadError(LIBC_SONAME, "libc6", e);
  }
}

/** `table`'s libc functions, loaded on the first call of the returned function. */
export function lazyLibc<const S extends Record<string, FFIFunction>>(table: S): () => ReturnType<typeof dlopen<S>>["symbols"] {
  let loaded: ReturnType<typeof dlopen<S>>["symbols"] | null = null;
  return () => (loaded ??= openLibc(table));
}

const lib = lazyLibc(symbols);

/** The calling thread's errno. */
export function errno(): number {
  const p = lib().__errno_location();
  return p === null ? 0 : read.i32(p, 0);
}

/** The kernel's page size in bytes (getpagesize(2)). */
export function pageSize(): number {
  return lib().getpagesize();
}

/**
 * send(2) one datagram on `fd`, blocking up to the socket's SO_SNDTIMEO: the bytes sent, or -errno. The dump thread
 * (src/transport/dump-worker.ts) sends with it on a netlink socket libnl opened in the main thread.
 */
export function sendDatagram(fd: number, bytes: Uint8Array): number {
  const n = Number(lib().send(fd, bytes, bytes.length, 0));
  return n < 0 ? -errno() : n;
}

/** memfd_create(2) flags: close on exec; executable (Linux 6.3+, where vm.memfd_noexec=1 makes memfds noexec). */
const MFD_CLOEXEC = 0x1;
const MFD_EXEC = 0x10;
const EINVAL = 22;

/**
 * memfd_create(2): a new anonymous file in memory, with no path in any directory, and the descriptor to it. It is
 * created executable (MFD_EXEC; a kernel before 6.3 does not know the flag and makes every memfd executable).
 * Throws SyscallError with the errno (e.g. EACCES where vm.memfd_noexec=2 forbids executable memfds).
 */
export function memfdCreate(name: string): number {
  const cname = Buffer.from(`${name}\0`);
  let fd = lib().memfd_create(cname, MFD_CLOEXEC | MFD_EXEC);
  if (fd < 0 && errno() === EINVAL) fd = lib().memfd_create(cname, MFD_CLOEXEC);
  if (fd < 0) throw new SyscallError("memfd_create", errno());
  return fd;
}

/** MSG_TRUNC flag for recvmmsg: a datagram's real length, also when it was cut. */
export const MSG_TRUNC = 0x20;
export const SOL_SOCKET = 1;
export const SO_RCVBUFFORCE = 33;
export const SO_SNDBUFFORCE = 32;
export const SO_RCVTIMEO = 20;
export const SO_SNDTIMEO = 21;

/** MSG_WAITFORONE flag for recvmmsg: block for the first datagram only, then take what is already queued. */
export const MSG_WAITFORONE = 0x10000;

/** struct mmsghdr on 64-bit Linux: a struct msghdr (56 bytes) and msg_len, padded to 64. */
const MMSGHDR_SIZE = 64;
const MSGHDR_IOV = 16;
const MSGHDR_IOVLEN = 24;
const MMSGHDR_LEN = 56;
const IOVEC_SIZE = 16;

/**
 * `count` receive buffers of `size` bytes each, with the iovecs and message headers recvmmsg(2) fills: one call
 * takes every datagram already queued (a batch's ACKs, a dump's data and its NLMSG_DONE) instead of one call per
 * datagram. Every array is an ArrayBuffer of its own allocated once (never moved), so the pointers written into
 * the headers stay valid for the slots' life.
 */
export class ReceiveSlots {
  readonly count: number;
  readonly size: number;
  private readonly data: Uint8Array;
  private readonly headers: Uint8Array;
  private readonly headerView: DataView;
  /** Keeps the iovec array (pointed to by the headers) alive. */
  private readonly iovecs: Uint8Array;

  constructor(count: number, size: number) {
    this.count = count;
    this.size = size;
    this.data = new Uint8Array(new ArrayBuffer(count * size));
    this.iovecs = new Uint8Array(new ArrayBuffer(count * IOVEC_SIZE));
    this.headers = new Uint8Array(new ArrayBuffer(count * MMSGHDR_SIZE));
    this.headerView = new DataView(this.headers.buffer);
    const iov = new DataView(this.iovecs.buffer);
    const dataPtr = ptr(this.data);
    const iovPtr = ptr(this.iovecs);
    for (let i = 0; i < count; i++) {
      iov.setBigUint64(i * IOVEC_SIZE, BigInt(dataPtr + i * size), true);
      iov.setBigUint64(i * IOVEC_SIZE + 8, BigInt(size), true);
      this.headerView.setBigUint64(i * MMSGHDR_SIZE + MSGHDR_IOV, BigInt(iovPtr + i * IOVEC_SIZE), true);
      this.headerView.setBigUint64(i * MMSGHDR_SIZE + MSGHDR_IOVLEN, 1n, true);
    }
  }

  /**
   * recvmmsg(2) into the slots with `flags` (MSG_WAITFORONE: wait for the first datagram only): how many
   * datagrams it received, or -errno. With MSG_TRUNC a slot's length may exceed its size (the datagram was cut).
   */
  receive(fd: number, flags: number): number {
    const n = lib().recvmmsg(fd, this.headers, this.count, flags, null);
    return n < 0 ? -errno() : n;
  }

  /** The length of the datagram slot `i` received (its real length when MSG_TRUNC was given). */
  length(i: number): number {
    return this.headerView.getUint32(i * MMSGHDR_SIZE + MMSGHDR_LEN, true);
  }

  /** Slot `i`'s first `length` bytes; valid until the next receive. */
  slot(i: number, length: number): Uint8Array {
    return this.data.subarray(i * this.size, i * this.size + Math.min(length, this.size));
  }
}

/** setsockopt(2) with an int value. */
export function setSockOptInt(fd: number, level: number, name: number, value: number): void {
  const v = new Int32Array([value]);
  if (lib().setsockopt(fd, level, name, v, 4) !== 0) throw new SyscallError(`setsockopt(${level}, ${name})`, errno());
}

/** setsockopt(2) with a struct timeval (SO_RCVTIMEO / SO_SNDTIMEO). */
export function setSockOptTimeval(fd: number, level: number, name: number, ms: number): void {
  const tv = new BigInt64Array([BigInt(Math.floor(ms / 1000)), BigInt((ms % 1000) * 1000)]);
  if (lib().setsockopt(fd, level, name, tv, 16) !== 0) throw new SyscallError(`setsockopt(${level}, ${name})`, errno());
}

/** SHUT_RDWR: no more receptions or transmissions. */
export const SHUT_RDWR = 2;

/**
 * shutdown(2) a connected socket: its peer sees the connection end, and whoever owns the fd sees end-of-file and
 * closes it. The fd itself stays open (and its number reserved) until its owner closes it, so the call cannot
 * hit an fd number that was reused. Returns 0, or -errno (ENOTCONN when it was already shut down).
 */
export function shutdownSocket(fd: number): number {
  return lib().shutdown(fd, SHUT_RDWR) === 0 ? 0 : -errno();
}
