/**
 * Paths into a declarative document, for error messages: "services.web.backends.b1.port". A segment that is
 * not a plain name (an id with a dot, a space, a quote...) is written in brackets: services["api.v2"].port.
 */
import { ConflictError, ValidationError } from "./errors.ts";

/** One step of a path: an object key or a list index. */
export type PathSegment = string | number;

const PLAIN = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** The text of a path made of `segments` (numbers are list indexes: services[0]); "(top level)" for none. */
export function formatPath(segments: readonly PathSegment[]): string {
  if (segments.length === 0) return "(top level)";
  let out = "";
  for (const segment of segments) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (PLAIN.test(segment)) out += out === "" ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/**
 * PathError is a ValidationError about a value deep in a document; `field` is the formatted path and `path`
 * keeps its segments (so a configuration file error can be traced back to its line).
 */
export class PathError extends ValidationError {
  readonly path: readonly PathSegment[];

  constructor(path: readonly PathSegment[], problem: string, options?: { cause?: unknown }) {
    super(formatPath(path), problem, options);
    this.path = path;
  }
}

/**
 * PathConflictError is a ConflictError (409) about an object of a declarative set, at `path` ("services.web.backends.b1:
 * 10.1.0.1:80 is also the address of services.web.backends.b2"); `field` is the formatted path.
 */
export class PathConflictError extends ConflictError {
  readonly path: readonly PathSegment[];
  readonly field: string;

  constructor(path: readonly PathSegment[], problem: string) {
    super(`${formatPath(path)}: ${problem}`);
    this.path = path;
    this.field = formatPath(path);
  }
}

/**
 * A ValidationError about a field of a request body, re-addressed under `prefix`: "port: must be 1-65535"
 * under ["services", "web"] becomes the PathError "services.web.port: must be 1-65535". Other errors pass
 * through unchanged.
 */
export function underPath(error: unknown, prefix: readonly PathSegment[]): unknown {
  if (error instanceof PathError) return new PathError([...prefix, ...error.path], error.problem, { cause: error });
  if (!(error instanceof ValidationError)) return error;
  const field = error.field === "body" ? [] : error.field.split(".");
  return new PathError([...prefix, ...field], error.problem, { cause: error });
}
