/**
 * The CLI's HTTP client for the daemon's REST API. Client commands reach gorb only through here, so they need
 * neither root nor libnl. Every failure becomes a CliError with the exit code of its class (see ./errors.ts):
 * an unreachable daemon is one line that says so and, for a command that has --direct, suggests it.
 *
 * HTTPS: the daemon's certificate is always verified, against the system's CAs or the PEM file of --ca/GORB_CA
 * (the daemon's own self-signed certificate will do); there is no switch to turn verification off.
 * The token comes from --token, --token-file, GORB_TOKEN or GORB_TOKEN_FILE (in that order); a token file must
 * be private (mode 0600 or stricter), as the daemon's.
 */
import { idProblem } from "../contract/ids.ts";
import type { BackendInfo, ServiceDetail, ServiceInfo } from "../core/views.ts";
import { CA_FILE_LIMIT, FileProblemError, readRegularFile } from "../regular-file.ts";
import { SecretFileError, readPrivateFile } from "../daemon/secrets.ts";
import { ApiError, CliError, EXIT, UsageError, exitCodeForStatus } from "./errors.ts";
import { type RawArgs, stringArg } from "./_shared.ts";
import type { LivenessWatch, WaitOptions } from "./liveness.ts";
import { errorCode } from "../errno.ts";
import { isRecord } from "../record.ts";

export type { BackendInfo, ServiceDetail, ServiceInfo };

/** DEFAULT_SERVER is where the daemon listens by default. */
const DEFAULT_SERVER = "http://127.0.0.1:4672";
/**
 * REQUEST_TIMEOUT_MS bounds each request (the daemon answers from memory; the kernel is fast). A client made with
 * `wait` (long operations such as apply) has no bound on the whole request: it fails only when the daemon's port
 * stops answering (see ./liveness.ts), and REQUEST_TIMEOUT_MS then bounds each liveness probe.
 */
export const REQUEST_TIMEOUT_MS = 15_000;

/** How to reach the daemon. */
export interface ClientOptions {
  /** Base URL without a trailing slash. */
  readonly server: string;
  readonly token: string | null;
  /** PEM certificate(s) trusted for an https:// server besides the system's CAs, or null. */
  readonly ca?: string | null;
  /** Aborts requests (Ctrl-C). */
  readonly signal?: AbortSignal;
  /** Wait for answers as long as the daemon is alive, reporting progress (long operations: apply, diff). */
  readonly wait?: WaitOptions;
  /** Overrides REQUEST_TIMEOUT_MS (tests). */
  readonly timeoutMs?: number;
  /** The command has --direct: the message of an unreachable daemon suggests it. @default false */
  readonly offersDirect?: boolean;
}

/**
 * LostContactError: a long request reached the daemon, which then went away (its port stopped answering, or the
 * connection broke) before it answered. The request may have taken effect in part or in full.
 */
export class LostContactError extends CliError {
  override readonly name = "LostContactError";
  readonly server: string;
  readonly request: string;
  readonly reason: string;
  readonly afterMs: number;

  constructor(server: string, request: string, reason: string, afterMs: number, cause: unknown) {
    super(
      EXIT.UNREACHABLE,
      `lost gorb at ${server} after ${Math.round(afterMs / 1000)}s waiting for the answer to ${request} (${reason}); ` +
        "the request was sent, so it may have taken effect in part or in full",
      { cause },
    );
    this.server = server;
    this.request = request;
    this.reason = reason;
    this.afterMs = afterMs;
  }
}

/** Fetch errors that mean no connection was ever made (as opposed to one that broke). */
const NEVER_CONNECTED = new Set(["ECONNREFUSED", "ConnectionRefused", "ENOTFOUND", "EAI_NONAME", "EHOSTUNREACH", "ENETUNREACH"]);

