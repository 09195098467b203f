/**
 * Following the daemon's GET /events (Server-Sent Events) with fetch, for `gorb status --watch`.
 *
 * The stream is parsed as the HTML standard's EventSource does (lines ending in LF, CRLF or CR; `:` comments;
 * `event`, `data`, `id` and `retry` fields; an event is dispatched at a blank line), with what EventSource
 * cannot do: it sends the bearer token, tells a refused request (401, 404: fatal, thrown) from a lost
 * connection (retried), and gives up on a connection that stays silent for longer than three heartbeats (a
 * daemon that vanished without closing the socket). After a lost connection it reconnects with the id of the
 * last event it saw in `Last-Event-ID`, waiting 1 s, then twice as long after each failed attempt (at most
 * 10 s, or the server's `retry:`).
 */
import { CliError, EXIT, exitCodeForStatus } from "./errors.ts";
import { REQUEST_TIMEOUT_MS, errorText, refuseRedirect, unreachableMessage, unreachableReason } from "./client.ts";

/** One event of the stream. */
export interface StreamEvent {
  /** Its id ("42@3f9c2a1b" from gorb), "" when the stream gave none yet. */
  readonly id: string;
  /** Its `event:` field; "message" when it had none. */
  readonly type: string;
  /** The `data:` lines parsed as JSON, or the text itself when it is not JSON. */
  readonly data: unknown;
}

/** Where and how to follow. */
export interface EventStreamOptions {
  /** The daemon's base URL, without a trailing slash. */
  readonly server: string;
  readonly token: string | null;
  /** The command has --direct: the message of an unreachable daemon suggests it. @default false */
  readonly offersDirect?: boolean;
  /** Stops following (followEvents then resolves). */
  readonly signal: AbortSignal;
  /** First wait before a reconnect, in ms; doubles after each failed attempt. @default 1000 */
  readonly retryMs?: number;
  /** Longest wait before a reconnect, in ms; a server's `retry:` above it is taken as this. @default 10000 */
  readonly maxRetryMs?: number;
  /** Shortest wait before a reconnect, in ms; a server's `retry:` below it (0) is taken as this. @default 100 */
  readonly minRetryMs?: number;
  /** How the wait before a reconnect is waited (ms, then a signal that ends it early). @default a timer */
  readonly pause?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** A connection that delivers nothing (not even a keepalive) for this long is dropped and reopened. @default 45000 */
  readonly idleMs?: number;
}

/** What followEvents calls. */
export interface EventStreamHandlers {
  /** The stream is (re)connected: anything before this moment may have been missed. */
  onOpen(): void;
  onEvent(event: StreamEvent): void;
  /** A connection failed or was lost; followEvents retries. */
  onError(error: CliError): void;
}

/** The incremental text/event-stream parser. */
class EventStreamParser {
  #buffer = "";
  /** The last chunk ended with CR: a LF starting the next one belongs to the same line end. */
  #afterCr = false;
  #started = false;
  #type = "";
  #data: string[] = [];
  /** The `id:` of the event being received (EventSource's "last event ID buffer"); it counts once dispatched. */
  #id = "";
  /**
   * The id of the last event dispatched (EventSource's "last event ID string"): sent back when reconnecting. An
   * id whose event was cut off with the connection is not: the daemon would resume after an event never seen.
   */
  lastId = "";
  /** A `retry:` the server asked for, in ms. */
  retryMs: number | null = null;

  /** Forget a half-received event and line (a new connection starts clean; the last id and retry stay). */
  reset(): void {
    this.#buffer = "";
    this.#afterCr = false;
    this.#started = false;
    this.#type = "";
    this.#data = [];
    this.#id = this.lastId;
  }

  /** Feed decoded text; returns the events it completed. */
  push(text: string): StreamEvent[] {
    let chunk = text;
    if (!this.#started && chunk !== "") {
      this.#started = true;
      if (chunk.startsWith("\uFEFF")) chunk = chunk.slice(1);
    }
    if (this.#afterCr && chunk.startsWith("\n")) chunk = chunk.slice(1);
    this.#afterCr = chunk.endsWith("\r");
    this.#buffer += chunk;
    const events: StreamEvent[] = [];
    const lines = this.#buffer.split(/\r\n|\r|\n/);
    this.#buffer = lines.pop() ?? "";
    for (const line of lines) {
      const event = this.#line(line);
      if (event !== null) events.push(event);
    }
    return events;
  }

  #line(line: string): StreamEvent | null {
    if (line === "") return this.#dispatch();
    if (line.startsWith(":")) return null;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "event":
        this.#type = value;
        break;
      case "data":
        this.#data.push(value);
        break;
      case "id":
        if (!value.includes("\u0000")) this.#id = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
    }
    return null;
  }

  #dispatch(): StreamEvent | null {
    this.lastId = this.#id;
    const type = this.#type === "" ? "message" : this.#type;
    const lines = this.#data;
    this.#type = "";
    this.#data = [];
    if (lines.length === 0) return null;
    const text = lines.join("\n");
    let data: unknown = text;
    try {
      data = JSON.parse(text) as unknown;
    } catch {
      // Not JSON: the text itself.
    }
    return { id: this.lastId, type, data };
  }
}

