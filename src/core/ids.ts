/**
 * Service and backend ids: the `:service` and `:backend` path segments. Free-form as in the original (any
 * Unicode), but never empty, ".", "..", longer than 256 characters, or containing "/" or control characters,
 * so an id always round-trips through a URL path segment, a Prometheus label and a Consul service ID.
 */
import { ValidationError } from "./errors.ts";
import { describeValue } from "./fields.ts";

/** Longest id accepted, in UTF-16 code units. */
export const MAX_ID_LENGTH = 256;

/** Returns `id` when it is a valid id; throws a ValidationError naming `field` ("service" or "backend") otherwise. */
export function checkId(field: string, id: string): string {
  if (id.length === 0) throw new ValidationError(field, "id must not be empty");
  if (id.length > MAX_ID_LENGTH) {
    throw new ValidationError(field, `id must be at most ${MAX_ID_LENGTH} characters, got ${id.length}`);
  }
  if (id === "." || id === "..") throw new ValidationError(field, `id must not be ${describeValue(id)}`);
  if (id.includes("/")) throw new ValidationError(field, `id must not contain "/", got ${describeValue(id)}`);
  if (/[\u0000-\u001f\u007f]/.test(id)) {
    throw new ValidationError(field, `id must not contain control characters, got ${describeValue(id)}`);
  }
  return id;
}
