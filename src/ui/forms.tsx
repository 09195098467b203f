/**
 * The service and backend forms, built from the fields of GET /openapi.json (./schema.ts). Values are kept as
 * text by field path ("port", "pulse.args.path"); the body holds what was filled in (create) or what changed
 * (edit: PATCH, with the whole pulse when any part of it changed). An error from the API is shown under the
 * field its message names, with the status and code; one naming no field of the form is shown above it.
 */
import { useState } from "preact/hooks";
import { ApiError } from "./api.ts";
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

function filled(f: Field, value: string | boolean | undefined): boolean {
  return f.kind === "boolean" ? value === true : value !== undefined && String(value).trim() !== "";
}

/** The body of a create (every filled field) or an edit (changed fields; an object field whole). */
export function bodyOf(fields: readonly Field[], values: Values, initial: Values | null, prefix = ""): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const f of fields) {
    const path = prefix + f.name;
    if (f.kind === "object") {
      const inner = bodyOf(f.fields, values, null, `${path}.`);
      const changed = initial === null ? Object.keys(inner).length > 0 : Object.keys(values).some((k) => k.startsWith(`${path}.`) && values[k] !== initial[k]);
      if (changed) body[f.name] = inner;
      continue;
    }
    const value = values[path];
    if (initial === null ? filled(f, value) : value !== initial[path]) {
      body[f.name] = f.kind !== "boolean" && String(value ?? "").trim() === "" ? null : typed(f, value ?? "");
    }
  }
  return body;
}

/** Where an API error goes: the path of the field it names (longest match), "id" for a conflict, or "" (top). */
export function errorPath(error: ApiError, paths: readonly string[]): string {
  const named = error.field?.toLowerCase() ?? null;
  if (named !== null) {
    const match = [...paths].sort((a, b) => b.length - a.length).find((p) => named === p || named.startsWith(`${p}.`) || p.startsWith(`${named}.`));
    if (match !== undefined) return match;
  }
  if (error.status === 409) return "id";
  return "";
}

function allPaths(fields: readonly Field[], prefix = ""): string[] {
  return fields.flatMap((f) => (f.kind === "object" ? allPaths(f.fields, `${prefix}${f.name}.`) : [prefix + f.name]));
}

/** "409 CONFLICT: service "web" already exists" */
export function describeError(error: ApiError): string {
  return `${error.status === 0 ? "" : `${error.status} `}${error.code === "" ? "" : `${error.code}: `}${error.message}`;
}

interface InputProps {
  readonly field: Field;
  readonly path: string;
  readonly value: string | boolean | undefined;
  readonly error: string | undefined;
  readonly onInput: (path: string, value: string | boolean) => void;
  readonly formId: string;
}

