/**
 * The UI's HTTP client: every call names an action of ./actions.ts, carries the token (when one was given) as
 * an Authorization header, and turns an error answer into an ApiError that keeps the status, gorb's code and
 * the field the answer names ({"error": "<field>: <problem>", "code", "field"}).
 */
import { ACTIONS, type ActionName, actionPath } from "./actions.ts";
import { ApiError } from "./errors.ts";

const TOKEN_KEY = "gorb.token";

/** The token of this tab's session (sessionStorage: gone when the tab closes). */
export function savedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(token: string | null): void {
  if (token === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

/** The headers of every call. */
export function authHeaders(): Record<string, string> {
  const token = savedToken();
  return token === null ? {} : { Authorization: `Bearer ${token}` };
}

export interface CallOptions {
  readonly params?: Readonly<Record<string, string>>;
  readonly query?: Readonly<Record<string, string>>;
  readonly body?: unknown;
  /** Raw text body (POST /apply sends the pasted file as it is when it is JSON). */
  readonly signal?: AbortSignal;
  /** The ETag the object had when this page read it: the change goes through only if it still has it (else 412). */
  readonly ifMatch?: string | null;
}

/** Calls an action; resolves with the parsed JSON (or the text, or null for an empty body). */
export async function call(name: ActionName, options: CallOptions = {}): Promise<unknown> {
  return (await callTagged(name, options)).value;
}

/** Calls an action; resolves with the parsed JSON (as call does) and the answer's ETag (null without one). */
export async function callTagged(name: ActionName, options: CallOptions = {}): Promise<{ readonly value: unknown; readonly etag: string | null }> {
  const action = ACTIONS[name];
  let url = actionPath(name, options.params);
  if (options.query !== undefined) url += `?${new URLSearchParams(options.query).toString()}`;
  const headers: Record<string, string> = authHeaders();
  if (options.ifMatch !== undefined && options.ifMatch !== null) headers["If-Match"] = options.ifMatch;
  const init: RequestInit = { method: action.method, headers };
  if (options.body !== undefined) {
    init.body = JSON.stringify(options.body);
    headers["Content-Type"] = "application/json";
  }
  if (options.signal !== undefined) init.signal = options.signal;
  let response: Response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    throw new ApiError(0, "NETWORK", null, `gorb did not answer: ${error instanceof Error ? error.message : String(error)}`);
  }
  const text = await response.text();
  if (!response.ok) {
    let message = text === "" ? response.statusText : text;
    let code = "";
    let field: string | null = null;
    try {
      const parsed = JSON.parse(text) as { error?: unknown; code?: unknown; field?: unknown };
      if (typeof parsed.error === "string") message = parsed.error;
      if (typeof parsed.code === "string") code = parsed.code;
      if (typeof parsed.field === "string") field = parsed.field;
    } catch {
      // not JSON: keep the text
    }
    throw new ApiError(response.status, code, field, message);
  }
  const etag = response.headers.get("etag");
  if (text === "") return { value: null, etag };
  const type = response.headers.get("content-type") ?? "";
  return { value: type.includes("json") ? (JSON.parse(text) as unknown) : text, etag };
}
