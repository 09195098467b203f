/**
 * An API error as the UI keeps it: status, gorb's code, the message, and the field the message names
 * ({"error": "<field>: <problem>", "code"}), so a form can show it next to that field.
 */

/** An answer other than 2xx, as the API gave it. */
export class ApiError extends Error {
  override readonly name = "ApiError";

  constructor(
    readonly status: number,
    readonly code: string,
    /** The field the message names ("port", "pulse.interval"), or null. */
    readonly field: string | null,
    message: string,
  ) {
    super(message);
  }
}

const FIELD = /^([A-Za-z_][\w.[\]-]*): /;

/** The field a gorb error message names: the text before the first ": ", when it looks like a field path. */
export function errorField(message: string): string | null {
  return FIELD.exec(message)?.[1] ?? null;
}

/** "409 CONFLICT: service "web" already exists" */
export function describeError(error: ApiError): string {
  return `${error.status === 0 ? "" : `${error.status} `}${error.code === "" ? "" : `${error.code}: `}${error.message}`;
}