function FieldInput({ field, path, value, error, onInput, formId }: InputProps) {
  const id = `${formId}-${path.replace(/\./g, "-")}`;
  const help = field.description === "" ? undefined : `${id}-help`;
  const errId = `${id}-error`;
  const common = {
    id,
    name: path,
    "aria-invalid": error !== undefined,
    "aria-describedby": [error !== undefined ? errId : "", help ?? ""].join(" ").trim() || undefined,
  };
  let input;
  if (field.kind === "boolean") {
    input = <input type="checkbox" {...common} checked={value === true} onChange={(e) => onInput(path, e.currentTarget.checked)} />;
  } else if (field.kind === "choice") {
    input = (
      <select {...common} value={String(value ?? "")} onChange={(e) => onInput(path, e.currentTarget.value)}>
        <option value="">{field.placeholder === "" ? "(default)" : `(default: ${field.placeholder})`}</option>
        {field.choices.map((c) => (
          <option value={c} key={c}>
            {c}
          </option>
        ))}
      </select>
    );
  } else if (field.kind === "map") {
    input = <textarea {...common} rows={3} placeholder="key=value, one per line" value={String(value ?? "")} onInput={(e) => onInput(path, e.currentTarget.value)} />;
  } else {
    const numeric = field.kind === "integer" || field.kind === "number";
    input = (
      <input
        type="text"
        inputMode={numeric ? "numeric" : undefined}
        {...common}
        placeholder={field.placeholder || (numeric && field.min !== undefined && field.max !== undefined ? `${field.min}-${field.max}` : "")}
        value={String(value ?? "")}
        onInput={(e) => onInput(path, e.currentTarget.value)}
      />
    );
  }
  return (
    <div class={`field field-${field.kind}${error !== undefined ? " has-error" : ""}`}>
      <label for={id}>{path.split(".").slice(-1)[0]?.replace(/_/g, " ")}</label>
      {input}
      {help !== undefined && (
        <small id={help} class="help">
          {field.description}
        </small>
      )}
      {error !== undefined && (
        <p id={errId} class="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

function FieldSet(props: { fields: readonly Field[]; prefix: string; values: Values; errors: Record<string, string>; onInput: InputProps["onInput"]; formId: string; legend?: string }) {
  const inner = props.fields.map((f) =>
    f.kind === "object" ? (
      <FieldSet key={f.name} fields={f.fields} prefix={`${props.prefix}${f.name}.`} values={props.values} errors={props.errors} onInput={props.onInput} formId={props.formId} legend={props.prefix + f.name} />
    ) : (
      <FieldInput key={f.name} field={f} path={props.prefix + f.name} value={props.values[props.prefix + f.name]} error={props.errors[props.prefix + f.name]} onInput={props.onInput} formId={props.formId} />
    ),
  );
  if (props.legend === undefined) return <div class="fields">{inner}</div>;
  return (
    <fieldset>
      <legend>{props.legend}</legend>
      <div class="fields">{inner}</div>
    </fieldset>
  );
}

export interface EntityFormProps {
  /** "service" or "backend": names the id field and the form. */
  readonly what: string;
  readonly fields: readonly Field[];
  /** The id when editing (read-only then); null to create. */
  readonly id: string | null;
  readonly initial: Values | null;
  readonly submitLabel: string;
  readonly onSubmit: (id: string, body: Record<string, unknown>) => Promise<void>;
  readonly onCancel: () => void;
}

/** A create or edit form; on an ApiError it shows the error next to the field and keeps the values. */
export function EntityForm({ what, fields, id, initial, submitLabel, onSubmit, onCancel }: EntityFormProps) {
  const [values, setValues] = useState<Values>(initial ?? {});
  const [name, setName] = useState(id ?? "");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const formId = `${what}-form`;
  const onInput = (path: string, value: string | boolean) => setValues((v) => ({ ...v, [path]: value }));
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setErrors({});
    try {
      await onSubmit(name, bodyOf(fields, values, initial));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      setErrors({ [errorPath(error, ["id", ...allPaths(fields)])]: describeError(error) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="entity-form" onSubmit={submit} aria-label={`${submitLabel} form`} noValidate>
      {errors[""] !== undefined && (
        <p class="error form-error" role="alert">
          {errors[""]}
        </p>
      )}
      <div class={`field field-id${errors.id !== undefined ? " has-error" : ""}`}>
        <label for={`${formId}-id`}>{what} id</label>
        <input
          id={`${formId}-id`}
          name="id"
          value={name}
          readOnly={id !== null}
          required
          autoFocus={id === null}
          aria-invalid={errors.id !== undefined}
          aria-describedby={errors.id !== undefined ? `${formId}-id-error` : undefined}
          onInput={(e) => setName(e.currentTarget.value)}
        />
        {errors.id !== undefined && (
          <p id={`${formId}-id-error`} class="error" role="alert">
            {errors.id}
          </p>
        )}
      </div>
      <FieldSet fields={fields} prefix="" values={values} errors={errors} onInput={onInput} formId={formId} />
      <div class="buttons">
        <button type="submit" class="primary" disabled={busy}>
          {submitLabel}
        </button>
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
