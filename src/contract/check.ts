/**
 * Reading a body against the contract, in two steps that every way in shares (API, configuration file,
 * apply, saved state):
 *
 * 1. `canonicalBody` reads it the way Go's encoding/json did for the original: keys match field names
 *    case-insensitively ("Port" is "port", a later key wins), unknown keys are dropped (so nothing gorb does not
 *    use is kept, stored or echoed: `vsid`, comments, args a pulse type does not read), enum values are
 *    lower-cased and "" means "the default". A JSON null means "not given" (PUT) or "back to the default"
 *    (PATCH). The result has only known keys, so a hostile "__proto__" is just dropped.
 * 2. `contractProblem` checks it against a TypeBox schema and says what is wrong in gorb's words:
 *    `{field: "port", problem: "must be 1-65535, got 70000"}`. The API maps Elysia's validation errors with
 *    `describeValueError`, so both paths word a problem the same way.
 */
import type { TSchema } from "@sinclair/typebox";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";
import type { ValueError } from "@sinclair/typebox/errors";
import { PULSE_ARG_KEYS, PULSE_TYPES, type PulseType, pickFolded, saysVip } from "../health/options.ts";
import { describeValue, isPlainMapping, jsonTypeName } from "./json-values.ts";
import { BACKEND_FIELD_DEFS, DRAIN_FIELD_DEFS, PULSE_FIELDS, SERVICE_FIELD_DEFS, SORRY_FIELDS, type FieldDef } from "./fields.ts";

/** A problem with one field: the dotted path of the field and what is wrong with it. */
export interface ContractProblem {
  readonly field: string;
  readonly problem: string;
}

/** PUT reads null as "not given"; PATCH keeps it as "back to the default". */
export type BodyMode = "put" | "patch";

/** The pulse type `value` names (any case; absent, null or "": the default), or null when it names none. */
function pulseTypeOf(value: unknown): PulseType | null {
  if (value === undefined || value === null || value === "") return PULSE_TYPES[0];
  const name = typeof value === "string" ? value.trim().toLowerCase() : null;
  return PULSE_TYPES.find((t) => t === name) ?? null;
}

/**
 * A pulse with its keys folded, its type lower-cased and the args its type does not read dropped. A null or ""
 * member is left out, in a PATCH too: a pulse is replaced whole, so a member left out is its default (the
 * original's clients write `{"type": "", "interval": "", "args": null}` for an unset pulse, and GET shows
 * `"args": null`).
 */
function canonicalPulse(raw: unknown): unknown {
  if (!isPlainMapping(raw)) return raw;
  const out: Record<string, unknown> = {};
  for (const name of PULSE_FIELDS) {
    let value = pickFolded(raw, name);
    if (value === undefined) continue;
    if (name === "type" && typeof value === "string") value = value.trim().toLowerCase();
    if (value === null || value === "") continue;
    out[name] = value;
  }
  const type = pulseTypeOf(out.type);
  if (isPlainMapping(out.args) && type !== null) {
    const args = out.args;
    const kept: Record<string, unknown> = {};
    for (const key of PULSE_ARG_KEYS[type]) if (Object.hasOwn(args, key)) kept[key] = args[key];
    // A "vip" the type cannot honour is kept, for the pulse's check to refuse (parsePulseOptions).
    if (Object.hasOwn(args, "via") && saysVip(args.via)) kept.via = args.via;
    out.args = kept;
  }
  return out;
}

/** Every key of a pulse's args that some pulse type reads. */
const ANY_PULSE_ARG: ReadonlySet<string> = new Set(Object.values(PULSE_ARG_KEYS).flat());

/**
 * The first key of a pulse's `args` that no pulse type reads (args are exact-case: `Path` is not `path`), with what
 * to say of it; null when there is none, or when `type` (as given: any case, "" or absent for the default) is not a
 * pulse type (the field checks say so). An arg another type reads (`path` under a tcp pulse) is dropped by
 * canonicalPulse, as the API drops it; a configuration file refuses only what can only be a typo.
 */
export function unknownPulseArg(type: unknown, args: Readonly<Record<string, unknown>>): { readonly key: string; readonly problem: string } | null {
  const name = pulseTypeOf(type);
  if (name === null) return null;
  const key = Object.keys(args).find((k) => !ANY_PULSE_ARG.has(k));
  if (key === undefined) return null;
  const known = PULSE_ARG_KEYS[name];
  return { key, problem: known.length === 0 ? `unknown arg (type ${name} reads none)` : `unknown arg; type ${name} reads: ${known.join(", ")}` };
}

/** A sorry server with its keys folded and its method lower-cased; unknown keys dropped. */
function canonicalServer(raw: unknown): unknown {
  if (!isPlainMapping(raw)) return raw;
  const out: Record<string, unknown> = {};
  for (const name of SORRY_FIELDS) {
    let value = pickFolded(raw, name);
    if (value === undefined || value === null || value === "") continue;
    if (name === "method" && typeof value === "string") value = value.trim().toLowerCase();
    if (name === "host" && typeof value === "string") value = value.trim();
    out[name] = value;
  }
  return out;
}

