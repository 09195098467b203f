/**
 * The shape checks every part of a configuration document shares: a value that must be a mapping, and keys that
 * must be known. Each problem is a PathError naming the path.
 */
import { DATE_OR_TIME, isDateValue, isPlainMapping } from "../contract/json-values.ts";
import { PathError, type PathSegment } from "../core/path.ts";

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (isDateValue(value)) return DATE_OR_TIME;
  return `a ${typeof value}`;
}

/** `value` as a mapping; a PathError at `path` otherwise. */
export function mapping(value: unknown, path: readonly PathSegment[], what: string): Record<string, unknown> {
  if (!isPlainMapping(value)) throw new PathError(path, `must be a mapping of ${what}, got ${typeName(value)}`);
  return value;
}

/**
 * Throws for the first key of `obj` that is not in `known`. Service and backend fields are compared
 * lower-case, as the API reads them (`anyCase`), so two keys that differ only in case (`port` and `Port`) are one
 * field given twice, refused as a duplicate key is (one of them would be dropped without a word); a file's settings
 * must be written as documented.
 */
export function refuseUnknown(obj: Record<string, unknown>, known: readonly string[], path: readonly PathSegment[], anyCase = true): void {
  let names = KNOWN.get(known);
  if (names === undefined) KNOWN.set(known, (names = new Set(known)));
  const keys = Object.keys(obj);
  // Keys already lower-case (nearly every body) cannot repeat one another: the map of keys seen is built only from
  // the first key that is not, with the keys before it (this runs for every backend of an apply).
  let seen: Map<string, string> | null = null;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    const name = anyCase ? key.toLowerCase() : key;
    if (!names.has(name)) {
      throw new PathError([...path, key], `unknown field; known: ${known.join(", ")}`);
    }
    if (seen === null) {
      if (name === key) continue;
      seen = new Map(keys.slice(0, i).map((k) => [k, k]));
    }
    const first = seen.get(name);
    if (first !== undefined) {
      throw new PathError([...path, key], `the same field as ${JSON.stringify(first)} (fields are read in any case): give it once`);
    }
    seen.set(name, key);
  }
}

/** The known names of each list refuseUnknown is given (the lists are constants), as a set. */
const KNOWN = new WeakMap<readonly string[], ReadonlySet<string>>();
