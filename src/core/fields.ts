/**
 * Reading GORB request bodies the way Go's encoding/json did: object keys match field names case-insensitively
 * ("Port" is "port"), unknown keys are ignored, a later key wins over an earlier one, and a JSON null means
 * "not given". Plus the typed getters the normaliser uses, each of which throws a ValidationError that names
 * the field and the problem ("port: must be 1-65535, got 70000").
 *
 * Field maps are `Map`s, never plain objects, so a hostile "__proto__" key is just an unknown key.
 */
import { ValidationError } from "./errors.ts";

/** A request body reduced to the known fields, keyed by their canonical (lower-case) wire name. */
export type Fields = Map<string, unknown>;

/** A short, quoted description of a value for error messages: "70000", "\"80\"", "an array", "null". */
export function describeValue(value: unknown): string {
  if (typeof value === "string") {
    const text = value.length > 64 ? `${value.slice(0, 61)}...` : value;
    return JSON.stringify(text);
  }
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  if (value === null) return "null";
  if (value === undefined) return "nothing";
  if (Array.isArray(value)) return "an array";
  return `an ${typeof value}`;
}

/** The JSON type name of a value, for "must be a string, got a number". */
function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

/**
 * The known fields of a JSON object. `known` lists the canonical (lower-case) names; keys are compared
 * case-insensitively, unknown keys and null values are dropped. `what` names the object for the error thrown
 * when `raw` is not an object at all.
 */
export function readFields(raw: unknown, known: readonly string[], what: string): Fields {
  if (raw === undefined || raw === null) return new Map();
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new ValidationError(what, `must be a JSON object, got ${typeName(raw)}`);
  }
  const fields: Fields = new Map();
  for (const [key, value] of Object.entries(raw)) {
    const name = key.toLowerCase();
    // A null leaves the field as it was, as Go's decoder did for a non-pointer field.
    if (!known.includes(name) || value === null) continue;
    fields.set(name, value);
  }
  return fields;
}

/**
 * Like readFields, but keeps a null as an explicit null: for PATCH, where null means "back to the default".
 */
export function readPatchFields(raw: unknown, known: readonly string[], what: string): Fields {
  if (raw === undefined || raw === null) return new Map();
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new ValidationError(what, `must be a JSON object, got ${typeName(raw)}`);
  }
  const fields: Fields = new Map();
  for (const [key, value] of Object.entries(raw)) {
    const name = key.toLowerCase();
    if (known.includes(name)) fields.set(name, value);
  }
  return fields;
}

/** `base` with `patch` applied: a patch value replaces the base one, a patch null removes it. */
export function mergeFields(base: Fields, patch: Fields): Fields {
  const merged: Fields = new Map(base);
  for (const [name, value] of patch) {
    if (value === null) merged.delete(name);
    else merged.set(name, value);
  }
  return merged;
}

/** An integer field in [min, max], or `fallback` when absent. */
export function intField(fields: Fields, name: string, min: number, max: number, fallback: number): number;
export function intField(fields: Fields, name: string, min: number, max: number, fallback: null): number | null;
export function intField(fields: Fields, name: string, min: number, max: number, fallback: number | null): number | null {
  if (!fields.has(name)) return fallback;
  return checkInt(name, fields.get(name), min, max);
}

/** `value` as an integer in [min, max]; throws a ValidationError naming `field` otherwise. */
export function checkInt(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new ValidationError(field, `must be an integer ${min}-${max}, got ${describeValue(value)}`);
  }
  if (value < min || value > max) throw new ValidationError(field, `must be ${min}-${max}, got ${describeValue(value)}`);
  return value;
}

/** A boolean field, or `fallback` when absent. */
export function boolField(fields: Fields, name: string, fallback: boolean): boolean {
  if (!fields.has(name)) return fallback;
  const value = fields.get(name);
  if (typeof value !== "boolean") throw new ValidationError(name, `must be true or false, got ${describeValue(value)}`);
  return value;
}

/** A string field, or `fallback` when absent. */
export function stringField(fields: Fields, name: string, fallback: string): string {
  if (!fields.has(name)) return fallback;
  const value = fields.get(name);
  if (typeof value !== "string") throw new ValidationError(name, `must be a string, got ${describeValue(value)}`);
  return value;
}

/**
 * A string field that must be one of `allowed` after lower-casing; absent or "" gives `fallback` (Go's zero
 * value meant "use the default").
 */
export function enumField<T extends string>(fields: Fields, name: string, allowed: readonly T[], fallback: T): T;
export function enumField<T extends string>(fields: Fields, name: string, allowed: readonly T[], fallback: null): T | null;
export function enumField<T extends string>(
  fields: Fields,
  name: string,
  allowed: readonly T[],
  fallback: T | null,
): T | null {
  const text = stringField(fields, name, "");
  if (text === "") return fallback;
  const lower = text.toLowerCase();
  const found = allowed.find((a) => a === lower);
  if (found === undefined) {
    throw new ValidationError(name, `must be one of ${allowed.join(", ")}, got ${describeValue(text)}`);
  }
  return found;
}
