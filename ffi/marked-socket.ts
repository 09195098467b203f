/**
 * TCP connects with a firewall mark (SO_MARK) and a chosen source address, for health checks through the VIP:
 * IPVS sees a locally generated packet at LOCAL_OUT and, for a firewall-mark service, schedules it by the mark.
 * Neither Bun.connect nor node:net can set a socket option before connecting, so the socket is made here:
 * socket (non-blocking) -> setsockopt(SO_MARK) -> bind(source, port 0) -> connect (EINPROGRESS). The caller polls
 * `connectState` until the connect settles and then hands the connected descriptor to Bun.connect({ fd }).
 * SO_MARK needs CAP_NET_ADMIN.
 *
 * `routeSource` asks the kernel which source address it would use towards an address (a connected UDP socket's
 * local address: no packet is sent), which is the director address a backend routes back to.
 */
import { FFIType, read } from "bun:ffi";
import { SyscallError } from "./errors.ts";
import { lazyLibc } from "./libc.ts";
import { AF_INET, AF_INET6, SOCK_STREAM, SOCK_DGRAM, SOCK_NONBLOCK, SOCK_CLOEXEC, SOL_SOCKET, addressBytes, sockaddrOfBytes } from "./sockaddr.ts";

const symbols = {
  socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  getsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  connect: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  getsockname: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  poll: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
  __errno_location: { args: [], returns: FFIType.ptr },
} as const;

const libc = lazyLibc(symbols);

function errno(): number {
  const p = libc().__errno_location();
  return p === null ? 0 : read.i32(p, 0);
}

const SO_ERROR = 4;
const SO_MARK = 36;
const EINPROGRESS = 115;
const EINVAL = 22;
const POLLOUT = 4;

/** The bytes of an IPv4 or IPv6 literal (a zone, "%eth0", is dropped), or null when it is neither. */
function literalBytes(address: string): Uint8Array | null {
  return addressBytes(address.replace(/%.*$/, ""));
}

function text(address: Uint8Array): string {
  if (address.length === 4) return Array.from(address).join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((address[i] ?? 0) << 8) | (address[i + 1] ?? 0)).toString(16));
  return groups.join(":").replace(/(^|:)0(:0)+(:|$)/, "::").replace(/:::+/, "::");
}

/**
 * Start a marked, non-blocking TCP connect to address:port from `source` (null: the kernel picks). Returns the
 * descriptor; throws SyscallError (with its errno) when the socket cannot be made or the connect fails at once.
 */
export function startMarkedConnect(address: string, port: number, mark: number, source: string | null): number {
  const dest = literalBytes(address);
  if (dest === null) throw new SyscallError(`connect ${address}: not an address literal`, EINVAL);
  const c = libc();
  const fd = c.socket(dest.length === 16 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new SyscallError("socket", errno());
  try {
    if (c.setsockopt(fd, SOL_SOCKET, SO_MARK, new Uint32Array([mark >>> 0]), 4) !== 0) throw new SyscallError("setsockopt(SO_MARK)", errno());
    const from = source === null ? null : literalBytes(source);
    if (from !== null && from.length === dest.length) {
      const sa = sockaddrOfBytes(from, 0);
      if (c.bind(fd, sa, sa.length) !== 0) throw new SyscallError(`bind ${source}`, errno());
    }
    const sa = sockaddrOfBytes(dest, port);
    if (c.connect(fd, sa, sa.length) !== 0) {
      const e = errno();
      if (e !== EINPROGRESS) throw new SyscallError(`connect ${address}:${port}`, e);
    }
    return fd;
  } catch (error) {
    c.close(fd);
    throw error;
  }
}

/** A started connect: null while it is still in progress, 0 once connected, else the errno it failed with. */
export function connectState(fd: number): number | null {
  const c = libc();
  const pfd = new Uint8Array(8);
  const view = new DataView(pfd.buffer);
  view.setInt32(0, fd, true);
  view.setInt16(4, POLLOUT, true);
  const n = c.poll(pfd, 1, 0);
  if (n < 0) return errno();
  if (n === 0) return null;
  const value = new Int32Array(1);
  const len = new Uint32Array([4]);
  if (c.getsockopt(fd, SOL_SOCKET, SO_ERROR, value, len) !== 0) return errno();
  return value[0] ?? 0;
}

/** Close a descriptor that was never handed over. */
export function closeDescriptor(fd: number): void {
  libc().close(fd);
}

/** The source address the kernel would use towards `address`, or null when it has no route (or no literal). */
export function routeSource(address: string): string | null {
  const dest = literalBytes(address);
  if (dest === null) return null;
  const c = libc();
  const fd = c.socket(dest.length === 16 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return null;
  try {
    const sa = sockaddrOfBytes(dest, 9);
    if (c.connect(fd, sa, sa.length) !== 0) return null;
    const out = new Uint8Array(28);
    const len = new Uint32Array([out.length]);
    if (c.getsockname(fd, out, len) !== 0) return null;
    return dest.length === 16 ? text(out.subarray(8, 24)) : text(out.subarray(4, 8));
  } finally {
    c.close(fd);
  }
}
