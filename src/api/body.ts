/**
 * Reading request bodies: GORB clients send JSON without a Content-Type (sky-uk/feed's Go client) and curl -d
 * sends application/x-www-form-urlencoded, so the body is read as JSON whatever the header says. Each route
 * reads its body with these (its `parse` hook), never with Elysia's parsers by Content-Type. The size limit is
 * enforced before reading when a Content-Length is declared (HTTP framing then holds the body to it, so it is read
 * in one piece), and while reading a chunked body; a body longer than declared is refused all the same.
 * An empty body reads as `undefined` (which core treats as {}).
 */
import { jsonTypeName } from "../contract/json-values.ts";
import { ValidationError } from "../core/errors.ts";
import { PayloadTooLargeError } from "./errors.ts";

/** Default body limit: 64 KiB, far above any service or backend body. */
export const DEFAULT_BODY_LIMIT_BYTES = 64 * 1024;

/** Decoding is stateless between calls (no `stream` option), so one decoder serves every request. */
const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** The parsed JSON body of `request`, or undefined when it is empty. Throws 413 over `limit` bytes, 400 on bad JSON. */
export async function readJsonBody(request: Request, limit: number): Promise<unknown> {
  const declared = Number(request.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > limit) throw new PayloadTooLargeError(limit);
  let bytes: Uint8Array;
  if (Number.isFinite(declared)) bytes = new Uint8Array(await request.arrayBuffer());
  else if (request.body === null) return undefined;
  else bytes = await readLimited(request.body, limit);
  // Over HTTP the framing holds a body to its Content-Length; a Request built in-process may not keep to it.
  if (bytes.byteLength > limit) throw new PayloadTooLargeError(limit);
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    throw new ValidationError("body", "is not valid UTF-8");
  }
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new ValidationError("body", `malformed JSON: ${why}`);
  }
}

/** A body without a Content-Length (chunked), read chunk by chunk up to `limit` bytes (413 beyond). */
async function readLimited(body: ReadableStream<Uint8Array>, limit: number): Promise<Uint8Array> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw new PayloadTooLargeError(limit);
    }
    chunks.push(value);
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
export async function readJsonObject(request: Request, limit: number): Promise<Record<string, unknown>> {
  const value = await readJsonBody(request, limit);
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new ValidationError("body", `must be a JSON object, got ${jsonTypeName(value)}`);
  }
  return value as Record<string, unknown>;
}