/** normalizeServer accepts "http://h:p", "https://h:p/prefix" or a bare "h:p" (taken as http). */
function normalizeServer(text: string, source: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new UsageError(`${source}: ${JSON.stringify(text)} is not a URL; use e.g. http://127.0.0.1:4672`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`${source}: must be an http:// or https:// URL, got ${JSON.stringify(text)}`);
  }
  if (url.search !== "" || url.hash !== "") throw new UsageError(`${source}: must not have a query or fragment`);
  // Not echoed: the URL holds a password. Sent, it would be a Basic header beside the bearer token.
  if (url.username !== "" || url.password !== "") {
    throw new UsageError(`${source}: must not hold a user or password (gorb authenticates with --token or --token-file)`);
  }
  return url.href.replace(/\/+$/, "");
}

/** A token given on the command line or in the environment: one word (a header cannot carry a line break). */
function checkToken(source: string, token: string): string {
  if (/[\s\u0000-\u001f\u007f]/.test(token)) throw new UsageError(`${source}: must be one token without whitespace or control characters`);
  return token;
}

/** The token of a token file, as the daemon reads it (private file, one token, read from the descriptor checked). */
function readTokenFile(source: string, file: string): string {
  let token: string;
  try {
    token = readPrivateFile(source, file).trim();
  } catch (error) {
    // Private but not ours to read (a root-owned 0600 token and a user's CLI): a usage error naming it, not a crash.
    if (error instanceof SecretFileError) throw new UsageError(`${source}: ${file}: ${error.problem}`);
    throw error;
  }
  if (token === "" || /[\s\u0000-\u001f\u007f]/.test(token)) {
    throw new UsageError(`${source}: ${file}: must hold one token without whitespace or control characters`);
  }
  return token;
}

function readCa(source: string, file: string): string {
  let text: string;
  try {
    text = readRegularFile(file, CA_FILE_LIMIT);
  } catch (error) {
    if (error instanceof FileProblemError) throw new UsageError(`${source}: ${file}: ${error.problem}`);
    throw error;
  }
  if (!text.includes("-----BEGIN CERTIFICATE-----")) throw new UsageError(`${source}: ${file}: not a PEM certificate file`);
  return text;
}

function envValue(env: Readonly<Record<string, string | undefined>>, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === "" ? undefined : value;
}

/**
 * clientOptionsFrom reads --server, --token/--token-file and --ca, falling back to GORB_SERVER,
 * GORB_TOKEN/GORB_TOKEN_FILE and GORB_CA, then the defaults.
 */
export function clientOptionsFrom(
  args: RawArgs,
  env: Readonly<Record<string, string | undefined>>,
  signal?: AbortSignal,
): ClientOptions {
  const flagServer = stringArg(args, "server");
  const envServer = env.GORB_SERVER === "" ? undefined : env.GORB_SERVER;
  const server =
    flagServer !== undefined
      ? normalizeServer(flagServer, "--server")
      : envServer !== undefined
        ? normalizeServer(envServer, "GORB_SERVER")
        : DEFAULT_SERVER;
  const flagToken = stringArg(args, "token");
  const flagTokenFile = stringArg(args, "token-file");
  if (flagToken !== undefined && flagTokenFile !== undefined) throw new UsageError("give either --token or --token-file, not both");
  const envTokenFile = envValue(env, "GORB_TOKEN_FILE");
  const envToken = envValue(env, "GORB_TOKEN");
  const token =
    (flagToken !== undefined ? checkToken("--token", flagToken) : undefined) ??
    (flagTokenFile !== undefined ? readTokenFile("--token-file", flagTokenFile) : undefined) ??
    (envToken !== undefined ? checkToken("GORB_TOKEN", envToken) : undefined) ??
    (envTokenFile !== undefined ? readTokenFile("GORB_TOKEN_FILE", envTokenFile) : undefined) ??
    null;
  const flagCa = stringArg(args, "ca");
  const envCa = envValue(env, "GORB_CA");
  const ca = flagCa !== undefined ? readCa("--ca", flagCa) : envCa !== undefined ? readCa("GORB_CA", envCa) : null;
  return signal === undefined ? { server, token, ca } : { server, token, ca, signal };
}

