/**
 * One TCP (optionally TLS) connection per probe, over raw sockets, for the tcp, http(s) and tls checkers.
 *
 * Paths. An IP-literal target without TLS and without a mark (every plain tcp and http check) is one socket of
 * ffi/probe-socket.ts watched by ./poller.ts: socket, connect, the request sent at once when the handshake is
 * already done (a backend on this host) or when the connect completes, one epoll add, recv, close; no Socket
 * object, no promise, and event-loop wake-ups shared by all probes. Its cancel closes the socket at once, also
 * while connecting. TLS goes through Bun.connect (below); a mark through ffi/marked-socket.ts. A host name is
 * looked up first (./names.ts) and its address connected to the same way.
 *
 * Cost on the Bun.connect path: a probe is one object; Bun.connect gets one shared handler table and the probe as
 * the socket's `data`, so a check allocates no closures, no promise chain and no AbortController. Raw sockets also
 * mean no proxy: HTTP_PROXY/http_proxy are never consulted (fetch honoured them, so a dead backend could read as Up).
 *
 * Cancelling. A connection that is open is terminated at once. NB: Bun.connect has no handle before the
 * connection opens, so a connect cannot be cancelled on that path: the socket would stay in SYN_SENT until the
 * kernel gives up (about 2 minutes with the default tcp_syn_retries). So once a cancelled connect of a target has
 * been pending for STUCK_MS, the target's next connects go through node:net/node:tls, whose destroy() closes a
 * connecting socket at once (measured: 50 connects to a black hole, destroy() -> fds back to the baseline at once). The one
 * socket that could not be cancelled is still counted: `released` is called only when its connect finally
 * settles and it is closed.
 */
import net from "node:net";
import { constants as osConstants } from "node:os";
import tls from "node:tls";
import type { Socket } from "bun";
import { closeDescriptor, connectState, routeSource, startMarkedConnect } from "../../../ffi/marked-socket.ts";
import { EAGAIN, EPOLLET, EPOLLIN, EPOLLOUT, closeSocket, openTcp, recvInto, sendBytes, sockaddrOf } from "../../../ffi/probe-socket.ts";
import { errorCode } from "../../errno.ts";
import { type CheckResult, elapsedSince, localErrorOf } from "../checker.ts";
import type { ProbeTarget } from "../options.ts";
import { lookupName } from "./names.ts";
import { type Deferred, type PollTarget, defer, forget, newTag, watch } from "./poller.ts";

/** TLS settings of a connection: verification, CA bundle (PEM text) and SNI name. */
export interface ConnTls {
  readonly verify: boolean;
  readonly ca: string | null;
  readonly serverName: string | null;
}

/** bunTlsOptions is the `tls` option of Bun.connect for these settings (built once per checker). */
function bunTlsOptions(t: ConnTls): { rejectUnauthorized: boolean; ca?: string; serverName?: string } {
  return { rejectUnauthorized: t.verify, ...(t.ca === null ? {} : { ca: t.ca }), ...(t.serverName === null ? {} : { serverName: t.serverName }) };
}

/**
 * Connector: how the probes of one checker (one monitor target) connect, made once per checker by newConnector.
 * It holds what every connection of the checker shares: the TLS settings (and Bun's form of them, built once) and
 * the connect mode. Per-connection socket settings that a checker's options decide (a source address, a firewall
 * mark for checks through the VIP) belong in ConnectorOptions and here, applied in SocketProbe.connectBun and
 * connectNode; the checkers pass the object through untouched.
 */
export interface Connector {
  readonly tls: ConnTls | null;
  /** @internal Bun.connect's `tls` option for `tls`. */
  readonly bunTls: ReturnType<typeof bunTlsOptions> | null;
  readonly mode: ConnMode;
  /** @internal The raw path's address (sockaddr bytes) of the last target, or null when it has none (a name, a zone). */
  raw: { host: string; port: number; sockaddr: Uint8Array | null } | null;
  /** @internal For a host name reached at its address: `bunTls` naming it (SNI, and the name the certificate must match). */
  named: { host: string; bunTls: ReturnType<typeof bunTlsOptions> } | null;
}

/** What newConnector takes: every field optional, so new socket settings can be added without touching callers. */
export interface ConnectorOptions {
  readonly tls?: ConnTls | null;
}

