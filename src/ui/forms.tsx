/**
 * The service and backend forms, built from the fields of GET /openapi.json (./schema.ts). Values are kept as
 * text by field path ("port", "pulse.args.path"); the body holds what was filled in (create) or what changed
 * (edit: PATCH, with the whole pulse when any part of it changed). An error from the API is shown under the
 * field its message names, with the status and code; one naming no field of the form is shown above it. Focus
 * goes to where the error is shown, which scrolls it into view.
 */
import { useLayoutEffect, useRef, useState } from "preact/hooks";
import { ApiError, describeError } from "./errors.ts";
import { type Values, allPaths, bodyOf, errorPath, idProblem, startValues } from "./form-body.ts";
import type { Field } from "./schema.ts";

interface InputProps {
  readonly field: Field;
  readonly path: string;
  readonly value: string | boolean | undefined;
  readonly error: string | undefined;
  readonly onInput: (path: string, value: string | boolean) => void;
  readonly formId: string;
  /** The field a dialog opened on this form focuses (the first one that can be edited). */
  readonly autoFocus: boolean;
}

/** The element of the field at `path` ("pulse.args.port": `${formId}-pulse-args-port`); "" is the error above the fields. */
function elementId(formId: string, path: string): string {
  return path === "" ? `${formId}-top-error` : `${formId}-${path.replace(/\./g, "-")}`;
}

function FieldInput({ field, path, value, error, onInput, formId, autoFocus }: InputProps) {
  const id = elementId(formId, path);
  const help = field.description === "" ? undefined : `${id}-help`;
  const errId = `${id}-error`;
  const common = {
    id,
    name: path,
    autoFocus,
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

/** The path of the first field of `fields` (depth first), or null. */
function firstPath(fields: readonly Field[], prefix = ""): string | null {
  const first = fields[0];
  if (first === undefined) return null;
  return first.kind === "object" ? firstPath(first.fields, `${prefix}${first.name}.`) : prefix + first.name;
}

function FieldSet(props: { fields: readonly Field[]; prefix: string; values: Values; errors: Record<string, string>; onInput: InputProps["onInput"]; formId: string; focus: string | null; legend?: string }) {
  const inner = props.fields.map((f) =>
    f.kind === "object" ? (
      <FieldSet key={f.name} fields={f.fields} prefix={`${props.prefix}${f.name}.`} values={props.values} errors={props.errors} onInput={props.onInput} formId={props.formId} focus={props.focus} legend={props.prefix + f.name} />
    ) : (
      <FieldInput key={f.name} field={f} path={props.prefix + f.name} value={props.values[props.prefix + f.name]} error={props.errors[props.prefix + f.name]} onInput={props.onInput} formId={props.formId} autoFocus={props.focus === props.prefix + f.name} />
    ),
  );
  if (props.legend === undefined) return <div class="fields">{inner}</div>;
  if (props.prefix.split(".").length > 2) {
    // A second-level group (pulse.args): folded unless one of its fields has a value or an error.
    const used = Object.keys(props.values).some((k) => k.startsWith(props.prefix) && props.values[k] !== "") || Object.keys(props.errors).some((k) => k.startsWith(props.prefix));
    return (
      <details class="group" open={used}>
        <summary>{props.legend}</summary>
        <div class="fields">{inner}</div>
      </details>
    );
  }
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
  const [values, setValues] = useState<Values>(initial ?? startValues(fields));
  const [name, setName] = useState(id ?? "");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const formId = `${what}-form`;
  // After a refused submit, focus goes to the field the error is under: it is scrolled into view (a long form sent
  // from its bottom button had it out of sight, or in a folded group), and the focus is not left on <body> (the
  // button is disabled while busy).
  const focusAfter = useRef<string | null>(null);
  useLayoutEffect(() => {
    if (focusAfter.current === null) return;
    const el = document.getElementById(elementId(formId, focusAfter.current));
    focusAfter.current = null;
    if (el === null) return;
    // A group the user folded (pulse.args) stays folded on a re-render: open it, or the error is hidden in it.
    for (let group = el.closest("details"); group !== null; group = group.parentElement?.closest("details") ?? null) group.open = true;
    el.focus();
  }, [errors]);
  const refuse = (path: string, message: string) => {
    focusAfter.current = path;
    setErrors({ [path]: message });
  };
  const onInput = (path: string, value: string | boolean) => setValues((v) => ({ ...v, [path]: value }));
  const submit = async (event: Event) => {
    event.preventDefault();
    const problem = idProblem(what, name);
    if (problem !== null) {
      refuse("id", problem);
      return;
    }
    setBusy(true);
    setErrors({});
    try {
      await onSubmit(name, bodyOf(fields, values, initial));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      refuse(errorPath(error, ["id", ...allPaths(fields)], what), describeError(error));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="entity-form" onSubmit={submit} aria-label={`${submitLabel} form`} noValidate>
      {errors[""] !== undefined && (
        <p id={elementId(formId, "")} class="error form-error" role="alert" tabIndex={-1}>
          {errors[""]}
        </p>
      )}
      <div class={`field field-id${errors.id !== undefined ? " has-error" : ""}`}>
        <label for={elementId(formId, "id")}>{what} id</label>
        <input
          id={elementId(formId, "id")}
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
      {/* The dialog opens on the first field one can type in: the id, or when editing (the id is read-only) the
          first of the others; it opened on its × button. */}
      <FieldSet fields={fields} prefix="" values={values} errors={errors} onInput={onInput} formId={formId} focus={id === null ? null : firstPath(fields)} />
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
