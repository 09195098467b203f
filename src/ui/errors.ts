/**
 * An API error as the UI keeps it: status, gorb's code, the message, and the field the answer names
 * ({"error": "<field>: <problem>", "code", "field"}), so a form can show it next to that field.
 */
import { visibleText } from "../contract/ids.ts";

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

/**
 * "409 CONFLICT: service "web" already exists", as the page draws it (under a field, in a row, in the notice): the
 * message quotes ids, so its C1 and bidirectional controls are shown as marks (visibleText).
 */
export function describeError(error: ApiError): string {
  return visibleText(`${error.status === 0 ? "" : `${error.status} `}${error.code === "" ? "" : `${error.code}: `}${error.message}`);
}