/** newConnector builds a checker's connector. */
export function newConnector(options: ConnectorOptions = {}): Connector {
  const tls = options.tls ?? null;
  return { tls, bunTls: tls === null ? null : bunTlsOptions(tls), mode: newConnMode(), raw: null, named: null };
}

/**
 * Shared by every probe of one checker (one monitor target): its cancelled Bun connects that are still pending,
 * oldest first. While one has been pending for STUCK_MS (a connect that neither opened nor failed: a black
 * hole), new connects go through node:net, which can cancel them. A connect that was cancelled only because the
 * process was busy (its open callback had not run yet) settles within the event loop's lag, so an overloaded
 * monitor does not switch to the costlier path (which would overload it further).
 */
export interface ConnMode {
  readonly stuck: SocketProbe[];
}

/** How long a cancelled connect must stay pending before the target's connects become cancellable. */
export const STUCK_MS = 1_000;

/** newConnMode gives a checker's connect mode. */
function newConnMode(): ConnMode {
  return { stuck: [] };
}

function useNode(mode: ConnMode, now: number): boolean {
  const q = mode.stuck;
  while (q.length > 0 && !(q[0] as SocketProbe).isStuck()) q.shift();
  return q.length > 0 && now - (q[0] as SocketProbe).stuckAt >= STUCK_MS;
}

const CONNECTING = 0;
const OPEN = 1;
const DONE = 2;

/**
 * The raw path's read buffer, shared by every probe (`received` copies what it keeps). Small on purpose: a status
 * line fits, and what a full read leaves in the socket makes close() send the reset by itself (the kernel resets
 * a connection closed with unread data), which saves the SO_LINGER call; after a read that emptied the socket,
 * close() sets SO_LINGER 0 first.
 */
const READ_BUFFER = new Uint8Array(64);
const NOTHING = new Uint8Array(0);

/**
 * SocketProbe is one check over one connection. Subclasses say what to send first (`greeting`), what an open
 * connection means (`opened`) and what incoming bytes mean (`received`); they end the check with `pass`/`fail`.
 *
 * Paths: an IP-literal target without TLS or mark goes over a raw socket watched by ./poller.ts (the cheapest:
 * see ffi/probe-socket.ts); TLS through Bun.connect (or node:net while connects are stuck, see
 * above); a target with a mark through ffi/marked-socket.ts.
 */
export abstract class SocketProbe implements PollTarget, Deferred {
  private state = CONNECTING;
  /** True when this probe was cancelled while its Bun connect was pending (listed in mode.stuck), and since when. */
  private stuck = false;
  /** @internal */
  stuckAt = 0;
  private bun: Socket<SocketProbe> | null = null;
  private node: net.Socket | null = null;
  private closed = false;
  /** A marked connect (checks through the VIP) still in progress: its descriptor, else -1. */
  private markedFd = -1;
  private readonly startedAt = performance.now();
  /** Raw path: the descriptor (-1 once closed), the watch tag, whether the connect completed. */
  private raw = false;
  private fd = -1;
  tag = 0;
  private connected = false;
  /** Raw path: the last read filled READ_BUFFER, so bytes are likely left unread (close resets by itself). */
  private unread = false;
  /** Raw path: inside begin(), where a result is kept (`result`) and delivered at the next poll. */
  private sync = false;
  private result: CheckResult | null = null;
  private cancelled = false;
  /** A host-name target: its address once looked up (null before), and whether the lookup is still running. */
  private address: string | null = null;
  private resolving = false;

  constructor(
    protected readonly target: ProbeTarget,
    private readonly done: (result: CheckResult) => void,
    private readonly released: () => void,
    private readonly connector: Connector,
  ) {}

  /** Bytes to send as soon as the connection is up (an HTTP request), or null. */
  protected greeting(): Uint8Array | null {
    return null;
  }
  /** Called once the connection (and the TLS handshake, if any) is established and the greeting written. */
  protected abstract opened(): void;
  /** Called for incoming bytes while the check is still running. */
  protected received(_chunk: Uint8Array): void {}
  /** The words for a connection that failed with `code` ("connect to 10.0.0.1:80 failed: ECONNREFUSED"). */
  protected abstract failure(code: string): string;
  /** The peer certificate's expiry (ms since epoch), or NaN when unknown. */
  protected peerCertificateExpiry(): number {
    const cert = this.bun !== null ? this.bun.getPeerCertificate() : this.node instanceof tls.TLSSocket ? this.node.getPeerCertificate() : null;
    const validTo = cert?.valid_to;
    return typeof validTo === "string" ? Date.parse(validTo) : Number.NaN;
  }

