/**
 * The forms' fields, read at run time from GET /openapi.json (the request bodies of PUT /service/{service} and
 * PUT /service/{service}/{backend}), so the UI shows every field the API takes, with its type, range, choices
 * and description, without a copy of the contract that could drift from it. Works on plain JSON Schema as
 * TypeBox writes it: `$ref` into components, `anyOf`/`oneOf` of `const`s (choices), nullable unions, objects
 * with `properties` (pulse, pulse.args) or free maps (`patternProperties`/`additionalProperties`).
 */
import { isRecord } from "../record.ts";

/** One form field. */
export interface Field {
  readonly name: string;
  readonly kind: "integer" | "number" | "boolean" | "choice" | "text" | "object" | "map";
  readonly description: string;
  /** Choices of a `choice` field. */
  readonly choices: readonly string[];
  readonly min?: number;
  readonly max?: number;
  /** The field's default (the contract's `x-default`), as text for the placeholder. */
  readonly placeholder: string;
  /** The contract's `x-default` as it is (a checkbox starts from it); undefined when the field has none. */
  readonly default: unknown;
  /** Sub-fields of an `object` field. */
  readonly fields: readonly Field[];
  /** A union of text, number and boolean (pulse args): digits are sent as numbers, true/false as booleans. */
  readonly loose: boolean;
}

type Json = Record<string, unknown>;

function resolve(doc: Json, schema: unknown): Json {
  let current: unknown = schema;
  for (let depth = 0; depth < 16 && isRecord(current) && typeof current.$ref === "string"; depth++) {
    const parts = current.$ref.replace(/^#\//, "").split("/");
    let target: unknown = doc;
    for (const part of parts) target = isRecord(target) ? target[part.replace(/~1/g, "/").replace(/~0/g, "~")] : undefined;
    current = target;
  }
  return isRecord(current) ? current : {};
}

/** The alternatives of a union schema, without `null`. */
function alternatives(doc: Json, schema: Json): Json[] {
  const list = (schema.anyOf ?? schema.oneOf) as unknown;
  if (!Array.isArray(list)) return [schema];
  return list.map((s) => resolve(doc, s)).filter((s) => s.type !== "null" && !(Array.isArray(s.type) && s.type.length === 1 && s.type[0] === "null"));
}

function typeOf(schema: Json): string | undefined {
  if (typeof schema.type === "string") return schema.type;
  if (Array.isArray(schema.type)) return (schema.type as unknown[]).find((t) => t !== "null") as string | undefined;
  return undefined;
}

/** Elysia's t.Integer/t.Boolean also accept their text form ({type: "string", format: "integer"}): drop it. */
function withoutTextForms(alts: Json[]): Json[] {
  const real = alts.filter((a) => !(typeOf(a) === "string" && typeof a.format === "string" && a.const === undefined));
  return real.length > 0 && real.every((a) => ["integer", "number", "boolean"].includes(typeOf(a) ?? "")) ? real : alts;
}

function field(doc: Json, name: string, raw: unknown): Field {
  const outer = resolve(doc, raw);
  const alts = withoutTextForms(alternatives(doc, outer));
  const schema = alts.length === 1 ? { ...alts[0], description: alts[0]?.description ?? outer.description } : outer;
  const description = typeof schema.description === "string" ? schema.description : typeof outer.description === "string" ? outer.description : "";
  const fallback = schema["x-default"] ?? outer["x-default"];
  const placeholder = fallback === undefined || fallback === null ? "" : String(fallback);
  const base = { name, description, choices: [] as string[], placeholder, default: fallback ?? undefined, fields: [] as Field[], loose: false };
  const consts = alts.map((a) => a.const);
  if (alts.length > 1 && consts.every((c) => typeof c === "string")) return { ...base, kind: "choice", choices: consts as string[] };
  if (Array.isArray(schema.enum) && schema.enum.every((c) => typeof c === "string")) return { ...base, kind: "choice", choices: schema.enum as string[] };
  if (typeof schema.const === "string") return { ...base, kind: "choice", choices: [schema.const] };
  if (alts.length > 1) return { ...base, kind: "text", loose: true };
  const type = typeOf(schema);
  const range = {
    ...(typeof schema.minimum === "number" ? { min: schema.minimum } : {}),
    ...(typeof schema.maximum === "number" ? { max: schema.maximum } : {}),
  };
  if (type === "integer" || type === "number") return { ...base, kind: type, ...range };
  if (type === "boolean") return { ...base, kind: "boolean" };
  if (type === "object" || isRecord(schema.properties)) {
    if (isRecord(schema.properties) && Object.keys(schema.properties).length > 0) {
      return { ...base, kind: "object", fields: fieldsOf(doc, schema) };
    }
    return { ...base, kind: "map" };
  }
  return { ...base, kind: "text" };
}

function fieldsOf(doc: Json, schema: Json): Field[] {
  const properties = isRecord(schema.properties) ? schema.properties : {};
  return Object.entries(properties)
    .filter(([name]) => name !== "vsid") // accepted and ignored (GORB compatibility): nothing to edit
    .map(([name, raw]) => field(doc, name, raw));
}

/** The body fields of `method` on `path`, or [] when the document does not describe it. */
function bodyFields(doc: unknown, path: string, method: string): Field[] {
  if (!isRecord(doc) || !isRecord(doc.paths)) return [];
  const operation = (doc.paths[path] as Json | undefined)?.[method];
  if (!isRecord(operation)) return [];
  const content = resolve(doc, operation.requestBody).content;
  if (!isRecord(content)) return [];
  const media = (content["application/json"] ?? Object.values(content)[0]) as unknown;
  if (!isRecord(media)) return [];
  return fieldsOf(doc, resolve(doc, media.schema));
}

/** The forms of the UI. */
export interface Forms {
  readonly service: readonly Field[];
  readonly backend: readonly Field[];
}

export function formsOf(doc: unknown): Forms {
  return {
    service: bodyFields(doc, "/service/{service}", "put"),
    backend: bodyFields(doc, "/service/{service}/{backend}", "put"),
  };
}