/** Wait `ms`, or less when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * Follow GET /events until `options.signal` aborts (then resolves). Throws a CliError when the daemon refuses
 * the request (a 4xx: bad token, no /events route): retrying would not help.
 */
export async function followEvents(options: EventStreamOptions, handlers: EventStreamHandlers): Promise<void> {
  const firstRetry = options.retryMs ?? 1000;
  const maxRetry = options.maxRetryMs ?? 10_000;
  const minRetry = Math.min(options.minRetryMs ?? 100, maxRetry);
  const wait = options.pause ?? pause;
  const idleMs = options.idleMs ?? 45_000;
  const parser = new EventStreamParser();
  let retry = firstRetry;
  while (!options.signal.aborted) {
    const opened = await connect(options, handlers, parser, idleMs);
    if (options.signal.aborted) break;
    retry = opened ? firstRetry : Math.min(retry * 2, maxRetry);
    // A server's retry: is taken within the client's bounds: 0 would reconnect in a tight loop, and a timer of
    // more than 2^31 - 1 ms fires at once.
    await wait(Math.min(Math.max(parser.retryMs ?? retry, minRetry), maxRetry), options.signal);
  }
}

/** One connection: resolves when it ends (true when it had opened); throws on a refusal. */
async function connect(
  options: EventStreamOptions,
  handlers: EventStreamHandlers,
  parser: EventStreamParser,
  idleMs: number,
): Promise<boolean> {
  const url = `${options.server}/events`;
  parser.reset();
  const headers: Record<string, string> = { accept: "text/event-stream", "cache-control": "no-cache" };
  if (options.token !== null) headers.authorization = `Bearer ${options.token}`;
  if (parser.lastId !== "") headers["last-event-id"] = parser.lastId;
  const connection = new AbortController();
  const signal = AbortSignal.any([options.signal, connection.signal]);
  // Until the answer's headers: the client's usual timeout; then: the idle limit between two reads.
  let why = `no answer within ${REQUEST_TIMEOUT_MS / 1000}s`;
  let timer = setTimeout(() => connection.abort(), REQUEST_TIMEOUT_MS);
  const rearm = (ms: number, reason: string) => {
    clearTimeout(timer);
    why = reason;
    timer = setTimeout(() => connection.abort(), ms);
  };
  let opened = false;
  try {
    let response: Response;
    try {
      // Not followed: gorb never redirects, so a 3xx is from something else at that URL (see GorbClient).
      response = await fetch(url, { headers, signal, redirect: "manual" });
    } catch (error) {
      if (options.signal.aborted) return false;
      const reason = connection.signal.aborted ? why : unreachableReason(error);
      handlers.onError(new CliError(EXIT.UNREACHABLE, unreachableMessage(options.server, reason, options.offersDirect === true), { cause: error }));
      return false;
    }
    refuseRedirect("GET /events", options.server, response);
    if (!response.ok) {
      const text = await response.text().catch(() => "");
      let body: unknown = null;
      try {
        body = JSON.parse(text) as unknown;
      } catch {
        // Not JSON: the status says it.
      }
      const message = `GET /events: ${errorText(body, response.status, response.statusText)}`;
      const error = new CliError(exitCodeForStatus(response.status), response.status === 401 ? `${message} (pass --token or set GORB_TOKEN)` : message);
      if (response.status >= 400 && response.status < 500) throw error;
      handlers.onError(error);
      return false;
    }
    const type = response.headers.get("content-type") ?? "";
    if (!type.startsWith("text/event-stream") || response.body === null) {
      await response.body?.cancel();
      throw new CliError(EXIT.SERVER, `GET /events: the answer is not an event stream (is ${options.server} a gorb daemon?)`);
    }
    opened = true;
    handlers.onOpen();
    const idle = `nothing received for ${idleMs / 1000}s`;
    rearm(idleMs, idle);
    const decoder = new TextDecoder();
    const reader = response.body.getReader();
    try {
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) break;
        rearm(idleMs, idle);
        for (const event of parser.push(decoder.decode(chunk.value, { stream: true }))) handlers.onEvent(event);
      }
      why = "the daemon closed the stream";
    } catch (error) {
      if (options.signal.aborted) return opened;
      if (!connection.signal.aborted) why = unreachableReason(error);
    } finally {
      reader.releaseLock();
    }
    handlers.onError(new CliError(EXIT.UNREACHABLE, `lost the event stream of ${options.server} (${why}); reconnecting`));
    return opened;
  } finally {
    clearTimeout(timer);
    connection.abort();
  }
}