  /** begin connects; the returned function cancels the check. */
  begin(): () => void {
    if (this.target.mark !== undefined) {
      this.connectMarked(this.target.mark);
      return this.cancel;
    }
    const sockaddr = this.connector.tls === null ? rawAddress(this.connector, this.target) : null;
    if (sockaddr === null && net.isIP(this.target.host) === 0) this.lookUp();
    else this.connect(sockaddr, this.startedAt);
    return this.cancel;
  }

  /** Opens the connection: a raw socket to `sockaddr` when there is one, else node:net while connects are stuck, else Bun.connect. */
  private connect(sockaddr: Uint8Array | null, now: number): void {
    const mode = this.connector.mode;
    if (sockaddr !== null) this.connectRaw(sockaddr);
    else if (mode.stuck.length > 0 && useNode(mode, now)) this.connectNode();
    else this.connectBun();
  }

  /**
   * A host name is looked up first (./names.ts), then its address connected to as an IP target would be (TLS still
   * sends and verifies the name). While the lookup runs the probe holds no socket, and a cancel then (the
   * monitor's timeout) answers with a check error: this host's resolver, not the backend, used the time.
   */
  private lookUp(): void {
    this.resolving = true;
    lookupName(this.target.host, (error, address) => {
      if (!this.resolving) return; // cancelled meanwhile
      this.resolving = false;
      if (error !== null) {
        this.failWith(error);
        this.gone();
        return;
      }
      this.address = address;
      this.connect(this.connector.tls === null ? sockaddrOf(address, this.target.port) : null, performance.now());
    });
  }

  /** The host to connect to: a name's looked-up address, else the target's host. */
  private get connectHost(): string {
    return this.address ?? this.target.host;
  }

  /** Bun.connect's `tls` option: the checker's, naming the host name when connecting to its address. */
  private bunTlsFor(): ReturnType<typeof bunTlsOptions> | null {
    const t = this.connector.bunTls;
    if (t === null || this.address === null || t.serverName !== undefined) return t;
    const named = this.connector.named;
    if (named !== null && named.host === this.target.host) return named.bunTls;
    const bunTls = { ...t, serverName: this.target.host };
    this.connector.named = { host: this.target.host, bunTls };
    return bunTls;
  }

  /** write sends bytes on an open Bun or node:net connection. */
  private write(bytes: Uint8Array): void {
    if (this.bun !== null) this.bun.write(bytes);
    else this.node?.write(bytes);
  }

  /** openedNow: the Bun/node:net connection is up: write the greeting, then tell the subclass. */
  private openedNow(): void {
    this.state = OPEN;
    const greeting = this.greeting();
    if (greeting !== null) this.write(greeting);
    this.opened();
  }

  /** pass ends the check as passed and closes the connection. */
  protected pass(message: string, code = ""): void {
    this.settle({ ok: true, durationMs: elapsedSince(this.startedAt), message, kind: "pass", code });
  }

  /** fail ends the check as failed and closes the connection. */
  protected fail(message: string, code: string): void {
    this.settle({ ok: false, durationMs: elapsedSince(this.startedAt), message, kind: "fail", code });
  }

  /** failWith classifies an error: local errors (EMFILE, ...) are check errors, the rest fail the backend. */
  protected failWith(err: unknown): void {
    const code = errorCode(err) || "ECONNRESET";
    const local = this.state === CONNECTING ? localErrorOf(code) : "";
    if (local !== "") {
      this.settle({ ok: false, durationMs: elapsedSince(this.startedAt), message: `check error: ${this.failure(local)}`, kind: "local-error", code: local });
    } else {
      this.fail(this.failure(code), code);
    }
  }

  private settle(result: CheckResult): void {
    if (this.state === DONE) return;
    this.state = DONE;
    this.close();
    if (!this.raw) {
      this.done(result);
    } else if (this.sync) {
      this.result = result;
      defer(this);
    } else {
      this.done(result);
      this.gone();
    }
  }

