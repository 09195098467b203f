/**
 * JSON responses as the original wrote them: indented with one tab per level, no trailing newline,
 * Content-Type application/json. A large answer (an apply's report: 66,000 changes are 10 MB of JSON) is written a
 * piece at a time with turns of the event loop between (jsonResponsePaced): in one JSON.stringify it was 100 ms.
 */
import { Pacer } from "../pacer.ts";

/** A JSON response with tab indentation. */
export function jsonResponse(value: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(value, null, "\t"), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

/**
 * jsonResponse's answer, its text written with turns of the event loop (writePaced) and encoded as UTF-8 a piece at
 * a time. The body is a Blob of the pieces: Elysia passes a Response's body on as a stream, which for a string body
 * meant encoding all 10 MB in one block.
 */
export async function jsonResponsePaced(value: unknown, status = 200, headers: Record<string, string> = {}): Promise<Response> {
  const body = new PacedBody();
  await writePaced(value, "\n", body, new Pacer());
  return new Response(body.blob(), { status, headers: { "Content-Type": "application/json", ...headers } });
}

/** Bytes of a body gathered as text, encoded as UTF-8 every PIECE_CHARS characters. */
class PacedBody {
  readonly #encoder = new TextEncoder();
  readonly #pieces: Uint8Array[] = [];
  #text: string[] = [];
  #chars = 0;

  push(...texts: string[]): void {
    for (const text of texts) {
      this.#text.push(text);
      this.#chars += text.length;
    }
    if (this.#chars >= PIECE_CHARS) this.#flush();
  }

  blob(): Blob {
    this.#flush();
    return new Blob(this.#pieces as Uint8Array<ArrayBuffer>[]);
  }

  #flush(): void {
    this.#pieces.push(this.#encoder.encode(this.#text.join("")));
    this.#text = [];
    this.#chars = 0;
  }
}

/** Characters of text encoded at a time (writePaced's items are a few hundred each). */
const PIECE_CHARS = 64 * 1024;

/** A plain object JSON.stringify writes key by key (no toJSON of its own). */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return (proto === Object.prototype || proto === null) && typeof (value as { toJSON?: unknown }).toJSON !== "function";
}

/** Appends `value`'s text at the indentation `indent` (a line break and its tabs) to `out`. */
async function writePaced(value: unknown, indent: string, out: PacedBody, pacer: Pacer): Promise<void> {
  const inner = `${indent}\t`;
  if (Array.isArray(value) && value.length > 0) {
    for (let i = 0; i < value.length; i++) {
      if (pacer.due()) await pacer.turn();
      // An item JSON has no text for (undefined, a function) is null in an array, as JSON.stringify writes it.
      const text = JSON.stringify(value[i], null, "\t") ?? "null";
      out.push(i === 0 ? `[${inner}` : `,${inner}`, text.includes("\n") ? text.replaceAll("\n", inner) : text);
    }
    out.push(`${indent}]`);
    return;
  }
  if (!isPlainObject(value)) {
    out.push((JSON.stringify(value, null, "\t") ?? "null").replaceAll("\n", indent));
    return;
  }
  let first = true;
  for (const [key, item] of Object.entries(value)) {
    // A property JSON has no text for is left out, as JSON.stringify leaves it.
    if (item === undefined || typeof item === "function" || typeof item === "symbol") continue;
    out.push(first ? `{${inner}` : `,${inner}`, `${JSON.stringify(key)}: `);
    first = false;
    await writePaced(item, inner, out, pacer);
  }
  out.push(first ? "{}" : `${indent}}`);
}

/** The success response of PUT, PATCH and DELETE: 200 with an empty body and no Content-Type (as the original). */
export function emptyOk(): Response {
  return new Response(null, { status: 200 });
}
