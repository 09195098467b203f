/**
 * Field maps: a request body reduced to the known fields, keyed by their canonical (lower-case) wire name,
 * as core keeps them (the base of the next PATCH, the rows of the state store). They are built by
 * ./normalize.ts from bodies read and checked against the REST contract (src/contract/check.ts), so every
 * value in one has the contract's type; the getters here only pick values and defaults.
 *
 * Field maps are `Map`s, never plain objects, so a hostile "__proto__" key is just an unknown key.
 */
/** A request body reduced to the known fields, keyed by their canonical (lower-case) wire name. */
export type Fields = Map<string, unknown>;

/**
 * The mark of field maps built from a body the contract accepted (or merged from two such maps): not checked
 * again. A property of the map (not a WeakSet: adding to one was a tenth of reading a body in the emulated guest).
 */
const CHECKED: unique symbol = Symbol("checked fields");
type Marked = Fields & { [CHECKED]?: true };

/** A checked, canonical body (a plain object of known fields) as a field map. */
export function fieldsOf(body: unknown): Fields {
  const fields: Fields = new Map();
  if (typeof body === "object" && body !== null) {
    // Object.keys, not Object.entries: no [name, value] array per field (this runs for every object of an apply).
    const obj = body as Record<string, unknown>;
    for (const name of Object.keys(obj)) fields.set(name, obj[name]);
  }
  (fields as Marked)[CHECKED] = true;
  return fields;
}

/** True when `fields` came from fieldsOf (or a merge of such maps) and has not been changed since. */
export function isChecked(fields: Fields): boolean {
  return (fields as Marked)[CHECKED] === true;
}

/** A field map as a plain object (for a check against the contract). */
export function objectOf(fields: Fields): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of fields) out[name] = value;
  return out;
}

/** `base` with `patch` applied: a patch value replaces the base one, a patch null removes it. */
export function mergeFields(base: Fields, patch: Fields): Fields {
  const merged: Fields = new Map(base);
  for (const [name, value] of patch) {
    if (value === null) merged.delete(name);
    else merged.set(name, value);
  }
  if (isChecked(base) && isChecked(patch)) (merged as Marked)[CHECKED] = true;
  return merged;
}

/** A checked integer field, or `fallback` when absent. */
export function intField<T extends number | null>(fields: Fields, name: string, fallback: T): number | T {
  const value = fields.get(name);
  return typeof value === "number" ? value : fallback;
}

/** A checked boolean field, or `fallback` when absent. */
export function boolField(fields: Fields, name: string, fallback: boolean): boolean {
  const value = fields.get(name);
  return typeof value === "boolean" ? value : fallback;
}

/** A checked string field, or `fallback` when absent. */
export function stringField(fields: Fields, name: string, fallback: string): string {
  const value = fields.get(name);
  return typeof value === "string" ? value : fallback;
}

/** A checked enum field (already lower case, one of `allowed`), or `fallback` when absent. */
export function enumField<T extends string, F extends T | null>(fields: Fields, name: string, allowed: readonly T[], fallback: F): T | F {
  const value = fields.get(name);
  const found = allowed.find((a) => a === value);
  return found ?? fallback;
}
