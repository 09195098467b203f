/**
 * One TCP (optionally TLS) connection per probe, over raw sockets, for the tcp, http(s) and tls checkers.
 *
 * Cost: a probe is one object; Bun.connect gets one shared handler table and the probe as the socket's `data`,
 * so a check allocates no closures, no promise chain and no AbortController. Raw sockets also mean no proxy:
 * HTTP_PROXY/http_proxy are never consulted (fetch honoured them, so a dead backend could read as Up).
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
import { type CheckResult, elapsedSince, errorCode, localErrorOf } from "../checker.ts";
import type { ProbeTarget } from "../options.ts";

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
}

/** What newConnector takes: every field optional, so new socket settings can be added without touching callers. */
export interface ConnectorOptions {
  readonly tls?: ConnTls | null;
}

/** newConnector builds a checker's connector. */
export function newConnector(options: ConnectorOptions = {}): Connector {
  const tls = options.tls ?? null;
  return { tls, bunTls: tls === null ? null : bunTlsOptions(tls), mode: newConnMode() };
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
 * SocketProbe is one check over one connection. Subclasses say what an open connection means (`opened`) and
 * what incoming bytes mean (`received`); they end the check with `pass`/`fail`.
 */
export abstract class SocketProbe {
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

  constructor(
    protected readonly target: ProbeTarget,
    private readonly done: (result: CheckResult) => void,
    private readonly released: () => void,
    private readonly connector: Connector,
  ) {}

  /** Called once the connection (and the TLS handshake, if any) is established. */
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
    const mode = this.connector.mode;
    if (this.target.mark !== undefined) this.connectMarked(this.target.mark);
    else if (mode.stuck.length > 0 && useNode(mode, this.startedAt)) this.connectNode();
    else this.connectBun();
    return this.cancel;
  }

  /** write sends bytes on the open connection. */
  protected write(bytes: Uint8Array): void {
    if (this.bun !== null) this.bun.write(bytes);
    else this.node?.write(bytes);
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
    this.done(result);
  }

  private readonly cancel = (): void => {
    if (this.state === DONE) return;
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
    if (this.bun !== null) this.bun.terminate();
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

  // ---- Bun.connect path --------------------------------------------------------------------------------

  private connectBun(): void {
    try {
      const tls = this.connector.bunTls;
      if (tls === null) {
        void Bun.connect<SocketProbe>({ hostname: this.target.host, port: this.target.port, data: this, socket: BUN_HANDLERS });
      } else {
        void Bun.connect<SocketProbe>({ hostname: this.target.host, port: this.target.port, data: this, socket: BUN_HANDLERS, tls });
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
    if (this.connector.tls === null) {
      this.state = OPEN;
      this.opened();
    }
  }

  /** @internal Bun handler: TLS handshake finished. */
  bunHandshake(socket: Socket<SocketProbe>, success: boolean, error: Error | null): void {
    this.bun = socket;
    if (this.state === DONE) return;
    if (!success || (this.connector.tls?.verify === true && error !== null)) {
      this.state = OPEN;
      this.fail(this.failure(errorCode(error) || "TLS_HANDSHAKE_FAILED"), errorCode(error) || "TLS_HANDSHAKE_FAILED");
      return;
    }
    this.state = OPEN;
    this.opened();
  }

  /** @internal Bun handler: bytes arrived. */
  bunData(chunk: Uint8Array): void {
    if (this.state === OPEN) this.received(chunk);
  }

  /** @internal Bun handler: the connection broke or the peer closed before the check ended. */
  bunError(error: Error | undefined): void {
    if (this.state === DONE) return;
    this.failWith(error ?? Object.assign(new Error("closed"), { code: "ECONNRESET" }));
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
      s =
        t === null
          ? net.connect({ host: this.target.host, port: this.target.port })
          : tls.connect({
              host: this.target.host,
              port: this.target.port,
              rejectUnauthorized: t.verify,
              ...(t.ca === null ? {} : { ca: t.ca }),
              ...(t.serverName === null || net.isIP(t.serverName) !== 0 ? {} : { servername: t.serverName }),
            });
    } catch (err) {
      this.failWith(err);
      this.gone();
      return;
    }
    this.node = s;
    s.on(t === null ? "connect" : "secureConnect", () => {
      if (this.state === DONE) return;
      this.state = OPEN;
      this.opened();
    });
    s.on("data", (chunk: Buffer) => {
      if (this.state === OPEN) this.received(chunk);
    });
    s.on("error", (err: Error) => {
      if (this.state !== DONE) this.failWith(err);
    });
    s.on("close", () => {
      if (this.state !== DONE) this.failWith(Object.assign(new Error("closed"), { code: "ECONNRESET" }));
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

const ERRNO_NAMES = new Map<number, string>(Object.entries(osConstants.errno).map(([name, n]) => [n, name] as const));

/** The errno name of a number ("ECONNREFUSED"), or "" when unknown. */
function errnoName(errno: number | undefined): string {
  return errno === undefined ? "" : (ERRNO_NAMES.get(errno) ?? `errno ${errno}`);
}