/** A short reason for a fetch that never got an answer ("connection refused"). */
export function unreachableReason(error: unknown, timeoutMs: number = REQUEST_TIMEOUT_MS): string {
  const err = error as { name?: unknown; message?: unknown } | null;
  const code = errorCode(error);
  const name = typeof err?.name === "string" ? err.name : "";
  if (name === "TimeoutError") return `no answer within ${timeoutMs / 1000}s`;
  switch (code) {
    case "ECONNREFUSED":
    case "ConnectionRefused":
      return "connection refused";
    case "ENOTFOUND":
    case "EAI_NONAME":
      return "host not found";
    case "ECONNRESET":
    case "ConnectionClosed":
      return "connection closed";
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "no route to host";
    case "ETIMEDOUT":
      return "timed out";
    case "CERT_HAS_EXPIRED":
    case "DEPTH_ZERO_SELF_SIGNED_CERT":
    case "SELF_SIGNED_CERT_IN_CHAIN":
    case "UNABLE_TO_GET_ISSUER_CERT_LOCALLY":
    case "UNABLE_TO_VERIFY_LEAF_SIGNATURE":
    case "ERR_TLS_CERT_ALTNAME_INVALID":
      return `TLS: ${code}; the daemon's certificate is not trusted: pass its CA with --ca or GORB_CA`;
  }
  const message = typeof err?.message === "string" ? err.message : String(error);
  return code !== "" && !message.includes(code) ? `${code}: ${message}` : message;
}

/**
 * unreachableMessage is the one line shown when the daemon cannot be reached; it suggests --direct only to a
 * command that has it (`offersDirect`).
 */
export function unreachableMessage(server: string, reason: string, offersDirect: boolean): string {
  const message = `cannot reach gorb at ${server} (${reason}); is \`gorb serve\` running?`;
  return offersDirect ? `${message} Use --direct to read/change the kernel table without a daemon.` : message;
}

/** The message of an error answer: its `error` field, else the HTTP status. */
export function errorText(body: unknown, status: number, statusText: string): string {
  if (typeof body === "object" && body !== null && typeof (body as { error?: unknown }).error === "string") {
    return (body as { error: string }).error;
  }
  return statusText !== "" ? `HTTP ${status} ${statusText}` : `HTTP ${status}`;
}

/** The data of an error answer: its `code`, `field` and `path` when present and well-formed. */
function errorAbout(body: unknown): { code: string | null; field: string | null; path: readonly (string | number)[] | null } {
  const b = typeof body === "object" && body !== null ? (body as { code?: unknown; field?: unknown; path?: unknown }) : {};
  const path = Array.isArray(b.path) && b.path.every((p) => typeof p === "string" || Number.isInteger(p)) ? (b.path as (string | number)[]) : null;
  return { code: typeof b.code === "string" ? b.code : null, field: typeof b.field === "string" ? b.field : null, path };
}

/**
 * Throws for a redirect (exit 7): gorb never sends one, so a 3xx is from something else at `server`, and following it
 * would send the request (a PUT or DELETE and its body, on a 307) wherever it points. `request` names it in the message.
 */
export function refuseRedirect(request: string, server: string, response: Response): void {
  if (response.status < 300 || response.status >= 400) return;
  const to = response.headers.get("location");
  throw new CliError(
    EXIT.SERVER,
    `${request}: answered ${response.status}, a redirect${to === null ? "" : ` to ${to}`}, which gorb never sends (is ${server} a gorb daemon? give its own URL); not followed`,
  );
}

/** The keys requestObject checks in an answer of type `T`: "list" for an array-valued key, "object" for an object. */
export type AnswerShape<T> = {
  readonly [K in keyof T]?: NonNullable<T[K]> extends readonly unknown[] ? "list" : NonNullable<T[K]> extends object ? "object" : never;
};

/** GorbClient speaks the REST API. Paths are built from ids with encodeURIComponent. */
export class GorbClient {
  readonly options: ClientOptions;

  constructor(options: ClientOptions) {
    this.options = options;
  }