/**
 * The known fields of a body in canonical form (see the module comment). A body that is not an object is
 * returned as it is (the schema check then says so); undefined and null are {}.
 */
function canonicalBody(raw: unknown, defs: Readonly<Record<string, FieldDef>>, mode: BodyMode): unknown {
  if (raw === undefined || raw === null) return {};
  if (!isPlainMapping(raw)) return raw;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(raw)) {
    const name = key.toLowerCase();
    if (!Object.hasOwn(defs, name)) continue;
    const def = defs[name] as FieldDef;
    let value = raw[key];
    if (def.kind === "enum" && typeof value === "string") value = value.toLowerCase();
    if (def.kind === "pulse") value = canonicalPulse(value);
    if (def.kind === "server") value = canonicalServer(value);
    if (value === null || (def.kind === "enum" && value === "")) {
      // PUT: null and "" leave the field out (Go left a non-pointer field alone). PATCH: back to the default.
      if (mode === "patch") out[name] = null;
      continue;
    }
    out[name] = value;
  }
  return out;
}

/** A service body in canonical form. */
export function canonicalServiceBody(raw: unknown, mode: BodyMode = "put"): unknown {
  return canonicalBody(raw, SERVICE_FIELD_DEFS, mode);
}

/** A backend body in canonical form. */
export function canonicalBackendBody(raw: unknown, mode: BodyMode = "put"): unknown {
  return canonicalBody(raw, BACKEND_FIELD_DEFS, mode);
}

/** A drain body (POST /service/:service/:backend/drain) in canonical form. */
export function canonicalDrainBody(raw: unknown): unknown {
  return canonicalBody(raw, DRAIN_FIELD_DEFS, "put");
}

/**
 * The members of a union schema, without the null a PATCH schema adds; a union of one member and null (a PATCH
 * field whose own schema is a union, such as an enum) gives that member's members.
 */
function members(schema: TSchema): TSchema[] {
  const anyOf = (schema as { anyOf?: TSchema[] }).anyOf;
  if (!Array.isArray(anyOf)) return [schema];
  const kept = anyOf.filter((s) => (s as { type?: unknown }).type !== "null");
  const only = kept.length === 1 ? kept[0] : undefined;
  return only !== undefined && kept.length < anyOf.length ? members(only) : kept;
}

/** The schema a PATCH field wraps as "it or null", or null when `schema` is not such a union. */
function nullableInner(schema: TSchema): TSchema | null {
  const anyOf = (schema as { anyOf?: TSchema[] }).anyOf;
  if (!Array.isArray(anyOf) || anyOf.length !== 2) return null;
  const kept = anyOf.filter((s) => (s as { type?: unknown }).type !== "null");
  return kept.length === 1 ? (kept[0] ?? null) : null;
}

function range(schema: TSchema): string {
  const s = schema as { minimum?: number; maximum?: number; "x-range"?: string };
  return s["x-range"] ?? `${s.minimum ?? ""}-${s.maximum ?? ""}`;
}

