/**
 * Service and backend ids: the `:service` and `:backend` path segments. Free-form as in the original (any
 * Unicode), but never empty, ".", "..", longer than 256 characters, or containing "/", control characters or a lone
 * UTF-16 surrogate (an apply's JSON can say "\ud800", no UTF-8 URL can), so an id always round-trips through a URL
 * path segment, a Prometheus label and a Consul service ID.
 * Small and free of the contract's schemas: the CLI checks ids with it before it sends anything, and the web UI
 * shows them with visibleText.
 *
 * Ids may hold what a reader cannot see: C1 controls (U+0080-U+009F; U+009B is CSI to a terminal that takes 8-bit
 * controls) and bidirectional controls ("\u202Ebew", RIGHT-TO-LEFT OVERRIDE then "bew", is drawn as "web", so one
 * service could pass for another). They stay valid ids (the original took any Unicode; an id saved with one must
 * stay reachable), and are shown as marks where people read them: the web UI, the daemon's log, and a terminal the
 * CLI writes to.
 */
import { describeValue } from "./json-values.ts";

/** Longest id accepted, in UTF-16 code units. */
const MAX_ID_LENGTH = 256;

/** What is wrong with `id` ("id must not be \".\""), or null when it is a valid id. */
export function idProblem(id: string): string | null {
  if (id.length === 0) return "id must not be empty";
  if (id.length > MAX_ID_LENGTH) return `id must be at most ${MAX_ID_LENGTH} characters, got ${id.length}`;
  if (id === "." || id === "..") return `id must not be ${describeValue(id)}`;
  if (id.includes("/")) return `id must not contain "/", got ${describeValue(id)}`;
  if (/[\u0000-\u001f\u007f]/.test(id)) return `id must not contain control characters, got ${describeValue(id)}`;
  if (/\p{Cs}/u.test(id)) return `id must be valid Unicode (a lone surrogate), got ${describeValue(id)}`;
  return null;
}

/** C1 controls; ALM, LRM, RLM; LRE, RLE, PDF, LRO, RLO; LRI, RLI, FSI, PDI. */
const INVISIBLE = /[\u0080-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;
const INVISIBLE_ALL = new RegExp(INVISIBLE.source, "gu");

/** The text with each C1 or bidirectional control shown as a mark, e.g. "⟨U+202E⟩bew"; the same text when it has none. */
export function visibleText(text: string): string {
  if (!INVISIBLE.test(text)) return text;
  return text.replace(INVISIBLE_ALL, (c) => `⟨U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}⟩`);
}

/**
 * An id to put in a sentence drawn for people: visibleText, between FIRST STRONG ISOLATE and POP DIRECTIONAL ISOLATE
 * (what <bdi> does in HTML), so a right-to-left id keeps its place: "maintenance שירות/9" drew backend 9 first.
 */
export function isolatedId(id: string): string {
  return `\u2068${visibleText(id)}\u2069`;
}
