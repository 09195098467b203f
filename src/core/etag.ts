/**
 * Entity tags of services and backends, so that two clients cannot overwrite each other's change unseen (a lost
 * update). An object's tag is a hash of its `options` as GET shows them (what PUT and PATCH set), not of its
 * health, drain or counters: GET /service/:service and GET /service/:service/:backend answer it as `ETag`, and a
 * PATCH or DELETE with `If-Match` goes through only while the object's options still have that tag (checked under
 * gorb's lock, so no other change comes between the check and the write); otherwise 412 PRECONDITION_FAILED,
 * changing nothing. `If-Match: *` asks only that the object exists. Weak tags (`W/"..."`) never match (RFC 9110,
 * 13.1.1: If-Match compares strongly).
 */
import { GorbError, ValidationError } from "./errors.ts";

/** The entity tag of an object's options view (quoted, as the ETag header carries it). */
export function etagOf(options: object): string {
  return `"${Bun.hash(JSON.stringify(options)).toString(36)}"`;
}

/** How much of the If-Match header a 412's message repeats (a client may send kilobytes of tags). */
const ASKED_SHOWN = 120;

/** PreconditionError: an If-Match that the object's current tag does not satisfy (412). `etag` is the current one. */
export class PreconditionError extends GorbError {
  override readonly name = "PreconditionError";
  readonly etag: string;

  constructor(what: string, asked: string, etag: string) {
    const shown = asked.length > ASKED_SHOWN ? `${asked.slice(0, ASKED_SHOWN)}... (${asked.length} characters)` : asked;
    super(412, "PRECONDITION_FAILED", `${what} changed since it was read (If-Match: ${shown}; its ETag is now ${etag}): nothing changed; read it again and retry`);
    this.etag = etag;
  }
}

/** The entity tags an If-Match header lists, "*" as itself; a header that is not such a list is a 400 on if-match. */
function listedTags(header: string): readonly string[] {
  const text = header.trim();
  if (text === "*") return ["*"];
  const tags: string[] = [];
  const tag = /\s*((?:W\/)?"[\x21\x23-\x7e\x80-\xff]*")\s*(,|$)/y;
  while (tag.lastIndex < text.length) {
    const at = tag.lastIndex;
    const match = tag.exec(text);
    if (match === null || (match[2] === "," && tag.lastIndex === text.length)) {
      throw new ValidationError("if-match", `must be "*" or a list of entity tags such as "1x2y3z", got ${JSON.stringify(text.slice(at, at + 64))}`);
    }
    tags.push(match[1] ?? "");
  }
  if (tags.length === 0) throw new ValidationError("if-match", 'must be "*" or a list of entity tags such as "1x2y3z", got ""');
  return tags;
}

/**
 * Checks a request's If-Match header (null: none, always satisfied) against `options`, the object's current
 * options view; `what` names the object in the error ('backend "b1" of service "web"').
 */
export function checkIfMatch(header: string | null, options: object, what: string): void {
  if (header === null) return;
  const tags = listedTags(header);
  if (tags[0] === "*") return;
  const current = etagOf(options);
  if (!tags.includes(current)) throw new PreconditionError(what, header.trim(), current);
}