/** A JSON Schema type in gorb's words, with its article: "a string", "an integer", "a list". */
function typeWord(type: string): string {
  if (type === "array") return "a list";
  if (type === "boolean") return "true or false";
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/** What is wrong with a list `value` that `schema` (an array schema) refused: too many items, or its first bad item. */
function listProblem(schema: TSchema, value: readonly unknown[]): string {
  const { maxItems, items } = schema as { maxItems?: number; items?: TSchema };
  if (maxItems !== undefined && value.length > maxItems) return `must have at most ${maxItems} items, got ${value.length}`;
  if (items !== undefined) {
    const check = compiledCheck(items);
    const bad = value.findIndex((item) => !check.Check(item));
    if (bad >= 0) return `item ${bad + 1} ${problemOf(items, value[bad], false)}`;
  }
  return `is not a valid list, got ${describeValue(value)}`;
}

/** What a value must be, in gorb's words, for a schema (and the value it failed with). */
function problemOf(schema: TSchema, value: unknown, root: boolean): string {
  const custom = (schema as { "x-problem"?: unknown })["x-problem"];
  const got = describeValue(value);
  const options = members(schema);
  if (options.length > 1) {
    const literals = options.map((s) => (s as { const?: unknown }).const);
    if (literals.every((l) => typeof l === "string")) {
      if (typeof value !== "string") return `must be a string, got ${got}`;
      return `must be one of ${literals.join(", ")}, got ${got}`;
    }
    // A value of one member's type is described against that member ("at most 2048 characters", "item 2: ...").
    const kind = typeof value === "number" && Number.isInteger(value) ? ["integer", "number"] : Array.isArray(value) ? ["array"] : [typeof value];
    const same = options.find((s) => kind.includes(String((s as { type?: unknown }).type)));
    if (same !== undefined) return problemOf(same, value, root);
    return `must be ${options.map((s) => typeWord(String((s as { type?: unknown }).type))).join(" or ")}, got ${got}`;
  }
  const single = options[0] ?? schema;
  const type = (single as { type?: unknown }).type;
  const literal = (single as { const?: unknown }).const;
  if (typeof literal === "string") {
    return typeof value === "string" ? `must be one of ${literal}, got ${got}` : `must be a string, got ${got}`;
  }
  switch (type) {
    case "integer":
    case "number": {
      if (typeof value !== "number" || (type === "integer" && !Number.isInteger(value))) {
        return `must be an integer ${range(single)}, got ${got}`;
      }
      // JSON's 1e400 parses to Infinity, which no number schema takes; one without bounds has no range to show.
      if (!Number.isFinite(value)) return `must be a finite number, got ${got}`;
      return `must be ${range(single)}, got ${got}`;
    }
    case "boolean":
      return `must be true or false, got ${got}`;
    case "string": {
      if (typeof value !== "string") {
        const anyType = (single as { "x-problem-any-type"?: unknown })["x-problem-any-type"] === true;
        return anyType && typeof custom === "string" ? `${custom}, got ${got}` : `must be a string, got ${got}`;
      }
      if (typeof custom === "string") return `${custom}, got ${got}`;
      const max = (single as { maxLength?: number }).maxLength;
      if (max !== undefined && value.length > max) return `must be at most ${max} characters, got ${value.length}`;
      return `is not valid, got ${got}`;
    }
    case "object":
      if (root) return `must be a JSON object, got ${jsonTypeName(value)}`;
      if (typeof custom === "string") return `${custom}, got ${got}`;
      return `must be an object, got ${got}`;
    case "array":
      return Array.isArray(value) ? listProblem(single, value) : `must be a list, got ${got}`;
    default:
      return `is not valid, got ${got}`;
  }
}

/** "pulse.args.port" from a JSON pointer "/pulse/args/port"; "" is `root`. */
function fieldOfPointer(pointer: string, root: string): string {
  if (pointer === "" || pointer === "/") return root;
  return pointer
    .replace(/^\//, "")
    .split("/")
    .map((p) => p.replaceAll("~1", "/").replaceAll("~0", "~"))
    .join(".");
}

/** A TypeBox validation error (from TypeBox or from Elysia) as a field and a problem in gorb's words. */
export function describeValueError(error: Pick<ValueError, "path" | "schema" | "value">, root = "body"): ContractProblem {
  return describeAt(error, root, true);
}

/** describeValueError; `top`: the value checked is the body itself (its own problem is "must be a JSON object"). */
function describeAt(error: Pick<ValueError, "path" | "schema" | "value">, root: string, top: boolean): ContractProblem {
  const atRoot = error.path === "" || error.path === "/";
  const field = fieldOfPointer(error.path, root);
  // A PATCH field is "its schema or null", and TypeBox reports a value that is neither at the union: check the
  // value against the field's own schema, so PATCH names the same field and problem as PUT ("pulse.interval").
  const inner = error.value === null ? null : nullableInner(error.schema);
  if (inner !== null) {
    const nested = firstProblem(inner, error.value, field, top && atRoot);
    if (nested !== null) return nested.field === field ? nested : { field: `${field}.${nested.field}`, problem: nested.problem };
  }
  return { field, problem: problemOf(error.schema, error.value, top && atRoot) };
}

const compiled = new WeakMap<TSchema, TypeCheck<TSchema>>();

/** The compiled check of `schema`, compiled on first use. */
function compiledCheck(schema: TSchema): TypeCheck<TSchema> {
  let check = compiled.get(schema);
  if (check === undefined) {
    check = TypeCompiler.Compile(schema);
    compiled.set(schema, check);
  }
  return check;
}

/**
 * Compile the checks of `schemas` ahead of their first use, one per turn of the event loop (each is a few tenths
 * of a millisecond on a server, a tenth of a second in the emulated test guest): the daemon does it once it
 * listens, so the first apply does not pay for it.
 */
export async function compileChecks(schemas: readonly TSchema[]): Promise<void> {
  for (const schema of schemas) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    compiledCheck(schema);
  }
}

/** The first problem of `value` against `schema`, or null when it conforms. `root` names the value itself. */
export function contractProblem(schema: TSchema, value: unknown, root = "body"): ContractProblem | null {
  return firstProblem(schema, value, root, true);
}

function firstProblem(schema: TSchema, value: unknown, root: string, top: boolean): ContractProblem | null {
  const check = compiledCheck(schema);
  if (check.Check(value)) return null;
  const first = check.Errors(value).First();
  if (first === undefined) return { field: root, problem: "is not valid" };
  return describeAt(first, root, top);
}
