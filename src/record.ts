/**
 * isRecord: whether a value read from outside (parsed JSON, YAML, a saved row) is an object whose keys can be read,
 * the one test every layer uses. Not null, not an array; any other object is one, a class instance too (parsed
 * JSON holds none). api/json.ts's isPlainObject is another test: only an object JSON.stringify writes key by key.
 */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
