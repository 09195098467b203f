/**
 * Bearer-token check. When a token is configured every route needs "Authorization: Bearer <token>",
 * /metrics and /openapi.json included (Prometheus sends one with `authorization: { credentials: ... }`);
 * without a token configured the API is open, as the original was.
 */
import { timingSafeEqual } from "node:crypto";
import { UnauthorizedError } from "./errors.ts";

/** Throws UnauthorizedError unless `header` is "Bearer <token>" (scheme case-insensitive, compared in constant time). */
export function checkBearer(header: string | null, token: string): void {
  if (header === null) throw new UnauthorizedError("authorization: a bearer token is required");
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (match === null) throw new UnauthorizedError('authorization: expected "Bearer <token>"');
  const given = new TextEncoder().encode(match[1] ?? "");
  const wanted = new TextEncoder().encode(token);
  if (given.length !== wanted.length || !timingSafeEqual(given, wanted)) {
    throw new UnauthorizedError("authorization: the token is not valid");
  }
}