  /** Send one request; resolves with the parsed JSON body (null when empty). */
  async request(method: string, path: string, body?: unknown): Promise<unknown> {
    const { response, body: text, url } = await this.#send(method, path, "application/json", body, (r) => r.text());
    let parsed: unknown = null;
    if (text.trim() !== "") {
      try {
        parsed = JSON.parse(text) as unknown;
      } catch {
        if (response.ok) {
          throw new CliError(EXIT.SERVER, `${method} ${url}: the answer is not JSON (is ${this.options.server} a gorb daemon?)`);
        }
      }
    }
    if (!response.ok) throw this.#failure(response, parsed);
    return parsed;
  }

  /**
   * Send one request whose answer is a JSON object with `shape`'s keys holding an object or a list each, as every
   * such answer of gorb's does; anything else (another server's JSON, an empty body) is exit 7 naming the request and
   * what it should have been, not a crash of the command that reads it. The answer is typed as `T`, the daemon's
   * view type: `shape` names only keys of `T`, each with its kind ("list" for an array, "object" for an object).
   */
  async requestObject<T extends object>(method: string, path: string, what: string, shape: AnswerShape<T>, body?: unknown): Promise<T> {
    const answer = await this.request(method, path, body);
    const fits = isRecord(answer) && Object.entries(shape).every(([key, kind]) => (kind === "list" ? Array.isArray(answer[key]) : isRecord(answer[key])));
    if (!fits) throw new CliError(EXIT.SERVER, `${method} ${path}: expected ${what} (is ${this.options.server} a gorb daemon?)`);
    return answer as T;
  }