  /** @internal Poller: deliver the result kept while inside begin(), unless cancelled since. */
  deliver(): void {
    const result = this.result;
    this.result = null;
    if (result !== null && !this.cancelled) this.done(result);
    this.gone();
  }

  private readonly cancel = (): void => {
    this.cancelled = true;
    if (this.state === DONE) return;
    if (this.resolving) {
      // The check error is this probe's answer to the cancel (see CancelProbe): no socket was opened.
      this.resolving = false;
      const code = "EAI_AGAIN";
      this.settle({ ok: false, durationMs: elapsedSince(this.startedAt), message: `check error: ${this.failure(code)} (the name's lookup did not finish)`, kind: "local-error", code });
      this.gone();
      return;
    }
    if (this.raw) {
      this.state = DONE;
      this.close();
      this.gone();
      return;
    }
    if (this.markedFd >= 0) {
      this.state = DONE;
      this.dropMarked();
      return;
    }
    // A Bun connect still pending cannot be cancelled: close it when it settles, and make this target's next
    // connects cancellable.
    if (this.state === CONNECTING && this.bun === null && this.node === null) {
      this.stuck = true;
      this.stuckAt = performance.now();
      this.connector.mode.stuck.push(this);
    }
    this.state = DONE;
    this.close();
  };

  private close(): void {
    if (this.fd >= 0) {
      const fd = this.fd;
      this.fd = -1;
      forget(fd, this);
      closeSocket(fd, this.connected && !this.unread);
    } else if (this.bun !== null) this.bun.terminate();
    else if (this.node !== null) this.node.destroy();
  }

  /** Called exactly once, when the socket is gone. */
  private gone(): void {
    if (this.closed) return;
    this.closed = true;
    this.unstick();
    this.released();
  }

  private unstick(): void {
    this.stuck = false;
  }

  /** @internal Whether this probe's cancelled connect is still pending. */
  isStuck(): boolean {
    return this.stuck;
  }

  // ---- raw path (IP literals, no TLS, no mark) ---------------------------------------------------------------

  /**
   * socket + connect, then at once the greeting (an empty send for tcp: it only asks whether the connection is
   * up). On a backend of this host the handshake has completed inside connect, so the request goes out now and
   * a tcp check is over; otherwise the send says EAGAIN and the socket is watched for the connect.
   */
  private connectRaw(sockaddr: Uint8Array): void {
    this.raw = true;
    this.sync = true;
    const fd = openTcp(sockaddr);
    if (fd < 0) {
      this.failWith(errnoError(-fd));
    } else {
      this.fd = fd;
      this.tag = newTag();
      this.rawSend(true);
    }
    this.sync = false;
  }

  private rawSend(first: boolean): void {
    const greeting = this.greeting() ?? NOTHING;
    const n = sendBytes(this.fd, greeting);
    if (n === -EAGAIN) {
      if (first) this.rawWatch(EPOLLOUT | EPOLLIN | EPOLLET);
      return;
    }
    if (n < 0) {
      this.failWith(errnoError(-n));
      return;
    }
    this.connected = true;
    this.state = OPEN;
    // A fresh connection takes a few hundred bytes whole (its send buffer is several KiB); anything else is
    // this host's problem, not the backend's.
    if (n < greeting.length) {
      this.localError("ENOBUFS");
      return;
    }
    this.opened();
    if (first && this.state === OPEN) this.rawWatch(EPOLLIN | EPOLLET);
  }

  private rawWatch(events: number): void {
    const r = watch(this.fd, events, this);
    if (r < 0) this.localError(errnoName(-r) || "ENOMEM");
  }

  /** @internal Poller: the socket is ready (edge-triggered: read until EAGAIN). */
  ready(events: number): void {
    if (this.state === CONNECTING) {
      this.rawSend(false);
      if ((events & EPOLLIN) === 0) return;
    }
    while (this.state === OPEN) {
      const n = recvInto(this.fd, READ_BUFFER);
      if (n === -EAGAIN) return;
      if (n <= 0) {
        this.failWith(n === 0 ? closedError() : errnoError(-n));
        return;
      }
      this.unread = n === READ_BUFFER.length;
      this.received(READ_BUFFER.subarray(0, n));
    }
  }

