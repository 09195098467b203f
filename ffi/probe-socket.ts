/**
 * Raw non-blocking TCP sockets for health probes, and one epoll set to watch them (src/health/checkers/poller.ts).
 *
 * Why not Bun.connect: a check through it costs 11 system calls for HTTP (socket, connect, TCP_NODELAY twice,
 * epoll add/modify/delete, send, recv, SO_LINGER, close) and two event-loop wake-ups (connected, reply), plus a
 * Socket object and a promise. Here: socket, connect, send (when the handshake finished inside connect, as it does
 * for a backend on this host, the request goes out at once; otherwise the send says EAGAIN and the socket is
 * watched for the connect), one epoll add, recv, close (SO_LINGER 0 first only when nothing was left unread: the
 * kernel resets a connection closed with unread bytes by itself); wake-ups are shared by all probes.
 *
 * Every call returns a number: >= 0 on success, the negative errno on failure. Nothing throws or allocates on
 * the per-check path; the caller keeps the address bytes (sockaddrOf) once per target.
 */
import { FFIType, read } from "bun:ffi";
import { lazyLibc } from "./libc.ts";
import { AF_INET, AF_INET6, SOCK_STREAM, SOCK_NONBLOCK, SOCK_CLOEXEC, SOL_SOCKET, addressBytes, sockaddrOfBytes } from "./sockaddr.ts";

const symbols = {
  socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  connect: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  send: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64_fast },
  recv: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64_fast },
  setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
  epoll_create1: { args: [FFIType.i32], returns: FFIType.i32 },
  epoll_ctl: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  epoll_wait: { args: [FFIType.i32, FFIType.ptr, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  __errno_location: { args: [], returns: FFIType.ptr },
} as const;

const libc = lazyLibc(symbols);
type Symbols = ReturnType<typeof libc>;

function negErrno(c: Symbols): number {
  const p = c.__errno_location();
  return p === null ? -EIO : -read.i32(p, 0);
}

const SO_LINGER = 13;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const EPOLL_CTL_ADD = 1;

/** EAGAIN: the send or recv would block (still connecting, nothing to read yet). */
export const EAGAIN = 11;
/** EIO: what a failure reads as when errno itself cannot be read. */
const EIO = 5;
/** EINPROGRESS: connect's answer on a non-blocking socket. */
const EINPROGRESS = 115;

/** epoll event bits. */
export const EPOLLIN = 0x001;
export const EPOLLOUT = 0x004;
export const EPOLLET = 0x80000000;

/**
 * The layout of struct epoll_event: packed (12 bytes, data at offset 4) on x86-64 only; elsewhere the 64-bit
 * data field is aligned (16 bytes, data at 8).
 */
export const EVENT_SIZE = process.arch === "x64" ? 12 : 16;
const DATA_OFFSET = process.arch === "x64" ? 4 : 8;
export const EVENT_DATA_OFFSET = DATA_OFFSET;

/** The sockaddr_in/sockaddr_in6 of an IPv4 or IPv6 literal (no zone) and port, or null for anything else. */
export function sockaddrOf(host: string, port: number): Uint8Array | null {
  const bytes = addressBytes(host);
  return bytes === null ? null : sockaddrOfBytes(bytes, port);
}

/** openTcp makes a non-blocking socket and starts its connect: the descriptor, or -errno (the socket closed). */
export function openTcp(sockaddr: Uint8Array): number {
  const c = libc();
  const fd = c.socket(sockaddr.length === 28 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return negErrno(c);
  if (c.connect(fd, sockaddr, sockaddr.length) !== 0) {
    const e = negErrno(c);
    if (e !== -EINPROGRESS) {
      c.close(fd);
      return e;
    }
  }
  return fd;
}

/**
 * sendBytes sends `bytes` (may be empty: then it only asks whether the connection is up): the count sent, or
 * -errno (-EAGAIN while the connect is still in progress; the connect's error once it failed).
 */
export function sendBytes(fd: number, bytes: Uint8Array): number {
  const c = libc();
  const n = Number(c.send(fd, bytes, bytes.length, MSG_DONTWAIT | MSG_NOSIGNAL));
  return n < 0 ? negErrno(c) : n;
}

/** recvInto reads into `buffer`: the count read (0: the peer closed), or -errno. */
export function recvInto(fd: number, buffer: Uint8Array): number {
  const c = libc();
  const n = Number(c.recv(fd, buffer, buffer.length, MSG_DONTWAIT));
  return n < 0 ? negErrno(c) : n;
}

const LINGER_RESET = new Int32Array([1, 0]);

/** closeSocket closes a probe socket; `reset` first sets SO_LINGER 0 so a connected one ends with RST, no TIME_WAIT. */
export function closeSocket(fd: number, reset: boolean): void {
  const c = libc();
  if (reset) c.setsockopt(fd, SOL_SOCKET, SO_LINGER, LINGER_RESET, 8);
  c.close(fd);
}

/** epollCreate makes an epoll set (close-on-exec): its descriptor, or -errno. */
export function epollCreate(): number {
  const c = libc();
  const fd = c.epoll_create1(SOCK_CLOEXEC);
  return fd < 0 ? negErrno(c) : fd;
}

const ADD_EVENT = new Uint8Array(EVENT_SIZE);
const ADD_VIEW = new DataView(ADD_EVENT.buffer);

/** epollAdd watches `fd` for `events`, tagged with (fd, tag) in the event's data: 0, or -errno. */
export function epollAdd(ep: number, fd: number, events: number, tag: number): number {
  const c = libc();
  ADD_VIEW.setUint32(0, events >>> 0, true);
  ADD_VIEW.setUint32(DATA_OFFSET, fd, true);
  ADD_VIEW.setUint32(DATA_OFFSET + 4, tag >>> 0, true);
  return c.epoll_ctl(ep, EPOLL_CTL_ADD, fd, ADD_EVENT) === 0 ? 0 : negErrno(c);
}

/** epollPoll collects ready events without waiting: the count written into `events` (EVENT_SIZE each), or -errno. */
export function epollPoll(ep: number, events: Uint8Array): number {
  const c = libc();
  const n = c.epoll_wait(ep, events, Math.floor(events.length / EVENT_SIZE), 0);
  return n < 0 ? negErrno(c) : n;
}
