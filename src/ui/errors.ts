/**
 * An API error as the UI keeps it: status, gorb's code, the message, and the field the answer names
 * ({"error": "<field>: <problem>", "code", "field"}), so a form can show it next to that field.
 */

/** An answer other than 2xx, as the API gave it. */
export class ApiError extends Error {
  override readonly name = "ApiError";

  constructor(
    readonly status: number,
    readonly code: string,
    /** The field the answer names ("port", "pulse.interval"), or null. */
    readonly field: string | null,
    message: string,
  ) {
    super(message);
  }
}

/** "409 CONFLICT: service "web" already exists" */
export function describeError(error: ApiError): string {
  return `${error.status === 0 ? "" : `${error.status} `}${error.code === "" ? "" : `${error.code}: `}${error.message}`;
}

