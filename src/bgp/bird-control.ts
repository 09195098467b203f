/**
 * A client of BIRD 2's control socket (the unix socket `birdc` uses), spoken directly: no birdc dependency.
 *
 * The protocol (BIRD's doc/reply_codes): on connect the server greets with `0001 BIRD <version> ready.`. The
 * client sends one command per line. Each reply line is `CODE-text` (more lines follow) or `CODE text` (the
 * last line of the reply); a line that starts with a space continues the previous code; lines starting with
 * `+` are asynchronous messages and belong to no reply. Codes 0xxx are completions (0000 OK, 0003
 * Reconfigured, 0004/0005 reconfiguration in progress/queued, 0020 Configuration OK), 1xxx and 2xxx are
 * table rows and headers, 8xxx run-time errors (8002: configuration file error), 9xxx parse errors.
 *
 * Replies are returned as data; a reply whose final code is 8xxx or 9xxx is thrown as BirdReplyError with the
 * command, the code and BIRD's text. Commands on one connection are serialised. A reply line longer than
 * 64 KiB, or one that is not BIRD's, ends the connection as a protocol error.
 */
import { createConnection, type Socket } from "node:net";

/** One line of a reply: its code and its text (without the code and separator). */
export interface BirdLine {
  readonly code: number;
  readonly text: string;
}

/** A complete reply: every line, and the code of the final one. */
export interface BirdReply {
  readonly code: number;
  readonly lines: readonly BirdLine[];
}

/** BIRD answered a command with an error code (8xxx run-time error, 9xxx parse error). */
export class BirdReplyError extends Error {
  override readonly name = "BirdReplyError";
  readonly command: string;
  readonly code: number;
  readonly text: string;

  constructor(command: string, code: number, text: string) {
    super(`BIRD ${String(code).padStart(4, "0")} ${text} (command: ${command})`);
    this.command = command;
    this.code = code;
    this.text = text;
  }
}

/** The control socket could not be used: connect failed, it closed, or BIRD did not answer in time. */
export class BirdSocketError extends Error {
  override readonly name = "BirdSocketError";
  readonly path: string;
  readonly reason: "connect" | "closed" | "timeout" | "protocol";

  constructor(path: string, reason: BirdSocketError["reason"], detail: string, options?: { cause?: unknown }) {
    super(`BIRD control socket ${path}: ${detail}`, options);
    this.path = path;
    this.reason = reason;
  }
}

/** Well-known reply codes. */
export const BIRD_CODES = {
  ok: 0,
  welcome: 1,
  readingConfiguration: 2,
  reconfigured: 3,
  reconfigurationInProgress: 4,
  reconfigurationQueued: 5,
  configurationOk: 20,
  routeList: 1007,
  networkNotFound: 8001,
  configurationError: 8002,
  accessDenied: 8007,
  parseError: 9001,
} as const;

/** True for the codes that end a reply with an error. */
function isErrorCode(code: number): boolean {
  return code >= 8000;
}

/** The longest reply line taken (BIRD's are at most a few hundred characters). */
const MAX_LINE_CHARS = 64 * 1024;

/**
 * Splits reply bytes into replies. Feed it chunks as they arrive; it returns the replies completed by this
 * chunk (each ends with a `CODE text` line) and keeps a partial one for the next chunk. The bytes are decoded as
 * one UTF-8 stream: a character cut between two reads is decoded whole once its last byte comes.
 */
class ReplyParser {
  readonly #decoder = new TextDecoder("utf-8");
  #buffer = "";
  #lines: BirdLine[] = [];
  #lastCode = -1;