  private localError(code: string): void {
    this.settle({ ok: false, durationMs: elapsedSince(this.startedAt), message: `check error: ${this.failure(code)}`, kind: "local-error", code });
  }

  // ---- Bun.connect path --------------------------------------------------------------------------------

  private connectBun(): void {
    try {
      const tls = this.bunTlsFor();
      if (tls === null) {
        void Bun.connect<SocketProbe>({ hostname: this.connectHost, port: this.target.port, data: this, socket: BUN_HANDLERS });
      } else {
        void Bun.connect<SocketProbe>({ hostname: this.connectHost, port: this.target.port, data: this, socket: BUN_HANDLERS, tls });
      }
    } catch (err) {
      this.failWith(err);
      this.gone();
    }
  }

  /** @internal Bun handler: TCP connected (or, for TLS, about to handshake). */
  bunOpen(socket: Socket<SocketProbe>): void {
    this.bun = socket;
    if (this.state === DONE) {
      this.unstick();
      socket.terminate();
      return;
    }
    if (this.connector.tls === null) this.openedNow();
  }

  /** @internal Bun handler: TLS handshake finished. */
  bunHandshake(socket: Socket<SocketProbe>, success: boolean, error: Error | null): void {
    this.bun = socket;
    if (this.state === DONE) return;
    // NB: Bun reports a handshake whose certificate does not name the SNI name as unsuccessful even when nothing is
    // verified (rejectUnauthorized false). Without verification, a handshake that gave a peer certificate is done.
    const verify = this.connector.tls?.verify === true;
    const done = success || (!verify && hasPeerCertificate(socket));
    if (!done || (verify && error !== null)) {
      this.state = OPEN;
      this.fail(this.failure(errorCode(error) || "TLS_HANDSHAKE_FAILED"), errorCode(error) || "TLS_HANDSHAKE_FAILED");
      return;
    }
    this.openedNow();
  }

  /** @internal Bun handler: bytes arrived. */
  bunData(chunk: Uint8Array): void {
    if (this.state === OPEN) this.received(chunk);
  }

  /** @internal Bun handler: the connection broke or the peer closed before the check ended. */
  bunError(error: Error | undefined): void {
    if (this.state === DONE) return;
    this.failWith(error ?? closedError());
  }

  /** @internal Bun handler: the socket is closed. */
  bunClosed(error: Error | undefined): void {
    if (this.state !== DONE) this.bunError(error);
    this.gone();
  }

  /** @internal Bun handler: the connect failed; no socket remains. */
  bunConnectError(error: Error): void {
    if (this.state !== DONE) this.failWith(error);
    this.gone();
  }

  // ---- marked path (checks through the VIP) -----------------------------------------------------------------

  /**
   * The socket is made through ffi/marked-socket.ts (SO_MARK, source address of the route to the backend), its
   * connect polled until it settles (1 ms, doubling to 32 ms), then handed to Bun.connect({ fd }), which treats it as
   * open. Cancelling closes the descriptor at once.
   */
  private connectMarked(mark: number): void {
    try {
      const source = this.target.sourceFor === undefined ? null : routeSource(this.target.sourceFor);
      this.markedFd = startMarkedConnect(this.target.host, this.target.port, mark, source);
    } catch (err) {
      const code = errnoName((err as { errno?: number }).errno);
      if (code === "EPERM" || code === "EACCES") {
        // SO_MARK needs CAP_NET_ADMIN: gorb's own limit, which says nothing about the backend.
        const message = `check error: cannot mark the probe socket (${code}: SO_MARK needs CAP_NET_ADMIN)`;
        this.settle({ ok: false, durationMs: elapsedSince(this.startedAt), message, kind: "local-error", code });
      } else {
        this.failWith(Object.assign(new Error("marked connect"), { code }));
      }
      this.gone();
      return;
    }
    const poll = (delay: number): void => {
      const fd = this.markedFd;
      if (fd < 0) return; // cancelled
      const state = connectState(fd);
      if (state === null) {
        setTimeout(poll, delay, Math.min(delay * 2, 32));
        return;
      }
      this.markedFd = -1;
      if (state !== 0) {
        closeDescriptor(fd);
        this.failWith(Object.assign(new Error("connect"), { code: errnoName(state) }));
        this.gone();
        return;
      }
      const tlsOptions = this.connector.bunTls ?? undefined;
      const connect = Bun.connect as unknown as (o: { fd: number; data: SocketProbe; socket: typeof BUN_HANDLERS; tls?: unknown }) => Promise<unknown>;
      connect({ fd, data: this, socket: BUN_HANDLERS, ...(tlsOptions === undefined ? {} : { tls: tlsOptions }) }).catch((err: unknown) => {
        this.failWith(err);
        this.gone();
      });
    };
    setTimeout(poll, 1, 2);
  }

