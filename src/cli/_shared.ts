/**
 * Argument groups shared by several commands, and the readers that turn citty's raw strings into checked
 * values. A bad value is a UsageError (exit 2) that names the flag: "--port: expected an integer 1-65535, got "x"".
 */
import type { ArgsDef } from "citty";
import { UsageError } from "./errors.ts";

/** Where a client command finds the daemon. */
export const serverArgs = {
  server: {
    type: "string",
    description: "URL of the gorb daemon (env GORB_SERVER; default http://127.0.0.1:4672)",
    valueHint: "url",
  },
  token: {
    type: "string",
    description: "API token, sent as a bearer token (env GORB_TOKEN; prefer --token-file: the command line shows in ps)",
    valueHint: "token",
  },
  "token-file": {
    type: "string",
    description: "Read the API token from this file (mode 0600 or stricter) (env GORB_TOKEN_FILE)",
    valueHint: "file",
  },
  ca: {
    type: "string",
    description: "PEM file of the CA (or self-signed certificate) that signed an https:// daemon's certificate (env GORB_CA)",
    valueHint: "file",
  },
} as const satisfies ArgsDef;

/** --direct: the kernel table instead of the daemon. */
export const directArgs = {
  direct: {
    type: "boolean",
    description:
      "Use the kernel's IPVS table directly instead of the daemon (needs root; services are named tcp:ADDR:PORT or fwmark:N, backends ADDR:PORT)",
  },
} as const satisfies ArgsDef;

/** The note under `service set` and `backend set`'s usage line: their options change only what they name. */
export const SET_NOTE = ["Only the options given change; the others keep their current values (a default named below is the one add uses)."] as const;

/** --json on read commands. */
export const jsonArgs = {
  json: { type: "boolean", description: "Print machine-readable JSON" },
} as const satisfies ArgsDef;

/** The parsed value of one flag as citty hands it over. */
export type RawArg = string | number | boolean | string[] | undefined;

/** Parsed citty args, read by name. */
export type RawArgs = Readonly<Record<string, RawArg>>;

function last(value: RawArg): RawArg {
  // A flag given twice arrives as an array in some citty paths: the last one wins, as in most CLIs.
  return Array.isArray(value) ? value[value.length - 1] : value;
}

/** A string flag: undefined when absent; a UsageError when given without a value. */
export function stringArg(args: RawArgs, name: string): string | undefined {
  const value = last(args[name]);
  if (value === undefined) return undefined;
  if (typeof value === "boolean" || value === "") throw new UsageError(`--${name} needs a value`);
  return String(value);
}

/** An integer flag in [min, max], or undefined when absent. */
export function intArg(args: RawArgs, name: string, min: number, max: number): number | undefined {
  const text = stringArg(args, name);
  if (text === undefined) return undefined;
  const trimmed = text.trim();
  if (!/^[+-]?\d+$/.test(trimmed)) {
    throw new UsageError(`--${name}: expected an integer ${min}-${max}, got ${JSON.stringify(text)}`);
  }
  const value = Number(trimmed);
  if (value < min || value > max) throw new UsageError(`--${name}: must be ${min}-${max}, got ${trimmed}`);
  return value;
}

/**
 * The value `text` of the flag --`name` as the one of `allowed` it spells, in any case and with blanks around it, as
 * the REST API reads an enum value ("TCP" is tcp); a UsageError naming the flag and the choices otherwise.
 */
export function choiceOf<T extends string>(name: string, text: string, allowed: readonly T[], usageOf: string | null = null): T {
  const lower = text.trim().toLowerCase();
  const found = allowed.find((a) => a === lower);
  if (found === undefined) {
    if (lower === "") throw new UsageError(`--${name} needs a value`, usageOf);
    throw new UsageError(`--${name}: expected one of ${allowed.join(", ")}, got ${JSON.stringify(text)}`, usageOf);
  }
  return found;
}

/** A flag that must be one of `allowed` (see choiceOf), or undefined when absent. */
export function choiceArg<T extends string>(args: RawArgs, name: string, allowed: readonly T[]): T | undefined {
  const text = stringArg(args, name);
  return text === undefined ? undefined : choiceOf(name, text, allowed);
}

/** A boolean flag: true, false (--no-NAME) or undefined when absent. */
export function boolArg(args: RawArgs, name: string): boolean | undefined {
  const value = last(args[name]);
  if (value === undefined) return undefined;
  if (typeof value === "boolean") return value;
  if (value === "true" || value === "") return true;
  if (value === "false") return false;
  throw new UsageError(`--${name} takes no value (use --${name} or --no-${name})`);
}

/** A required positional argument (citty already refuses a missing one). */
export function positional(args: RawArgs, name: string): string {
  const value = last(args[name]);
  if (typeof value !== "string" || value === "") throw new UsageError(`missing ${name.toUpperCase()}`);
  return value;
}

/** An optional positional argument. */
export function optionalPositional(args: RawArgs, name: string): string | undefined {
  const value = last(args[name]);
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** `obj` without the keys whose value is undefined (request bodies carry only the flags given). */
export function defined<T extends Record<string, unknown>>(obj: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [key, value] of Object.entries(obj)) if (value !== undefined) (out as Record<string, unknown>)[key] = value;
  return out;
}

/**
 * Wait `ms`, or less once `signal` aborts (Ctrl-C); resolves either way. Its abort listener goes with the wait, so a
 * watch that waits once a second for days leaves none behind on the command's signal.
 */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
