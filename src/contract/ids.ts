/**
 * Service and backend ids: the `:service` and `:backend` path segments. Free-form as in the original (any
 * Unicode), but never empty, ".", "..", longer than 256 characters, or containing "/", control characters or a lone
 * UTF-16 surrogate (an apply's JSON can say "\ud800", no UTF-8 URL can), so an id always round-trips through a URL
 * path segment, a Prometheus label and a Consul service ID.
 * Small and free of the contract's schemas: the CLI checks ids with it before it sends anything.
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
