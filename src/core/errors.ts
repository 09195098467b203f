/**
 * Domain errors of gorb's core. Every failure that reaches a client is a GorbError with an HTTP-like `status`,
 * a stable `code` and a message that names the field or the object and says what is wrong with it.
 *
 * This is the one place where IPVS errnos become domain errors (`fromIpvsError`, by the table
 * IPVS_ERROR_TABLE and the attribute the IpvsError carries); the API maps GorbError to HTTP in
 * src/api/errors.ts and nowhere else.
 */
import type { ErrorCode } from "../contract/fields.ts";
import { ERRNO, IpvsError, type ErrnoName, type IpvsField, type IpvsOperation } from "../ipvs/errors.ts";

/** Stable, machine-readable error codes (the API returns them next to the message); the contract lists them. */
export type GorbErrorCode = Exclude<ErrorCode, "INTERNAL">;

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
 * "pulse.interval", "service" for an id) and `problem` what is wrong with it; the message reads "<field>: <problem>".
 */
export class ValidationError extends GorbError {
  override readonly name = "ValidationError";
  readonly field: string;
  readonly problem: string;

  constructor(field: string, problem: string, options?: { cause?: unknown }) {
    super(400, "VALIDATION", `${field}: ${problem}`, options);
    this.field = field;
    this.problem = problem;
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
 * LimitError reports a create refused because gorb already holds as many services or backends as it is
 * allowed to (--max-services, --max-backends): 409, code LIMIT. A conflict with the current state, not a bad
 * request: the same request succeeds once something is deleted or the limit is raised.
 */
export class LimitError extends GorbError {
  override readonly name = "LimitError";
  /** "services" or "backends". */
  readonly what: "services" | "backends";
  readonly limit: number;

  constructor(what: "services" | "backends", limit: number) {
    super(409, "LIMIT", `${what}: gorb holds its limit of ${limit} ${what} (--max-${what}); delete some or raise the limit`);
    this.what = what;
    this.limit = limit;
  }
}

/**
 * StoreTooLargeError reports a change the shared store refused for its size (413, code TOO_LARGE): more keys
 * than etcd takes in one transaction (--max-txn-ops) or more bytes than one request (--max-request-bytes). Only
 * this change failed; the store works. `operations` is how many puts and deletes its transaction has; `reason`,
 * etcd's words.
 */
export class StoreTooLargeError extends GorbError {
  override readonly name = "StoreTooLargeError";
  readonly operations: number;
  readonly reason: string;

  constructor(operations: number, reason: string, options?: { cause?: unknown }) {
    super(
      413,
      "TOO_LARGE",
      `the change is too large for the shared store (${operations} etcd operations; ${reason}): nothing changed; send it in smaller parts, ` +
        "or start etcd with a larger --max-txn-ops (default 128) or --max-request-bytes (default 1.5 MiB)",
      options,
    );
    this.operations = operations;
    this.reason = reason;
  }
}

/**
 * StoreOutcomeUnknownError: a shared store did not answer a write in time, so the write may still take effect
 * there (a timed-out etcd transaction is not known to have failed). Carries the store's error as `cause`.
 */
export class StoreOutcomeUnknownError extends Error {
  override readonly name = "StoreOutcomeUnknownError";
  readonly timeoutMs: number;

  constructor(message: string, timeoutMs: number, options?: { cause?: unknown }) {
    super(message, options);
    this.timeoutMs = timeoutMs;
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

/** The wire field (REST contract) of each IPVS attribute an IpvsError may concern. */
const WIRE_FIELD_OF: Readonly<Record<IpvsField, string>> = {
  family: "family",
  protocol: "protocol",
  address: "host",
  port: "port",
  fwmark: "fwmark",
  scheduler: "method",
  pe: "pe",
  flags: "flags",
  timeout: "persistence_timeout",
  netmask: "persistence_netmask",
  forward: "method",
  weight: "weight",
  upperThreshold: "upper_threshold",
  lowerThreshold: "lower_threshold",
  tunnelType: "tunnel_type",
  tunnelPort: "tunnel_port",
  tunnelChecksum: "tunnel_checksum",
  timeouts: "timeouts",
};

/** What an IPVS failure becomes: its status class and how its message reads. */
type IpvsOutcome = "conflict" | "invalid" | "lost" | "kernel";

/** One row of the mapping: an errno, optionally only for some operations, and what it becomes. */
interface IpvsErrorRow {
  readonly errno: ErrnoName;
  /** The operations the row is for; absent = every operation. */
  readonly ops?: readonly IpvsOperation[];
  readonly outcome: IpvsOutcome;
}

const SERVICE_WRITES: readonly IpvsOperation[] = ["add-service", "update-service"];

/**
 * The mapping of IPVS failures to HTTP, first matching row wins (anything else: "kernel", 500 with the errno):
 *   EEXIST             conflict  409, "... already exists in the kernel": gorb checks its own objects first,
 *                                so the kernel's object is one gorb does not manage
 *   ENOENT on add/update-service: invalid (the kernel has no such scheduler or persistence engine module)
 *   ENOENT, ESRCH      lost      500: an object gorb manages is missing from the kernel (removed behind gorb's
 *                                back); deletes treat these as success before they get here
 *   EINVAL, ERANGE     invalid   400 naming the field of the attribute the error carries (values the
 *                                contract lets through but the kernel refuses, e.g. an address it cannot route)
 */
const IPVS_ERROR_TABLE: readonly IpvsErrorRow[] = [
  { errno: "EEXIST", outcome: "conflict" },
  { errno: "ENOENT", ops: SERVICE_WRITES, outcome: "invalid" },
  { errno: "ENOENT", outcome: "lost" },
  { errno: "ESRCH", outcome: "lost" },
  { errno: "EINVAL", outcome: "invalid" },
  { errno: "ERANGE", outcome: "invalid" },
];

/** The outcome of an IpvsError by the table. */
export function ipvsOutcome(error: IpvsError): IpvsOutcome {
  const row = IPVS_ERROR_TABLE.find((r) => ERRNO[r.errno] === error.errno && (r.ops === undefined || r.ops.includes(error.op)));
  return row?.outcome ?? "kernel";
}

/** The text of a thrown value: an Error's message, or the value as a string. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The GorbError for a failure of the IPVS driver, by IPVS_ERROR_TABLE. An "invalid" error without an
 * attribute (the kernel refused the request as a whole) names "body". A GorbError passes through unchanged;
 * a non-IPVS error becomes a 500 that keeps it as `cause`.
 */
export function fromIpvsError(error: unknown): GorbError {
  if (error instanceof GorbError) return error;
  if (!(error instanceof IpvsError)) {
    return new KernelError(`internal error: ${errorMessage(error)}`, "", { cause: error });
  }
  switch (ipvsOutcome(error)) {
    case "conflict":
      return new ConflictError(`${error.message} in the kernel (not managed by gorb)`, { cause: error });
    case "invalid":
      return new ValidationError(error.field === null ? "body" : WIRE_FIELD_OF[error.field], error.message, { cause: error });
    case "lost":
      return new KernelError(`${error.message} in the kernel (removed behind gorb's back?)`, error.code, { cause: error });
    case "kernel":
      return new KernelError(error.message, error.code, { cause: error });
  }
}

