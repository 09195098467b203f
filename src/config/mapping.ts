/**
 * The shape checks every part of a configuration document shares: a value that must be a mapping, and keys that
 * must be known. Each problem is a PathError naming the path.
 */
import { PathError, type PathSegment } from "../core/path.ts";

/** True for a mapping (an object that is not a list or a date). */
function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (value instanceof Date) return "a date";
  return `a ${typeof value}`;
}

/** `value` as a mapping; a PathError at `path` otherwise. */
export function mapping(value: unknown, path: readonly PathSegment[], what: string): Record<string, unknown> {
  if (!isMapping(value)) throw new PathError(path, `must be a mapping of ${what}, got ${typeName(value)}`);
  return value;
}

/**
 * Throws for the first key of `obj` that is not in `known`. Service and backend fields are compared
 * lower-case, as the API reads them (`anyCase`); a file's settings must be written as documented.
 */
export function refuseUnknown(obj: Record<string, unknown>, known: readonly string[], path: readonly PathSegment[], anyCase = true): void {
  let names = KNOWN.get(known);
  if (names === undefined) KNOWN.set(known, (names = new Set(known)));
  for (const key of Object.keys(obj)) {
    if (!names.has(anyCase ? key.toLowerCase() : key)) {
      throw new PathError([...path, key], `unknown field; known: ${known.join(", ")}`);
    }
  }
}

/** The known names of each list refuseUnknown is given (the lists are constants), as a set. */
const KNOWN = new WeakMap<readonly string[], ReadonlySet<string>>();
