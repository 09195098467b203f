/**
 * The pure side of the forms (./forms.tsx): values kept as text by field path ("port", "pulse.args.path"),
 * the edit form's starting values from a GET `options` object, the request body (what was filled in to
 * create; what changed to edit, with the whole pulse when any part of it changed, null for a cleared field),
 * and which field an API error belongs to.
 */
import type { ApiError } from "./errors.ts";
import type { Field } from "./schema.ts";

export type Values = Record<string, string | boolean>;

/** The flat values of a GET `options` object ("pulse.args.path": "/h"), for an edit form. */
export function flatten(fields: readonly Field[], source: Readonly<Record<string, unknown>>, prefix = ""): Values {
  const out: Values = {};
  for (const f of fields) {
    const value = source[f.name];
    const path = prefix + f.name;
    if (f.kind === "object") {
      Object.assign(out, flatten(f.fields, typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {}, `${path}.`));
    } else if (f.kind === "map") {
      const entries = typeof value === "object" && value !== null ? Object.entries(value) : [];
      out[path] = entries.map(([k, v]) => `${k}=${String(v)}`).join("\n");
    } else if (f.kind === "boolean") {
      out[path] = value === true;
    } else {
      out[path] = value === undefined || value === null ? "" : String(value);
    }
  }
  return out;
}

function loose(text: string): string | number | boolean {
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (text === "true" || text === "false") return text === "true";
  return text;
}

function typed(f: Field, value: string | boolean): unknown {
  if (f.kind === "boolean") return value === true;
  const text = String(value).trim();
  if ((f.kind === "integer" || f.kind === "number") && /^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (f.kind === "map") {
    const map: Record<string, unknown> = {};
    for (const line of text.split("\n")) {
      const eq = line.indexOf("=");
      if (line.trim() === "") continue;
      if (eq < 0) map[line.trim()] = true;
      else map[line.slice(0, eq).trim()] = loose(line.slice(eq + 1).trim());
    }
    return map;
  }
  if (f.loose) return loose(text);
  return text; // a non-number in a number field is sent as is: the API's error names the field
}

/** A checkbox's state when the user has not touched it: the contract's default (x-default), else unchecked. */
function booleanDefault(f: Field): boolean {
  return f.default === true;
}

/** The starting values of a create form: every checkbox at its default, so `hash_fallback` starts checked. */
export function startValues(fields: readonly Field[], prefix = ""): Values {
  const out: Values = {};
  for (const f of fields) {
    if (f.kind === "object") Object.assign(out, startValues(f.fields, `${prefix}${f.name}.`));
    else if (f.kind === "boolean" && typeof f.default === "boolean") out[prefix + f.name] = f.default;
  }
  return out;
}

/** Whether a create sends the field: text when not blank; a boolean when it differs from its default. */
function filled(f: Field, value: string | boolean | undefined): boolean {
  return f.kind === "boolean" ? value !== undefined && value !== booleanDefault(f) : value !== undefined && String(value).trim() !== "";
}

/**
 * The body of a create (every filled field; a checkbox when it differs from its default, so unchecking
 * `hash_fallback` sends false) or an edit (changed fields; an object field whole, or null when it was cleared whole).
 */
export function bodyOf(fields: readonly Field[], values: Values, initial: Values | null, prefix = ""): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const f of fields) {
    const path = prefix + f.name;
    if (f.kind === "object") {
      const inner = bodyOf(f.fields, values, null, `${path}.`);
      const changed = initial === null ? Object.keys(inner).length > 0 : Object.keys(values).some((k) => k.startsWith(`${path}.`) && values[k] !== initial[k]);
      // An edit that clears every sub-field clears the field (null, as a cleared field is): `{}` is not "none"
      // (a sorry_server of {} is refused for its missing host, so the sorry server could never be taken away).
      if (changed) body[f.name] = initial !== null && Object.keys(inner).length === 0 ? null : inner;
      continue;
    }
    const value = values[path];
    if (initial === null ? filled(f, value) : value !== initial[path]) {
      body[f.name] = f.kind !== "boolean" && String(value ?? "").trim() === "" ? null : typed(f, value ?? "");
    }
  }
  return body;
}

/**
 * Where an API error goes: "id" when it names the id (the API calls it `service` or `backend`, as `what` says, e.g.
 * `service: id must not contain "/"`) or is a conflict; else the path of the field it names (longest match), or
 * "" (top).
 */
export function errorPath(error: ApiError, paths: readonly string[], what: string): string {
  const named = error.field?.toLowerCase() ?? null;
  if (named === what) return "id";
  if (named !== null) {
    const match = [...paths].sort((a, b) => b.length - a.length).find((p) => named === p || named.startsWith(`${p}.`) || p.startsWith(`${named}.`));
    if (match !== undefined) return match;
  }
  if (error.status === 409) return "id";
  return "";
}

/** Restore's PATCH body: the weight typed, a number when it is one (else as typed: the API's error names weight). */
export function restoreBody(weight: string): { weight: number | string } {
  const text = weight.trim();
  return { weight: /^-?\d+$/.test(text) ? Number(text) : text };
}

/** What is wrong with a form's id before any request, or null: an empty one would be `PUT /service/`, no route. */
export function idProblem(what: string, id: string): string | null {
  return id === "" ? `${what} id: required` : null;
}

export function allPaths(fields: readonly Field[], prefix = ""): string[] {
  return fields.flatMap((f) => (f.kind === "object" ? allPaths(f.fields, `${prefix}${f.name}.`) : [prefix + f.name]));
}

