/**
 * The cap on API connections (--max-connections) for the connections Bun.serve cannot see.
 *
 * Bun.serve has no connection limit and no per-connection hook, and a connection that never sends a request is
 * only closed by Bun after about 10 s. A client holding hundreds of silent connections can therefore use up
 * gorb's file descriptors, and then the health checks cannot open sockets (EMFILE). So, every `intervalMs`:
 *   1. cheap: count the process's open fds (/proc/self/fd), less those known to be something else (the health
 *      checks' sockets in flight, `otherFds`); below the cap there is nothing to look at. Reading /proc/net/tcp
 *      walks the kernel's whole connection table, which a busy health checker would otherwise pay every second;
 *      and when the namespace holds no more connections on the API's port than the cap, no fd link is read;
 *   2. else find the API's accepted connections: the fds that are sockets whose inode /proc/net/tcp{,6} lists with
 *      the API's port as the LOCAL port (and not listening);
 *   3. if there are more than the cap, shut down the ones beyond it with shutdown(2): first the connections of peers
 *      outside --allow (their requests are refused anyway), then those of other peers, those from loopback (the
 *      operator's own CLI on this host) last; within each, the newest (highest inode) first. Shedding the newest
 *      whoever they were let anyone who held the cap's worth of connections (silent ones, reopened as Bun closed
 *      them) have every newer connection closed within a round, so the operator's `gorb status --watch`, a long
 *      apply or the web UI's event stream was cut again and again. /proc/net/tcp names each connection's peer.
 * shutdown(2), not close(2): Bun's event loop sees end-of-file and closes the fd itself, so no fd number is ever
 * closed behind its back (a reused number would be someone else's socket). The scan and the shutdowns run in
 * one synchronous turn of the event loop, which is the thread that closes API sockets, so an fd found in step 2 is
 * still that socket in step 3.
 *
 * The effective cap is the smaller of --max-connections and a quarter of the open-files limit, so the API
 * never holds most of the process's descriptors whatever the flag says.
 *
 * Reading /proc needs a descriptor, and the moment to shed is exactly when there is none left. So the shedder
 * holds one in reserve (/dev/null, as nginx and libuv do for accept): on EMFILE or ENFILE it closes the reserve,
 * runs the round in the slot that frees (each step opens one file at a time), and takes the reserve back.
 */
import { closeSync, openSync, readFileSync, readdirSync, readlinkSync } from "node:fs";
import { endianness } from "node:os";
import { type AddressBytes, type Cidr, cidrContains, isLoopback } from "../config/cidr.ts";
import type { Logger } from "../log.ts";
import { errorCode } from "../errno.ts";

/** One accepted API connection. */
export interface ApiSocket {
  readonly fd: number;
  readonly inode: number;
  /** The peer's address (an IPv4-mapped one as IPv4), or null when /proc did not say. */
  readonly peer: AddressBytes | null;
}

/** Options of ConnectionShedder. */
export interface ConnectionShedderOptions {
  /** The API's TCP port. */
  readonly port: number;
  /** --max-connections. */
  readonly maxConnections: number;
  /** shutdown(2) of one fd; returns 0 or -errno (ffi/libc.ts shutdownSocket). */
  readonly shutdown: (fd: number) => number;
  /** @default 1000 */
  readonly intervalMs?: number;
  /** The soft RLIMIT_NOFILE. @default read from /proc/self/limits */
  readonly fdLimit?: number;
  /** How many of the open fds are known to be something else (health-check sockets in flight). @default none */
  readonly otherFds?: () => number;
  /** --allow: connections of peers outside these networks (and loopback) are shed first. @default every peer allowed */
  readonly allow?: readonly Cidr[];
  readonly logger?: Logger;
}

/** The soft "Max open files" limit of this process, or null when /proc does not say. */
export function openFilesLimit(): number | null {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    const soft = line?.slice("Max open files".length).trim().split(/\s+/)[0];
    return soft === undefined || soft === "unlimited" ? null : Number(soft);
  } catch {
    return null;
  }
}

const LITTLE_ENDIAN = endianness() === "LE";

/**
 * The bytes of an address as /proc/net/tcp{,6} prints it: 8 or 32 hex digits, each 32-bit word in the host's byte
 * order; an IPv4-mapped IPv6 address as IPv4 (as config/cidr.ts parseAddress); null when it is not one.
 */
function procAddress(hex: string): AddressBytes | null {
  if (!/^([0-9A-Fa-f]{8}|[0-9A-Fa-f]{32})$/.test(hex)) return null;
  const bytes = new Uint8Array(hex.length / 2);
  for (let word = 0; word < bytes.length / 4; word++) {
    for (let i = 0; i < 4; i++) {
      const at = LITTLE_ENDIAN ? word * 4 + 3 - i : word * 4 + i;
      bytes[at] = Number.parseInt(hex.slice(word * 8 + i * 2, word * 8 + i * 2 + 2), 16);
    }
  }
  const mapped = bytes.length === 16 && bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  return mapped ? bytes.slice(12) : bytes;
}

/**
 * The sockets /proc/net/tcp and tcp6 list with local port `port`, except listening ones: inode to the peer's
 * address (null when it does not read).
 */
