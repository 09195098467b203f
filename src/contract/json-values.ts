/**
 * What a JSON value is, in words and in kind, without the contract's schemas: small enough for the CLI to load
 * when it only reads a file and sends it.
 */

/** How an error message names a date or time a YAML or TOML file holds (see isDateValue). */
export const DATE_OR_TIME = "a date or time";

/** A short, quoted description of a value for error messages: "70000", "\"80\"", "an array", "null", DATE_OR_TIME. */
export function describeValue(value: unknown): string {
  if (typeof value === "string") {
    const text = value.length > 64 ? `${value.slice(0, 61)}...` : value;
    return JSON.stringify(text);
  }
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  if (value === null) return "null";
  if (value === undefined) return "nothing";
  if (Array.isArray(value)) return "an array";
  if (isDateValue(value)) return DATE_OR_TIME;
  return `an ${typeof value}`;
}

/**
 * True for a date or time a YAML or TOML file can hold unquoted (`port = 2024-01-01`, `interval = 00:00:05`):
 * Bun.TOML gives Temporal values (Temporal.PlainDate, PlainTime, ...), objects without own keys, and a Date is one too.
 */
export function isDateValue(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (value instanceof Date) return true;
  // A mapping or a list as JSON.parse gives them (every object of an API body): no tag to build and read.
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto === Object.prototype || proto === Array.prototype || proto === null) return false;
  return Object.prototype.toString.call(value).startsWith("[object Temporal.");
}

/**
 * True for a mapping as JSON.parse gives one: an object whose prototype is Object.prototype or null. A date or time
 * of a file (isDateValue), a list or any other object is not, so it is never read as an empty mapping.
 */
export function isPlainMapping(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * True when `value` holds only what JSON.parse gives (strings, finite numbers, booleans, null, plain objects and
 * arrays) no deeper than `maxDepth`. Anything else (a YAML NaN, a TOML date, undefined) would turn into something
 * else in JSON text: null, a string, nothing.
 */
export function isPlainJson(value: unknown, maxDepth: number): boolean {
  if (value === null || typeof value === "string" || typeof value === "boolean") return true;
  if (typeof value === "number") return Number.isFinite(value);
  if (typeof value !== "object" || maxDepth <= 0) return false;
  if (Array.isArray(value)) {
    for (const item of value) if (!isPlainJson(item, maxDepth - 1)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return false;
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) if (!isPlainJson(obj[key], maxDepth - 1)) return false;
  return true;
}

/** The JSON type name of a value, for "must be a JSON object, got array". */
export function jsonTypeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}
