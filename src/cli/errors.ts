/**
 * CLI errors and the exit-code policy. Every failure a user can cause or meet ends the process with one line on
 * stderr and one of the codes below; only an unexpected error (a bug) prints more.
 */

/** EXIT lists gorb's exit codes. */
export const EXIT = {
  /** Success. */
  OK: 0,
  /** Unexpected failure (a bug): the message and stack trace go to stderr. */
  UNEXPECTED: 1,
  /** Bad command line: unknown command or flag, missing or malformed argument. */
  USAGE: 2,
  /** The daemon could not be reached (connection refused, DNS failure, timeout). */
  UNREACHABLE: 3,
  /** The service or backend does not exist (HTTP 404, or ESRCH/ENOENT with --direct). */
  NOT_FOUND: 4,
  /** The service or backend already exists (HTTP 409, or EEXIST with --direct). */
  CONFLICT: 5,
  /** The daemon (or the kernel, with --direct) refused the input (HTTP 400/401/403/413/422, EINVAL/ERANGE). */
  REJECTED: 6,
  /** The daemon or the kernel failed (HTTP 5xx, an unexpected answer, or another kernel errno). */
  SERVER: 7,
  /** --direct could not reach IPVS: no ip_vs in the kernel, or libnl could not be loaded. */
  IPVS_UNAVAILABLE: 8,
  /** Interrupted by Ctrl-C before the command finished (128 + SIGINT). */
  INTERRUPTED: 130,
} as const;

/** ExitCode is one of EXIT's values. */
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** CliError is a failure to report as one line on stderr, ending the process with `exitCode`. */
export class CliError extends Error {
  override readonly name: string = "CliError";
  readonly exitCode: ExitCode;

  constructor(exitCode: ExitCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.exitCode = exitCode;
  }
}

/**
 * ApiError is the daemon's error answer: its HTTP status, its `code`, and for a 400 about a field that field and,
 * for a path into an apply's set, the path's segments (null when the answer has none).
 */
export class ApiError extends CliError {
  override readonly name = "ApiError";
  readonly status: number;
  readonly code: string | null;
  readonly field: string | null;
  readonly path: readonly (string | number)[] | null;

  constructor(status: number, message: string, about: { code: string | null; field: string | null; path: readonly (string | number)[] | null }) {
    super(exitCodeForStatus(status), message);
    this.status = status;
    this.code = about.code;
    this.field = about.field;
    this.path = about.path;
  }
}

/** UsageError is a bad command line (exit 2); `usageOf` names the command whose usage to point at. */
export class UsageError extends CliError {
  override readonly name = "UsageError";
  readonly usageOf: string | null;

  constructor(message: string, usageOf: string | null = null) {
    super(EXIT.USAGE, message);
    this.usageOf = usageOf;
  }
}

/** The exit code for an HTTP error status from the daemon. */
export function exitCodeForStatus(status: number): ExitCode {
  if (status === 404) return EXIT.NOT_FOUND;
  if (status === 409) return EXIT.CONFLICT;
  if (status >= 400 && status < 500) return EXIT.REJECTED;
  return EXIT.SERVER;
}
