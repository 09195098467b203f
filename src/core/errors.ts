/**
 * Domain errors of gorb's core. Every failure that reaches a client is a GorbError with an HTTP-like `status`,
 * a stable `code` and a message that names the field or the object and says what is wrong with it.
 *
 * This is the one place where IPVS errnos become domain errors (`fromIpvsError`); the API maps GorbError to
 * HTTP in src/api/errors.ts and nowhere else.
 */
import { IpvsError } from "../ipvs/errors.ts";

/** Stable, machine-readable error codes (the API returns them next to the message). */
export type GorbErrorCode =
  | "VALIDATION"
  | "NOT_FOUND"
  | "CONFLICT"
  | "KERNEL"
  | "STATE"
  | "UNAUTHORIZED"
  | "FORBIDDEN"
  | "TOO_LARGE"
  | "UNAVAILABLE";

/** GorbError is the base of every error gorb reports to a client. */
export class GorbError extends Error {
  override readonly name: string = "GorbError";
  readonly status: number;
  readonly code: GorbErrorCode;

  constructor(status: number, code: GorbErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
    this.code = code;
  }
}

/**
 * ValidationError reports bad input (400). `field` is the wire name of the offending field ("port",
 * "pulse.interval", "service" for an id); the message reads "<field>: <problem>".
 */
export class ValidationError extends GorbError {
  override readonly name = "ValidationError";
  readonly field: string;

  constructor(field: string, problem: string, options?: { cause?: unknown }) {
    super(400, "VALIDATION", `${field}: ${problem}`, options);
    this.field = field;
  }
}

/** NotFoundError reports an unknown service or backend (404). */
export class NotFoundError extends GorbError {
  override readonly name = "NotFoundError";

  constructor(message: string, options?: { cause?: unknown }) {
    super(404, "NOT_FOUND", message, options);
  }
}

/** ConflictError reports an object that already exists, in gorb or in the kernel (409). */
export class ConflictError extends GorbError {
  override readonly name = "ConflictError";

  constructor(message: string, options?: { cause?: unknown }) {
    super(409, "CONFLICT", message, options);
  }
}

/**
 * KernelError reports an IPVS (or VIP) operation that failed for a reason the client cannot fix by changing the
 * request (500). `errno` is the errno name, e.g. "EPERM", or "" when there is none.
 */
export class KernelError extends GorbError {
  override readonly name = "KernelError";
  readonly errno: string;

  constructor(message: string, errno: string, options?: { cause?: unknown }) {
    super(500, "KERNEL", message, options);
    this.errno = errno;
  }
}


/**
 * UnavailableError reports a mutation refused before anything was touched because a part gorb needs to keep
 * its promises cannot work right now (503): the state store cannot write (disk full, read-only), the shared
 * store has no quorum, or gorb is shutting down. `part` names it ("state", "store", "shutdown").
 */
export class UnavailableError extends GorbError {
  override readonly name = "UnavailableError";
  readonly part: string;

  constructor(part: string, message: string, options?: { cause?: unknown }) {
    super(503, "UNAVAILABLE", message, options);
    this.part = part;
  }
}

/** The wire field an EINVAL/ERANGE message from the IPVS layer is about, guessed from its wording. */
function fieldOfInvalid(message: string): string {
  if (/tunnel port|gue tunnel/.test(message)) return "tunnel_port";
  if (/tunnel checksum/.test(message)) return "tunnel_checksum";
  if (/tunnel type/.test(message)) return "tunnel_type";
  if (/netmask/.test(message)) return "persistence_netmask";
  if (/lower threshold|lowerThreshold/.test(message)) return "lower_threshold";
  if (/upperThreshold/.test(message)) return "upper_threshold";
  if (/weight/.test(message)) return "weight";
  if (/needs forward|forward /.test(message)) return "method";
  if (/scheduler/.test(message)) return "method";
  if (/\bpe\b|persistence engine/.test(message)) return "pe";
  if (/fwmark/.test(message)) return "fwmark";
  if (/port /.test(message)) return "port";
  return "host";
}

/**
 * The GorbError for a failure of the IPVS driver:
 *   EEXIST            409, "... already exists in the kernel" (gorb checks its own objects first, so an EEXIST
 *                     from the kernel is an object gorb does not manage)
 *   ENOENT on add/update-service: unknown scheduler (400, field "method") or persistence engine (400, field "pe")
 *   EINVAL, ERANGE    400 with the field the message is about (values the normaliser lets through but the
 *                     kernel refuses, e.g. an address it cannot route)
 *   ESRCH, ENOENT     500: an object gorb manages is missing from the kernel (someone removed it behind gorb's
 *                     back); deletes treat these as success before they get here
 *   anything else     500 with the errno name (EPERM, ENOMEM, ...)
 * A GorbError passes through unchanged; a non-IPVS error becomes a 500 that keeps it as `cause`.
 */
export function fromIpvsError(error: unknown): GorbError {
  if (error instanceof GorbError) return error;
  if (!(error instanceof IpvsError)) {
    const text = error instanceof Error ? error.message : String(error);
    return new KernelError(`internal error: ${text}`, "", { cause: error });
  }
  const serviceOp = error.op === "add-service" || error.op === "update-service";
  switch (error.code) {
    case "EEXIST":
      return new ConflictError(`${error.message} in the kernel (not managed by gorb)`, { cause: error });
    case "ENOENT":
      if (serviceOp) {
        const field = /persistence engine/.test(error.message) && !/scheduler/.test(error.message) ? "pe" : "method";
        return new ValidationError(field, error.message, { cause: error });
      }
      return new KernelError(`${error.message} in the kernel (removed behind gorb's back?)`, error.code, {
        cause: error,
      });
    case "ESRCH":
      return new KernelError(`${error.message} in the kernel (removed behind gorb's back?)`, error.code, {
        cause: error,
      });
    case "EINVAL":
    case "ERANGE":
      return new ValidationError(fieldOfInvalid(error.message), error.message, { cause: error });
    default:
      return new KernelError(error.message, error.code, { cause: error });
  }
}

