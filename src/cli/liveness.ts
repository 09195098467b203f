/**
 * Waiting for a long operation (`gorb apply` of thousands of objects) without mistaking a busy daemon for a dead
 * one. Instead of a time limit on the whole request, the daemon's port is probed with a plain TCP connect every
 * few seconds while the answer is pending: the kernel completes the handshake even while the daemon's event loop
 * is busy, so a probe fails only when nothing listens there any more (refused) or the host stopped answering
 * (no handshake within the probe timeout). Each successful probe after the first interval is reported to
 * `onWaiting`, which the CLI turns into a progress line.
 */
import { connect } from "node:net";
import { errorCode } from "../errno.ts";

/** How a client waits for a long operation. */
export interface WaitOptions {
  /** Called after each successful probe once the request has been pending for at least one interval. */
  readonly onWaiting?: (elapsedMs: number) => void;
  /** Milliseconds between two probes; default {@link PROBE_INTERVAL_MS}. */
  readonly intervalMs?: number;
}

/** Default time between two liveness probes. */
const PROBE_INTERVAL_MS = 5_000;

/** A failed probe: why, and whether an earlier probe had reached the daemon. */
export interface ProbeFailure {
  readonly reason: string;
  readonly reachedBefore: boolean;
}

/** host and port of an http(s) base URL, as a TCP connect needs them. */
export function endpointOf(server: string): { host: string; port: number } {
  const url = new URL(server);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = url.port !== "" ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
  return { host, port };
}

/** One TCP connect to host:port; resolves null when it connected, else a short reason. Never rejects. */
export function probe(host: string, port: number, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (result: string | null): void => {
      clearTimeout(timer);
      socket.removeAllListeners();
      socket.on("error", () => {}); // a late error after destroy must not become an uncaught exception
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done(`no TCP handshake within ${Math.round(timeoutMs / 1000)}s`), timeoutMs);
    socket.once("connect", () => done(null));
    socket.once("error", (error: Error) => {
      const code = errorCode(error);
      done(code === "ECONNREFUSED" ? "connection refused" : code !== "" ? code : error.message);
    });
  });
}

/**
 * Probes `server` from construction until stop(); aborts `signal` at the first failed probe (see `failure`).
 */
export class LivenessWatch {
  readonly #controller = new AbortController();
  readonly #started = performance.now();
  #stopped = false;
  #reached = false;
  #failure: ProbeFailure | null = null;
  #wake: (() => void) | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(server: string, options: WaitOptions, probeTimeoutMs: number) {
    const { host, port } = endpointOf(server);
    void this.#run(host, port, options, probeTimeoutMs);
  }

  /** Aborted when a probe fails. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** The failed probe that aborted `signal`, or null. */
  get failure(): ProbeFailure | null {
    return this.#failure;
  }

  /** True once a probe has connected. */
  get reached(): boolean {
    return this.#reached;
  }

  /** Milliseconds since the watch started. */
  elapsedMs(): number {
    return performance.now() - this.#started;
  }

  /** Ends probing (the answer came, or the request failed). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#wake?.();
  }

  async #run(host: string, port: number, options: WaitOptions, probeTimeoutMs: number): Promise<void> {
    const interval = options.intervalMs ?? PROBE_INTERVAL_MS;
    while (!this.#stopped) {
      const reason = await probe(host, port, probeTimeoutMs);
      if (this.#stopped) return;
      if (reason !== null) {
        this.#failure = { reason, reachedBefore: this.#reached };
        this.#controller.abort(new Error(reason));
        return;
      }
      this.#reached = true;
      const elapsed = this.elapsedMs();
      if (elapsed >= interval) options.onWaiting?.(elapsed);
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        this.#timer = setTimeout(resolve, interval);
      });
    }
  }
}