  private dropMarked(): void {
    const fd = this.markedFd;
    if (fd < 0) return;
    this.markedFd = -1;
    closeDescriptor(fd);
    this.gone();
  }

  // ---- node:net path (cancellable connects) --------------------------------------------------------------

  private connectNode(): void {
    const t = this.connector.tls;
    let s: net.Socket;
    try {
      const serverName = t?.serverName ?? (this.address === null ? null : this.target.host);
      s =
        t === null
          ? net.connect({ host: this.connectHost, port: this.target.port })
          : tls.connect({
              host: this.connectHost,
              port: this.target.port,
              rejectUnauthorized: t.verify,
              ...(t.ca === null ? {} : { ca: t.ca }),
              ...(serverName === null || net.isIP(serverName) !== 0 ? {} : { servername: serverName }),
            });
    } catch (err) {
      this.failWith(err);
      this.gone();
      return;
    }
    this.node = s;
    s.on(t === null ? "connect" : "secureConnect", () => {
      if (this.state === DONE) return;
      this.openedNow();
    });
    s.on("data", (chunk: Buffer) => {
      if (this.state === OPEN) this.received(chunk);
    });
    s.on("error", (err: Error) => {
      if (this.state !== DONE) this.failWith(err);
    });
    s.on("close", () => {
      if (this.state !== DONE) this.failWith(closedError());
      this.gone();
    });
  }
}

const BUN_HANDLERS = {
  open(s: Socket<SocketProbe>) {
    s.data.bunOpen(s);
  },
  handshake(s: Socket<SocketProbe>, success: boolean, error: Error | null) {
    s.data.bunHandshake(s, success, error);
  },
  data(s: Socket<SocketProbe>, chunk: Uint8Array) {
    s.data.bunData(chunk);
  },
  end(s: Socket<SocketProbe>) {
    s.data.bunError(undefined);
  },
  error(s: Socket<SocketProbe>, error: Error) {
    s.data.bunError(error);
  },
  close(s: Socket<SocketProbe>, error?: Error) {
    s.data.bunClosed(error);
  },
  connectError(s: Socket<SocketProbe>, error: Error) {
    s.data.bunConnectError(error);
  },
};

/** Whether a TLS socket holds its peer's certificate: its handshake got that far. */
function hasPeerCertificate(socket: Socket<SocketProbe>): boolean {
  const cert: unknown = socket.getPeerCertificate();
  return typeof cert === "object" && cert !== null && Object.keys(cert).length > 0;
}

/** rawAddress gives the raw path's socket address of a target (made once per target), or null: not an IP literal. */
function rawAddress(connector: Connector, target: ProbeTarget): Uint8Array | null {
  const r = connector.raw;
  if (r !== null && r.host === target.host && r.port === target.port) return r.sockaddr;
  const sockaddr = sockaddrOf(target.host, target.port);
  connector.raw = { host: target.host, port: target.port, sockaddr };
  return sockaddr;
}

/** The error of a connection the peer closed before the check ended. */
function closedError(): Error {
  return Object.assign(new Error("closed"), { code: "ECONNRESET" });
}

function errnoError(errno: number): Error {
  return Object.assign(new Error("socket"), { code: errnoName(errno) || "EIO" });
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(osConstants.errno).map(([name, n]) => [n, name] as const));

/** The errno name of a number ("ECONNREFUSED"), or "" when unknown. */
function errnoName(errno: number | undefined): string {
  return errno === undefined ? "" : (ERRNO_NAMES.get(errno) ?? `errno ${errno}`);
}
