/**
 * The one place where errors become HTTP responses. Every error body is {"error": "<message>", "code": "..."}
 * (GORB clients read `error`; `code` is gorb's addition). A 400 about a field also carries that field as data,
 * `field` (its wire name: "pulse.interval", "services.web.port"), and an error about a path into an apply's set
 * (a 400, or a 409 for an address used twice) its segments, `path` (["services", "web", "port"]); a kernel error
 * (500 KERNEL) carries the kernel's errno name, `errno` ("EPERM"), and a failed If-Match (412 PRECONDITION_FAILED)
 * the object's current entity tag, `etag`. So a client need not parse them out of the message:
 *   GorbError (core and API)        its status: 400, 401, 403, 404, 408, 409, 412, 413, 500, 503; a body's 408 and
 *                                   413 close the connection (bodyUnread)
 *   Elysia VALIDATION               400, "<field>: <problem>": a body error is worded by the contract
 *                                   (src/contract/check.ts, the same words core uses), the path of the first
 *                                   error is the field ("pulse.interval"); query errors use the schema's text
 *   Elysia PARSE                    the GorbError a route's body parser threw (413 over the limit, 408 when
 *                                   the body is late, 400 for JSON that does not parse), else 400
 *   Elysia NOT_FOUND (no route)     404, "no route for <METHOD> <path>" (a known path with another method too,
 *                                   as gorilla/mux did for the original)
 *   anything else                   500 "internal error", logged with its stack
 */
import { describeValueError } from "../contract/check.ts";
import type { ErrorCode } from "../contract/fields.ts";
import { GorbError, KernelError, ValidationError, errorMessage } from "../core/errors.ts";
import { PreconditionError } from "../core/etag.ts";
import { PathConflictError, PathError } from "../core/path.ts";
import type { Logger } from "../log.ts";
import { jsonResponse } from "./json.ts";

/** UnauthorizedError: a bearer token is configured and the request did not carry it (401). */
export class UnauthorizedError extends GorbError {
  override readonly name = "UnauthorizedError";

  constructor(message: string) {
    super(401, "UNAUTHORIZED", message);
  }
}

/** PayloadTooLargeError: the request body is over the limit (413). */
export class PayloadTooLargeError extends GorbError {
  override readonly name = "PayloadTooLargeError";

  constructor(limit: number) {
    super(413, "TOO_LARGE", `body: larger than the limit of ${limit} bytes`);
  }
}

/**
 * RequestTimeoutError: the request's body did not all arrive within `deadlineMs` (408, code TIMEOUT). Its answer
 * closes the connection (bodyUnread): the rest of the body may still be on its way.
 */
export class RequestTimeoutError extends GorbError {
  override readonly name = "RequestTimeoutError";
  readonly deadlineMs: number;

  constructor(deadlineMs: number) {
    super(408, "TIMEOUT", `body: not received within ${deadlineMs / 1000} s of the request's headers; send the whole body at once`);
    this.deadlineMs = deadlineMs;
  }
}

/** The JSON error response for a status and message. */
export function errorBody(status: number, code: ErrorCode, message: string, headers?: Record<string, string>): Response {
  return jsonResponse({ error: message, code }, status, headers);
}

/**
 * True for an error that leaves the request's body unread (too large, or too late): its answer closes the connection,
 * else the rest of the body, however slowly it came, would be read and thrown away before the connection's next request.
 */
function bodyUnread(error: GorbError): boolean {
  return error instanceof PayloadTooLargeError || error instanceof RequestTimeoutError;
}

/** The JSON error response of a GorbError: its status, code and message, and its data (field, path, errno; above). */
export function gorbErrorBody(error: GorbError): Response {
  const headers: Record<string, string> =
    error.status === 401 ? { "WWW-Authenticate": 'Bearer realm="gorb"' } : bodyUnread(error) ? { Connection: "close" } : {};
  const about =
    error instanceof PathError || error instanceof PathConflictError
      ? { field: error.field, path: error.path }
      : error instanceof ValidationError
        ? { field: error.field }
        : error instanceof KernelError && error.errno !== ""
          ? { errno: error.errno }
          : error instanceof PreconditionError
            ? { etag: error.etag }
            : {};
  return jsonResponse({ error: error.message, code: error.code, ...about }, error.status, headers);
}

/** Structural view of Elysia's ValidationError (its class is generic over the route; only these fields matter). */
interface ElysiaValidation {
  readonly type?: unknown;
  /** The schema's own `error` text, when it has one. */
  readonly customError?: unknown;
  readonly valueError?: { readonly path?: unknown; readonly message?: unknown; readonly value?: unknown; readonly schema?: unknown };
}

function describeFound(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 64 ? `${value.slice(0, 61)}...` : value);
  if (value === undefined) return "nothing";
  if (value === null || typeof value === "number" || typeof value === "boolean") return String(value);
  return Array.isArray(value) ? "an array" : `an ${typeof value}`;
}

/** An Elysia validation error as gorb's: ValidationError("detail", "expected boolean, got \"maybe\""). */
function elysiaValidationError(error: unknown): ValidationError {
  const v = (error as ElysiaValidation).valueError;
  if ((error as ElysiaValidation).type === "body" && typeof v?.path === "string" && typeof v.schema === "object" && v.schema !== null) {
    const { field, problem } = describeValueError({ path: v.path, schema: v.schema as never, value: v.value }, "body");
    return new ValidationError(field, problem);
  }
  const path = typeof v?.path === "string" ? v.path.replace(/^\//, "").replaceAll("/", ".") : "";
  // A query number out of range is checked after Elysia converted it, as a "property" without a path: the
  // parameter's schema names it (`x-field`).
  const named = typeof v?.schema === "object" && v.schema !== null ? (v.schema as { "x-field"?: unknown })["x-field"] : undefined;
  const field = path !== "" ? path : typeof named === "string" ? named : String((error as ElysiaValidation).type ?? "request");
  const custom = (error as ElysiaValidation).customError;
  const problem = typeof custom === "string" ? custom : typeof v?.message === "string" ? v.message : "is invalid";
  return new ValidationError(field, `${problem.charAt(0).toLowerCase()}${problem.slice(1)}, got ${describeFound(v?.value)}`);
}

/** The request's path, for messages and the log; never throws (a request without a Host has a relative URL). */
function pathOf(request: Request): string {
  return URL.parse(request.url)?.pathname ?? request.url.split("?")[0] ?? "";
}

/** The response for an error thrown anywhere in a route (Elysia's `code` tells its own errors apart). */
export function errorResponse(code: unknown, error: unknown, request: Request, log: Logger): Response {
  if (error instanceof GorbError) {
    if (error.status >= 500) log.error(`${request.method} ${pathOf(request)}: ${error.message}`);
    return gorbErrorBody(error);
  }
  if (code === "VALIDATION") return gorbErrorBody(elysiaValidationError(error));
  if (code === "PARSE" && error instanceof Error && error.cause instanceof GorbError) {
    return errorResponse(undefined, error.cause, request, log);
  }
  if (code === "PARSE") {
    const why = errorMessage(error);
    return gorbErrorBody(new ValidationError("body", `cannot parse: ${why}`));
  }
  if (code === "NOT_FOUND") {
    return errorBody(404, "NOT_FOUND", `no route for ${request.method} ${pathOf(request)}`);
  }
  log.error(`${request.method} ${pathOf(request)}: internal error`, error);
  return errorBody(500, "INTERNAL", "internal error (see the gorb log)");
}