export function socketInodesOnLocalPort(port: number): Map<number, AddressBytes | null> {
  const inodes = new Map<number, AddressBytes | null>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch (error) {
      if (fdExhaustion(error)) throw error;
      continue; // no IPv6 in this kernel
    }
    // Most lines are other sockets (health checks): only lines that name the port anywhere are split.
    const needle = `:${hexPort} `;
    for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) {
      const start = text.lastIndexOf("\n", at) + 1;
      const end = text.indexOf("\n", at);
      const line = text.slice(start, end < 0 ? text.length : end);
      if (start === 0) continue; // the header
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      const remote = fields[2] ?? "";
      const state = fields[3];
      const inode = Number(fields[9]);
      if (local === undefined || !local.endsWith(`:${hexPort}`) || state === "0A" || !(inode > 0)) continue;
      inodes.set(inode, procAddress(remote.slice(0, remote.indexOf(":"))));
    }
  }
  return inodes;
}

/** The fds of this process that are the sockets in `inodes` (inode to peer), oldest (lowest inode) first. */
export function fdsOfSockets(inodes: ReadonlyMap<number, AddressBytes | null>): ApiSocket[] {
  const found: ApiSocket[] = [];
  const entries = readdirSync("/proc/self/fd");
  for (const entry of entries) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${entry}`);
    } catch {
      continue; // closed meanwhile (another thread's file)
    }
    const match = /^socket:\[(\d+)\]$/.exec(target);
    if (match === null) continue;
    const inode = Number(match[1]);
    if (inodes.has(inode)) found.push({ fd: Number(entry), inode, peer: inodes.get(inode) ?? null });
  }
  return found.sort((a, b) => a.inode - b.inode);
}

/** True for "too many open files" (this process's limit or the system's). */
function fdExhaustion(error: unknown): boolean {
  const code = errorCode(error);
  return code === "EMFILE" || code === "ENFILE";
}

function openReserve(): number | null {
  try {
    return openSync("/dev/null", "r");
  } catch {
    return null;
  }
}

/** Sheds API connections beyond the cap; see the module comment. */
export class ConnectionShedder {
  readonly #port: number;
  readonly #cap: number;
  readonly #shutdown: (fd: number) => number;
  readonly #log: Logger | undefined;
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #otherFds: () => number;
  readonly #allow: readonly Cidr[];
  #lastWarning = 0;
  #reserve: number | null = openReserve();
  /** Connections shut down so far. */
  shed = 0;

  constructor(options: ConnectionShedderOptions) {
    this.#port = options.port;
    const limit = options.fdLimit ?? openFilesLimit();
    this.#cap = limit === null ? options.maxConnections : Math.max(1, Math.min(options.maxConnections, Math.floor(limit / 4)));
    this.#shutdown = options.shutdown;
    this.#log = options.logger;
    // Said once, at start: otherwise the operator learns of the lower cap only when connections are closed.
    if (this.#cap < options.maxConnections) {
      this.#log?.warn(
        `--max-connections ${options.maxConnections} is more than a quarter of this process's open-files limit (${limit}): the API holds at most ` +
          `${this.#cap} connection(s) and closes the others; raise the limit (systemd LimitNOFILE=, ulimit -n) or lower --max-connections`,
      );
    }
    this.#otherFds = options.otherFds ?? (() => 0);
    this.#allow = options.allow ?? [];
    this.#timer = setInterval(() => this.check(), options.intervalMs ?? 1000);
    this.#timer.unref();
  }

  /** The cap in force: --max-connections, or a quarter of the open-files limit when that is smaller. */
  get cap(): number {
    return this.#cap;
  }

  /** One round: returns how many connections were shut down. */
  check(): number {
    try {
      return this.#round();
    } catch (error) {
      if (!fdExhaustion(error) || this.#reserve === null) return 0;
      closeSync(this.#reserve);
      this.#reserve = null;
      try {
        return this.#round();
      } catch {
        return 0; // another thread took the slot: next round
      } finally {
        this.#reserve = openReserve();
      }
    }
  }

  #round(): number {
    const open = readdirSync("/proc/self/fd").length;
    if (open - this.#otherFds() <= this.#cap) return 0;
    // When the namespace holds no more connections on the API's port than the cap, this process cannot either.
    const inodes = socketInodesOnLocalPort(this.#port);
    if (inodes.size <= this.#cap) return 0;
    const sockets = fdsOfSockets(inodes);
    const excess = sockets.length - this.#cap;
    if (excess <= 0) return 0;
    // Kept first: loopback, then allowed peers, oldest first in each; the tail beyond the cap is shed.
    const kept = sockets
      .map((socket) => ({ socket, rank: this.#rank(socket.peer) }))
      .sort((a, b) => b.rank - a.rank || a.socket.inode - b.socket.inode);
    let shed = 0;
    for (const { socket } of kept.slice(-excess)) if (this.#shutdown(socket.fd) === 0) shed++;
    this.shed += shed;
    const now = Date.now();
    if (now - this.#lastWarning >= 10_000) {
      this.#lastWarning = now;
      this.#log?.warn(
        `API: ${sockets.length} connections open, over the cap of ${this.#cap}: closed ${shed} (peers outside --allow first, loopback last, the newest first)`,
      );
    }
    return shed;
  }

  /** How much a connection from `peer` is kept: 2 loopback, 1 an allowed (or unknown) peer, 0 one outside --allow. */
  #rank(peer: AddressBytes | null): number {
    if (peer === null) return 1;
    if (isLoopback(peer)) return 2;
    return this.#allow.length === 0 || this.#allow.some((network) => cidrContains(network, peer)) ? 1 : 0;
  }

  stop(): void {
    clearInterval(this.#timer);
    if (this.#reserve !== null) closeSync(this.#reserve);
    this.#reserve = null;
  }
}
