/**
 * Reading request bodies: GORB clients send JSON without a Content-Type (sky-uk/feed's Go client) and curl -d
 * sends application/x-www-form-urlencoded, so the body is read as JSON whatever the header says. Each route
 * reads its body with these (its `parse` hook), never with Elysia's parsers by Content-Type. The size limit is
 * enforced before reading when a Content-Length is declared, and while reading (a chunked body, or one built
 * in-process that is longer than it declares).
 *
 * Time: the whole body must arrive within a deadline (BODY_DEADLINE_MS) from when its route starts to read it, right
 * after the request's headers and the guard's checks; else 408 TIMEOUT, and the connection is closed (./errors.ts).
 * Bun's idle timeout only closes a connection that is silent for 10 s, so a client that sent a byte every few
 * seconds held its request, and a slot of --max-connections, for as long as it liked.
 * An empty body reads as `undefined` (which core treats as {}).
 */
import { jsonTypeName } from "../contract/json-values.ts";
import { ValidationError, errorMessage } from "../core/errors.ts";
import { PayloadTooLargeError, RequestTimeoutError } from "./errors.ts";

/** Default body limit: 64 KiB, far above any service or backend body. */
export const DEFAULT_BODY_LIMIT_BYTES = 64 * 1024;

/**
 * Default time for a whole body to arrive: 10 s, the idle timeout's. 8 MiB (the largest apply) needs about 7 Mbit/s;
 * a service or backend body (under 64 KiB) arrives in well under a second over any link.
 */
export const BODY_DEADLINE_MS = 10_000;

/** A body longer than this (in characters) is parsed after a turn of the event loop (see readJsonBody). */
const PARSE_AFTER_TURN_CHARS = 1024 * 1024;

/** Decoding is stateless between calls (no `stream` option), so one decoder serves every request. */
const UTF8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The parsed JSON body of `request`, or undefined when it is empty. Throws 413 over `limit` bytes, 408 when it has
 * not all arrived within `deadlineMs`, 400 on bad JSON.
 */
export async function readJsonBody(request: Request, limit: number, deadlineMs = BODY_DEADLINE_MS): Promise<unknown> {
  const declared = Number(request.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > limit) throw new PayloadTooLargeError(limit);
  if (request.body === null) return undefined;
  const deadline = deadlineIn(deadlineMs);
  let bytes: Uint8Array;
  try {
    bytes = Number.isFinite(declared) ? await readDeclared(request, limit, deadline) : await readLimited(request.body, limit, deadline);
  } finally {
    deadline.clear();
  }
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    throw new ValidationError("body", "is not valid UTF-8");
  }
  if (text.trim() === "") return undefined;
  // JSON.parse is one block (about 5 ms per MB): a large body (an apply's set) is parsed after a turn of the event
  // loop, so reading and decoding it is another block, not the same one.
  if (text.length > PARSE_AFTER_TURN_CHARS) await new Promise<void>((resolve) => setImmediate(resolve));
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (error) {
    const why = errorMessage(error);
    throw new ValidationError("body", `malformed JSON: ${why}`);
  }
  // A key "toString" can only be spelled literally or with a \u escape: the walk runs only when one may be there.
  if (text.includes("toString") || text.includes("\\u")) printable(value);
  return value;
}

/** What a JSON object with its own "toString" key turns into in a template string (see printable). */
function printAsObject(): string {
  return "[object]";
}

/**
 * Gives every object of `value` that has its own key "toString" (JSON's, so not a function) a Symbol.toPrimitive that
 * JSON cannot spell. Without it, such an object cannot be turned into text: `${{"toString": 1}}` throws a TypeError,
 * and Elysia's validation error builds its messages that way (`but found: ${value}`, elysia 1.4.30), so a body with
 * `{"host": {"toString": 1}}` was a 500 instead of the 400 naming "host". The key stays: the contract still sees
 * (and names) it, and symbols are neither validated nor serialised.
 */
function printable(value: unknown): void {
  // A loop, not recursion: JSON.parse takes nesting far deeper than the call stack would.
  const pending: unknown[] = [value];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    if (typeof next !== "object" || next === null) continue;
    if (Array.isArray(next)) {
      for (const item of next) pending.push(item);
      continue;
    }
    if (Object.hasOwn(next, "toString")) Object.defineProperty(next, Symbol.toPrimitive, { value: printAsObject });
    for (const item of Object.values(next)) pending.push(item);
  }
}

/** The time a whole body has to arrive: `before(work)` settles as `work` does, or with a 408 once it has passed. */
interface Deadline {
  before<T>(work: Promise<T>): Promise<T>;
  clear(): void;
}

function deadlineIn(ms: number): Deadline {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RequestTimeoutError(ms)), ms);
  });
  // Only a read in progress waits on it; passing with none is no unhandled rejection.
  late.catch(() => {});
  return { before: (work) => Promise.race([work, late]), clear: () => clearTimeout(timer) };
}

/**
 * A body that declared its length (at most `limit`, checked before): read whole, in one call, before `deadline`
 * (408 after; the connection is then closed, which ends the read). Far cheaper than a stream reader, chunk by
 * chunk, for the small body of every PUT. Checked against `limit` again once read: a request built in-process can
 * carry more than it declares.
 */
async function readDeclared(request: Request, limit: number, deadline: Deadline): Promise<Uint8Array> {
  const read = await deadline.before(request.arrayBuffer());
  if (read.byteLength > limit) throw new PayloadTooLargeError(limit);
  return new Uint8Array(read);
}

/** A body read chunk by chunk up to `limit` bytes (413 beyond) before `deadline` (408 after; the read is cancelled). */
async function readLimited(body: ReadableStream<Uint8Array>, limit: number, deadline: Deadline): Promise<Uint8Array> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const next = await deadline.before(reader.read());
      if (next.done) break;
      size += next.value.byteLength;
      if (size > limit) throw new PayloadTooLargeError(limit);
      chunks.push(next.value);
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    throw error;
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/** The body as a JSON object; {} when it is empty; a 400 naming "body" when it is JSON of another type. */
export async function readJsonObject(request: Request, limit: number, deadlineMs = BODY_DEADLINE_MS): Promise<Record<string, unknown>> {
  const value = await readJsonBody(request, limit, deadlineMs);
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new ValidationError("body", `must be a JSON object, got ${jsonTypeName(value)}`);
  }
  return value as Record<string, unknown>;
}
