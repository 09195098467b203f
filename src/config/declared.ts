/**
 * The client side of a declared set (`gorb apply`, `gorb diff`): the file read, its settings checked, and its
 * services left for the daemon to check. The CLI loads only this: the services' own checks (./services.ts and
 * the contract's schemas behind it) are loaded only for a set that must be checked here.
 */
import { ConfigError, located, readConfigText, readText } from "./file-text.ts";
import { isPlainJson } from "../contract/json-values.ts";
import type { DeclaredService } from "../core/plan.ts";
import { objectOf } from "../core/fields.ts";
import { mapping } from "./mapping.ts";
import { readDocument } from "./settings.ts";
import { formatOf, type ConfigFormat } from "./syntax.ts";

export { ConfigError };

/** The `services` of a document as POST /apply takes them, for the daemon to check (see loadDeclaredFile). */
export interface ServicesToSend {
  /** The `services` value of POST /apply's body. */
  readonly body: Readonly<Record<string, unknown>>;
  /** How many services and backends it declares (for progress lines). */
  readonly services: number;
  readonly backends: number;
}

/** How deep a YAML or TOML set's plain values may nest to be sent unchecked (services.ID.backends.ID.pulse.args.expect.status[]). */
const SET_DEPTH = 12;

/** The set to send as it was read: how many services and backends it declares, without checking them. */
function asRead(set: Readonly<Record<string, unknown>>): ServicesToSend {
  let backends = 0;
  for (const service of Object.values(set)) {
    if (typeof service !== "object" || service === null) continue;
    for (const [key, value] of Object.entries(service)) {
      if (key.toLowerCase() === "backends" && typeof value === "object" && value !== null) backends += Object.keys(value).length;
    }
  }
  return { body: set, services: Object.keys(set).length, backends };
}

/** The set to send as the local check read it (field maps back to bodies). */
function asChecked(checked: readonly DeclaredService[]): ServicesToSend {
  const body: Record<string, unknown> = {};
  for (const s of checked) {
    const backends: Record<string, unknown> = {};
    for (const b of s.backends) backends[b.id] = objectOf(b.fields);
    body[s.id] = { ...objectOf(s.fields), backends };
  }
  return { body, services: checked.length, backends: checked.reduce((n, s) => n + s.backends.length, 0) };
}

/** A configuration file read for `gorb apply`: its settings checked, its services to send (see loadDeclaredFile). */
export interface DeclaredFile {
  readonly file: string;
  readonly format: ConfigFormat;
  readonly services: ServicesToSend | null;
}

/**
 * Read the configuration file at `file` for `gorb apply`: its settings checked, its `services` left for the daemon
 * to check. The daemon checks a set with the same code (./services.ts) before it changes anything, and its errors
 * name the path, which the client traces back to the line; checking 10,000 backends in the client as well was a
 * fifth of an apply. The set is sent as it was read when it holds only JSON values; a YAML or TOML value JSON
 * cannot carry (NaN, a date) would turn into something else on the way, so such a set is checked here, and what
 * was read is sent. Throws ConfigError.
 */
export async function loadDeclaredFile(file: string): Promise<DeclaredFile> {
  const text = await readConfigText(file);
  const format = formatOf(file);
  const read = readText(file, text, (doc) => readDocument(doc, (value) => (value === null ? {} : mapping(value, ["services"], "service ids to services"))));
  const set = read.services;
  if (set === null) return { file, format, services: null };
  // JSON.parse gives only JSON values, however deep.
  if (format === "json" || isPlainJson(set, SET_DEPTH)) return { file, format, services: asRead(set) };
  const { readServices } = await import("./services.ts");
  return { file, format, services: located(file, text, () => asChecked(readServices(set))) };
}