  push(chunk: Uint8Array): BirdReply[] {
    this.#buffer += this.#decoder.decode(chunk, { stream: true });
    const done: BirdReply[] = [];
    for (let nl = this.#buffer.indexOf("\n"); nl >= 0; nl = this.#buffer.indexOf("\n")) {
      const raw = this.#buffer.slice(0, nl).replace(/\r$/, "");
      this.#buffer = this.#buffer.slice(nl + 1);
      if (raw.startsWith("+")) continue; // asynchronous message
      if (raw.startsWith(" ")) {
        this.#lines.push({ code: this.#lastCode, text: raw.slice(1) });
        continue;
      }
      const match = /^(\d{4})([ -])(.*)$/.exec(raw);
      if (match === null) throw new SyntaxError(`not a BIRD reply line: ${JSON.stringify(raw.slice(0, 80))}`);
      const code = Number(match[1]);
      this.#lastCode = code;
      this.#lines.push({ code, text: match[3] ?? "" });
      if (match[2] === " ") {
        done.push({ code, lines: this.#lines });
        this.#lines = [];
      }
    }
    // BIRD's lines are short; a peer that never ends one would otherwise grow this buffer until the timeout.
    if (this.#buffer.length > MAX_LINE_CHARS) throw new SyntaxError(`a reply line longer than ${MAX_LINE_CHARS} characters`);
    return done;
  }
}

/** Default time to wait for a reply (a `configure` of a large config can take a while). */
const DEFAULT_TIMEOUT_MS = 30_000;

/** One connection to BIRD's control socket; see the module comment. */
export class BirdControl {
  readonly path: string;
  /** The greeting's text ("BIRD 2.0.12 ready."). */
  readonly greeting: string;
  readonly #socket: Socket;
  readonly #parser: ReplyParser;
  readonly #timeoutMs: number;
  #waiting: { resolve: (reply: BirdReply) => void; reject: (error: Error) => void } | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #closed: BirdSocketError | null = null;
  readonly #onClose: Array<() => void> = [];

  private constructor(path: string, socket: Socket, greeting: string, parser: ReplyParser, timeoutMs: number) {
    this.path = path;
    this.#socket = socket;
    this.greeting = greeting;
    this.#parser = parser;
    this.#timeoutMs = timeoutMs;
    socket.on("data", (chunk: Buffer) => this.#data(chunk));
    const closed = () => this.#close(new BirdSocketError(path, "closed", "closed by BIRD"));
    socket.on("close", closed);
    socket.on("error", (error) => this.#close(new BirdSocketError(path, "closed", error.message, { cause: error })));
  }

  /** Connects and waits for the `0001` greeting. */
  static connect(path: string, options: { readonly timeoutMs?: number } = {}): Promise<BirdControl> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const parser = new ReplyParser();
      const socket = createConnection({ path });
      const fail = (error: BirdSocketError) => {
        clearTimeout(timer);
        socket.destroy();
        reject(error);
      };
      const timer = setTimeout(() => fail(new BirdSocketError(path, "timeout", "no greeting")), timeoutMs);
      socket.once("error", (error) => fail(new BirdSocketError(path, "connect", error.message, { cause: error })));
      const onData = (chunk: Buffer) => {
        let replies: BirdReply[];
        try {
          replies = parser.push(chunk);
        } catch (error) {
          fail(new BirdSocketError(path, "protocol", String(error)));
          return;
        }
        const first = replies[0];
        if (first === undefined) return;
        socket.off("data", onData);
        socket.removeAllListeners("error");
        clearTimeout(timer);
        if (first.code !== BIRD_CODES.welcome) {
          socket.destroy();
          reject(new BirdSocketError(path, "protocol", `expected the 0001 greeting, got ${first.code}`));
          return;
        }
        resolve(new BirdControl(path, socket, first.lines.at(-1)?.text ?? "", parser, timeoutMs));
      };
      socket.on("data", onData);
      socket.once("close", () => fail(new BirdSocketError(path, "closed", "closed before the greeting")));
    });
  }

  /** True until the socket closes. */
  get open(): boolean {
    return this.#closed === null;
  }

  /** Called once when the socket closes (BIRD stopped or restarted, or close()). */
  onClose(listener: () => void): void {
    if (this.#closed !== null) queueMicrotask(listener);
    else this.#onClose.push(listener);
  }

  /**
   * Sends one command; resolves with its reply, throws BirdReplyError for 8xxx/9xxx, BirdSocketError when the socket
   * fails or no reply comes within `timeoutMs` (default: the connection's).
   */
  command(command: string, timeoutMs: number = this.#timeoutMs): Promise<BirdReply> {
    if (/[\r\n]/.test(command)) return Promise.reject(new RangeError("command: must be one line"));
    const run = this.#queue.then(() => this.#send(command, timeoutMs));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #send(command: string, timeoutMs: number): Promise<BirdReply> {
    if (this.#closed !== null) return Promise.reject(this.#closed);
    return new Promise<BirdReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting = null;
        reject(new BirdSocketError(this.path, "timeout", `no reply to ${JSON.stringify(command)}`));
        this.close();
      }, timeoutMs);
      this.#waiting = {
        resolve: (reply) => {
          clearTimeout(timer);
          const last = reply.lines.at(-1);
          if (isErrorCode(reply.code)) reject(new BirdReplyError(command, reply.code, last?.text ?? ""));
          else resolve(reply);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.#socket.write(`${command}\n`);
    });
  }

  #data(chunk: Uint8Array): void {
    let replies: BirdReply[];
    try {
      replies = this.#parser.push(chunk);
    } catch (error) {
      this.#close(new BirdSocketError(this.path, "protocol", String(error)));
      this.#socket.destroy();
      return;
    }
    for (const reply of replies) {
      const waiting = this.#waiting;
      this.#waiting = null;
      waiting?.resolve(reply);
    }
  }

  #close(error: BirdSocketError): void {
    if (this.#closed !== null) return;
    this.#closed = error;
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.reject(error);
    for (const listener of this.#onClose.splice(0)) listener();
  }

  close(): void {
    this.#close(new BirdSocketError(this.path, "closed", "closed by gorb"));
    this.#socket.destroy();
  }
}

/**
 * A prefix as gorb writes it (RFC 5952 lower case, no dotted tail): BIRD prints an IPv4-mapped address with one
 * (`::ffff:198.51.100.7/128` for gorb's `::ffff:c633:6407/128`), which would otherwise never match.
 */
function canonicalPrefix(prefix: string): string {
  const slash = prefix.indexOf("/");
  const address = prefix.slice(0, slash);
  if (!address.includes(":")) return prefix;
  try {
    return `${new URL(`http://[${address}]/`).hostname.slice(1, -1)}${prefix.slice(slash)}`;
  } catch {
    return prefix.toLowerCase();
  }
}

/**
 * The prefixes (`203.0.113.10/32`, `2001:db8::10/128`) of a `show route` reply, in order, without repeats. With
 * `primary`, only those whose listed route is BIRD's best for the prefix (marked ` *`, or ` !` for a kernel sync
 * error, after the `[protocol time]`): a route that loses to another protocol's (say `protocol direct` with the VIP
 * on lo) is in the table but not exported.
 */
export function routePrefixes(reply: BirdReply, options: { readonly primary?: boolean } = {}): string[] {
  const seen = new Set<string>();
  let current: string | null = null;
  for (const line of reply.lines) {
    if (line.code !== BIRD_CODES.routeList) continue;
    const first = line.text.trim().split(/\s+/)[0] ?? "";
    if (/^[0-9a-f.:]+\/\d{1,3}$/i.test(first)) current = canonicalPrefix(first);
    if (current === null) continue;
    if (options.primary !== true || /\] [*!]( |$)/.test(line.text)) seen.add(current);
  }
  return [...seen];
}