  /**
   * GET a text/plain answer as its UTF-8 bytes, to be written out as they came (a table of 10,000s of lines is
   * neither decoded into a string nor encoded again); null when the daemon answers something else (a daemon older
   * than the text form).
   */
  async getTextBytes(path: string): Promise<Uint8Array | null> {
    const { response, body } = await this.#send("GET", path, "text/plain", undefined, (r) => r.bytes());
    if (response.ok) return response.headers.get("content-type")?.startsWith("text/plain") === true ? body : null;
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(new TextDecoder().decode(body)) as unknown;
    } catch {
      // not an error body: the status line says it
    }
    throw this.#failure(response, parsed);
  }

  #failure(response: Response, parsed: unknown): ApiError {
    const message = errorText(parsed, response.status, response.statusText);
    const hint = response.status === 401 ? " (pass --token or set GORB_TOKEN)" : "";
    return new ApiError(response.status, `${message}${hint}`, errorAbout(parsed));
  }

  /** Send one request and read its body with `read` (both within the request's timeout and error mapping). */
  async #send<T>(
    method: string,
    path: string,
    accept: string,
    body: unknown,
    read: (response: Response) => Promise<T>,
  ): Promise<{ response: Response; body: T; url: string }> {
    const headers: Record<string, string> = { accept };
    if (this.options.token !== null) headers.authorization = `Bearer ${this.options.token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const timeoutMs = this.options.timeoutMs ?? REQUEST_TIMEOUT_MS;
    const wait = this.options.wait;
    // With `wait`, a failed liveness probe ends the request (the watch starts once the request is on its way).
    const lost = wait === undefined ? null : new AbortController();
    const limit = lost === null ? AbortSignal.timeout(timeoutMs) : lost.signal;
    const signal = this.options.signal === undefined ? limit : AbortSignal.any([limit, this.options.signal]);
    const url = `${this.options.server}${path}`;
    let watch: LivenessWatch | null = null;
    try {
      const pending = fetch(url, {
        method,
        headers,
        signal,
        // Not followed: see refuseRedirect.
        redirect: "manual",
        ...(this.options.ca != null ? { tls: { ca: this.options.ca, rejectUnauthorized: true } } : {}),
        // Bun's fetch drops a connection idle for 5 minutes; with `wait`, the liveness probe decides instead.
        ...(wait === undefined ? {} : { timeout: false }),
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      // Awaited below; a failure before then (while the watch loads) must not count as unhandled meanwhile.
      pending.catch(() => {});
      if (wait !== undefined && lost !== null) {
        // Loaded only for `wait` (it needs node:net, which a plain request does not), while the request is sent.
        const started = new (await import("./liveness.ts")).LivenessWatch(this.options.server, wait, timeoutMs);
        watch = started;
        started.signal.addEventListener("abort", () => lost.abort(started.signal.reason), { once: true });
      }
      const response = await pending;
      refuseRedirect(`${method} ${url}`, this.options.server, response);
      return { response, body: await read(response), url };
    } catch (error) {
      if (error instanceof CliError) throw error; // the redirect refused above
      if (this.options.signal?.aborted === true) throw new CliError(EXIT.INTERRUPTED, "interrupted");
      if (watch !== null) throw this.#waitFailure(watch, `${method} ${path}`, error);
      const message = unreachableMessage(this.options.server, unreachableReason(error, timeoutMs), this.options.offersDirect === true);
      throw new CliError(EXIT.UNREACHABLE, message, {
        cause: error,
      });
    } finally {
      watch?.stop();
    }
  }

  /** Why a request made with `wait` failed: never reached (as without `wait`), or lost after reaching it. */
  #waitFailure(watch: LivenessWatch, request: string, error: unknown): CliError {
    const failure = watch.failure;
    const neverConnected = failure !== null ? !failure.reachedBefore : NEVER_CONNECTED.has(errorCode(error));
    const reason = failure?.reason ?? unreachableReason(error);
    if (neverConnected) {
      return new CliError(EXIT.UNREACHABLE, unreachableMessage(this.options.server, reason, this.options.offersDirect === true), { cause: error });
    }
    return new LostContactError(this.options.server, request, reason, watch.elapsedMs(), error);
  }

  /** GET /service: the service ids. */
  async listServiceIds(): Promise<string[]> {
    const body = await this.request("GET", "/service");
    if (!Array.isArray(body) || !body.every((id) => typeof id === "string")) {
      throw new CliError(EXIT.SERVER, "GET /service: expected a list of service ids");
    }
    return body;
  }

  /** GET /service?detail=true: every service with its backends, health and counters. */
  async listServices(): Promise<ServiceDetail[]> {
    const body = await this.request("GET", "/service?detail=true");
    if (!Array.isArray(body)) throw new CliError(EXIT.SERVER, "GET /service?detail=true: expected a list of services");
    return body as ServiceDetail[];
  }

  /** GET /service/:service. */
  async getService(id: string): Promise<ServiceInfo> {
    return await this.requestObject<ServiceInfo>("GET", servicePath(id), "a service", { options: "object", backends: "list" });
  }

  /** GET /service/:service/:backend. */
  async getBackend(service: string, backend: string): Promise<BackendInfo> {
    return await this.requestObject<BackendInfo>("GET", backendPath(service, backend), "a backend", { options: "object", metrics: "object" });
  }

  /**
   * GET of each of `service`'s backends `ids` (the list its GET gave), in order. One deleted between that list and
   * its own GET (a drain that ended, an apply, another client) is gone, so it is left out rather than failing the
   * whole read; the service itself gone meanwhile is its 404, as when it was read.
   */
  async getBackends(service: string, ids: readonly string[]): Promise<(BackendInfo & { readonly id: string })[]> {
    const read = await Promise.all(
      ids.map(async (id) => {
        try {
          return { ...(await this.getBackend(service, id)), id };
        } catch (error) {
          if (error instanceof ApiError && error.status === 404) return null;
          throw error;
        }
      }),
    );
    if (read.includes(null)) await this.getService(service);
    return read.filter((b) => b !== null);
  }
}

/**
 * An id as a URL path segment, checked first: "." and ".." survive encodeURIComponent and a URL's normalisation
 * would drop them ("/service/web/." is "/service/web/"), so `backend rm web .` would delete the service.
 */
function segment(field: "service" | "backend", id: string): string {
  const problem = idProblem(id);
  if (problem !== null) throw new UsageError(`${field}: ${problem}`);
  return encodeURIComponent(id);
}

/** The URL path of a service. */
export function servicePath(id: string): string {
  return `/service/${segment("service", id)}`;
}

/** The URL path of a backend. */
export function backendPath(service: string, backend: string): string {
  return `${servicePath(service)}/${segment("backend", backend)}`;
}
