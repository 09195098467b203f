/**
 * Bearer-token check. When a token is configured every route needs "Authorization: Bearer <token>",
 * /metrics and /openapi.json included (Prometheus sends one with `authorization: { credentials: ... }`);
 * without a token configured the API is open, as the original was.
 *
 * The given and the configured token are compared as SHA-256 digests with timingSafeEqual: both sides are always
 * 32 bytes, so neither the comparison's time nor an early length check tells a caller how long the token is or
 * how much of it matched.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { UnauthorizedError } from "./errors.ts";

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** tokensEqual compares two secrets in time independent of their contents and lengths. */
export function tokensEqual(given: string, wanted: string): boolean {
  return timingSafeEqual(digest(given), digest(wanted));
}

/** Throws UnauthorizedError unless `header` is "Bearer <token>" (scheme case-insensitive, compared in constant time). */
export function checkBearer(header: string | null, token: string): void {
  if (header === null) throw new UnauthorizedError("authorization: a bearer token is required");
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (match === null) throw new UnauthorizedError('authorization: expected "Bearer <token>"');
  if (!tokensEqual(match[1] ?? "", token)) throw new UnauthorizedError("authorization: the token is not valid");
}
