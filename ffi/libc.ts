/**
 * The few libc calls the netlink transport needs that libnl does not wrap: recv into a caller-owned
 * buffer, setsockopt for timeouts and netlink options, close, and errno; and shutdown, with which the daemon sheds
 * API connections beyond its cap (src/daemon/connection-shedder.ts). Loaded on first use, by absolute path.
 */
import { FFIType, type FFIFunction, dlopen, read } from "bun:ffi";
import { LibraryLoadError, SyscallError } from "./errors.ts";
import { findSystemLibrary } from "./library-path.ts";

const LIBC_SONAME = "libc.so.6";

const symbols = {
  recv: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64 },
  setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  __errno_location: { args: [], returns: FFIType.ptr },
  shutdown: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
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

/** MSG_TRUNC flag for recv. */
export const MSG_TRUNC = 0x20;
export const SOL_SOCKET = 1;
export const SO_RCVBUFFORCE = 33;
export const SO_SNDBUFFORCE = 32;
export const SO_RCVTIMEO = 20;
export const SO_SNDTIMEO = 21;

/**
 * recv(2) into `buf`. With MSG_TRUNC the result is the datagram's real length, which may exceed buf.length.
 * Returns -errno on failure instead of throwing, so callers can tell a timeout (EAGAIN) from a real error.
 */
export function recvInto(fd: number, buf: Uint8Array, flags: number): number {
  const n = Number(lib().recv(fd, buf, buf.length, flags));
  return n < 0 ? -errno() : n;
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
