/**
 * Serving the REST API: bind the listen address (HTTP, or HTTPS with --tls-cert/--tls-key), and stop with a
 * deadline.
 *
 * Connections: Bun.serve has no cap on accepted connections and no hook per connection, so gorb bounds them in
 * three ways: `idleTimeout` closes a keep-alive connection idle for IDLE_TIMEOUT_S seconds (Bun closes one that
 * never sent a request after about 10 s whatever the setting); the guard (src/api/guard.ts) answers a request
 * that arrives while --max-connections are in flight with 503 and "Connection: close"; and ./connection-shedder.ts
 * shuts down, every second, the API connections beyond the cap (peers outside --allow first, loopback last, the
 * newest first), silent ones included, so they cannot use up the file descriptors the health checks need.
 * `reusePort` is off: a second gorb on the same port must fail to bind, not share it.
 *
 * Stop: stop accepting, let requests in flight finish for up to the deadline, then close every connection
 * (a client holding a request open can no longer delay a restart).
 */
import { shutdownSocket } from "../../ffi/libc.ts";
import { IDLE_TIMEOUT_S, type createApp } from "../api/app.ts";
import type { Logger } from "../log.ts";
import { ConnectionShedder } from "./connection-shedder.ts";
import { readPrivateFile, readPublicFile } from "./secrets.ts";
import { type ListenAddress, formatListen } from "../config/daemon-options.ts";
import type { Cidr } from "../config/cidr.ts";
import { errorMessage } from "../core/errors.ts";
import { errorCode } from "../errno.ts";

/** Default time requests in flight get to finish at shutdown. */
export const STOP_DEADLINE_MS = 5000;

/** A running API server. */
export interface ApiServer {
  /** The bound port (the kernel's choice for port 0). */
  readonly port: number;
  /** "http" or "https". */
  readonly protocol: "http" | "https";
  /** The listen address with the bound port, for the log (":4672", "127.0.0.1:4672"). */
  readonly shown: string;
  /**
   * Stop accepting and wait for requests in flight, at most `deadlineMs`; then close the remaining connections.
   * Resolves "drained" when every request finished in time, "forced" when connections had to be closed.
   */
  stop(deadlineMs?: number): Promise<"drained" | "forced">;
}

/** What startApiServer needs. */
export interface ApiServerOptions {
  readonly listen: ListenAddress;
  readonly tls: { readonly certFile: string; readonly keyFile: string } | null;
  /** @default IDLE_TIMEOUT_S */
  readonly idleTimeoutS?: number;
  /** Cap on open API connections, enforced by a ConnectionShedder; unset: none. */
  readonly maxConnections?: number;
  /** shutdown(2) of an fd. @default ffi/libc.ts shutdownSocket */
  readonly shutdown?: (fd: number) => number;
  /** Milliseconds between two shedder rounds. @default 1000 */
  readonly shedIntervalMs?: number;
  /** Open fds known not to be API connections (health-check sockets in flight), for the shedder. */
  readonly otherFds?: () => number;
  /** --allow: the shedder closes connections of peers outside it first (loopback last). */
  readonly allow?: readonly Cidr[];
  readonly logger?: Logger;
}

/** The API's address could not be bound: `address` as -l shows it, `code` the errno name ("EADDRINUSE"). */
class ListenError extends Error {
  override readonly name = "ListenError";
  readonly address: string;
  readonly code: string;

  constructor(address: string, code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.address = address;
    this.code = code;
  }
}

/** What to say, and what to do, for the errnos a bind fails with. */
const LISTEN_PROBLEMS: Readonly<Record<string, string>> = {
  EADDRINUSE: "the address is already in use (EADDRINUSE): another gorb or another program listens there; stop it, or choose another address with -l",
  EADDRNOTAVAIL: "no interface of this host has that address (EADDRNOTAVAIL); choose another address with -l",
  EACCES: "permission denied (EACCES): a port below 1024 needs root or CAP_NET_BIND_SERVICE",
};

/**
 * The ListenError for Bun.serve's failure to bind `listen` ("Failed to start server. Is port 4672 in use?"), or
 * `error` itself when it is not a system error (a certificate OpenSSL cannot read).
 */
function listenError(listen: ListenAddress, error: unknown): unknown {
  const code = errorCode(error);
  if (!/^E[A-Z]+$/.test(code)) return error;
  const address = formatListen(listen);
  const problem = LISTEN_PROBLEMS[code] ?? `${errorMessage(error)} (${code})`;
  return new ListenError(address, code, `cannot listen on ${address}: ${problem}`, { cause: error });
}

/**
 * Bind and serve `app`. Throws ListenError when the address cannot be bound, an error when the certificate cannot
 * be loaded, and SecretFileError when the TLS key is no longer private (it is read from the descriptor checked, not
 * by name), or the certificate or the key is not a regular file of at most 1 MiB.
 */
export function startApiServer(app: ReturnType<typeof createApp>, options: ApiServerOptions): ApiServer {
  // The certificate is read as the key is, a regular file of at most 1 MiB: Bun.file() of a FIFO blocked the start
  // for ever, and of /dev/zero read until memory ran out.
  const tls =
    options.tls !== null ? { cert: readPublicFile("tls-cert", options.tls.certFile), key: readPrivateFile("tls-key", options.tls.keyFile) } : null;
  try {
    app.listen({
      port: options.listen.port,
      ...(options.listen.host !== null ? { hostname: options.listen.host } : {}),
      ...(tls !== null ? { tls } : {}),
      idleTimeout: options.idleTimeoutS ?? IDLE_TIMEOUT_S,
      reusePort: false,
      // An error that escaped every handler would otherwise get Bun's development page: stack, source lines, paths.
      development: false,
    });
  } catch (error) {
    throw listenError(options.listen, error);
  }
  const server = app.server;
  if (server === null) throw new Error("the API server did not start");
  const port = server.port ?? options.listen.port;
  let shedder: ConnectionShedder | null = null;
  if (options.maxConnections !== undefined) {
    shedder = new ConnectionShedder({
      port,
      maxConnections: options.maxConnections,
      shutdown: options.shutdown ?? shutdownSocket,
      ...(options.shedIntervalMs !== undefined ? { intervalMs: options.shedIntervalMs } : {}),
      ...(options.otherFds !== undefined ? { otherFds: options.otherFds } : {}),
      ...(options.allow !== undefined ? { allow: options.allow } : {}),
      ...(options.logger !== undefined ? { logger: options.logger } : {}),
    });
  }
  let stopped: Promise<"drained" | "forced"> | null = null;
  return {
    port,
    protocol: options.tls !== null ? "https" : "http",
    shown: formatListen({ host: options.listen.host, port }),
    stop(deadlineMs = STOP_DEADLINE_MS) {
      stopped ??= (async () => {
        shedder?.stop();
        let timer: ReturnType<typeof setTimeout> | undefined;
        const deadline = new Promise<"forced">((resolve) => {
          timer = setTimeout(() => resolve("forced"), deadlineMs);
        });
        const outcome = await Promise.race([server.stop(false).then(() => "drained" as const), deadline]);
        clearTimeout(timer);
        if (outcome === "forced") await server.stop(true);
        return outcome;
      })();
      return stopped;
    },
  };
}
