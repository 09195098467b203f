/**
 * The declarative `services` of a configuration file or of a POST /apply body: a mapping of service ids to
 * service bodies (the REST API's fields), each with an optional `backends` mapping of backend ids to backend
 * bodies. Every value is checked here, without I/O (host names are resolved by the daemon when it applies
 * the set). Unlike the API, which ignores unknown keys as the original did, an unknown key is refused: in a
 * file a typo would otherwise go unnoticed. An error is a PathError naming the path
 * ("services.web.backends.b1.port: must be 1-65535, got 70000").
 */
import { PULSE_FIELDS, SORRY_FIELDS } from "../contract/fields.ts";
import { unknownPulseArg } from "../contract/check.ts";
import { DATE_OR_TIME, isDateValue, isPlainMapping } from "../contract/json-values.ts";
import type { Fields } from "../core/fields.ts";
import { ValidationError } from "../core/errors.ts";
import { checkId } from "../core/ids.ts";
import type { ServiceSpec } from "../core/model.ts";
import {
  BACKEND_FIELDS,
  SERVICE_FIELDS,
  backendFields,
  checkForwardedPort,
  checkProbePort,
  checkSorryPort,
  normalizeBackendFields,
  normalizeServiceFields,
  serviceFields,
} from "../core/normalize.ts";
import { Pacer } from "../pacer.ts";
import { PathError, underPath, type PathSegment } from "../core/path.ts";
import { mapping, refuseUnknown } from "./mapping.ts";
import type { DeclaredBackend, DeclaredService } from "../core/plan.ts";

/**
 * A PathError for the first date or time (a TOML `pulse = 2024-01-01`) left in a body whose fields were checked: the
 * contract takes it where it takes an object (`pulse`, `pulse.args`, `sorry_server`), as one without keys, so the
 * check would pass and the default be used. JSON, and so the API, has no dates.
 */
function refuseDates(value: unknown, path: readonly PathSegment[]): void {
  const at = dateAt(value);
  if (at !== null) throw new PathError([...path, ...at], `must be a mapping, got ${DATE_OR_TIME}`);
}

/** The path to the first date or time in `value`, or null; built only for one found (this runs for every object of an apply). */
function dateAt(value: unknown): string[] | null {
  if (typeof value !== "object" || value === null) return null;
  if (isDateValue(value)) return [];
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    const found = dateAt(obj[key]);
    if (found !== null) return [key, ...found];
  }
  return null;
}

function checkedId(field: "service" | "backend", id: string, path: readonly PathSegment[]): string {
  try {
    return checkId(field, id);
  } catch (error) {
    if (error instanceof ValidationError) throw new PathError(path, error.problem, { cause: error });
    throw error;
  }
}

/** The key of `obj` that names `field` in any case (refuseUnknown lets at most one through), or undefined. */
function keyFor(obj: Record<string, unknown>, field: string): string | undefined {
  if (Object.hasOwn(obj, field)) return field;
  return Object.keys(obj).find((k) => k.toLowerCase() === field);
}

/**
 * Refuses an unknown key in the mapping a field holds: a pulse's fields, an arg no pulse type reads (exact case, as
 * pulses read them), a sorry server's fields. The API drops such keys, as it drops unknown fields; in a file a typo
 * (`intervall: 5s`, `args: {pth: /health}`) would leave the default in force without a word. An arg another pulse
 * type reads is dropped (see unknownPulseArg). A value that is not a mapping, or a pulse type that does not exist,
 * is left to the field checks.
 */
function refuseUnknownWithin(obj: Record<string, unknown>, field: "pulse" | "sorry_server", at: readonly PathSegment[]): void {
  const key = keyFor(obj, field);
  const value = key === undefined ? undefined : obj[key];
  if (key === undefined || !isPlainMapping(value)) return;
  const path = [...at, key];
  if (field === "sorry_server") return refuseUnknown(value, SORRY_FIELDS, path);
  refuseUnknown(value, PULSE_FIELDS, path);
  const argsKey = keyFor(value, "args");
  const args = argsKey === undefined ? undefined : value[argsKey];
  if (argsKey === undefined || !isPlainMapping(args)) return;
  const typeKey = keyFor(value, "type");
  const unread = unknownPulseArg(typeKey === undefined ? undefined : value[typeKey], args);
  if (unread !== null) throw new PathError([...path, argsKey, unread.key], unread.problem);
}

/** The keys of a declared service: its fields and its backends. */
const SERVICE_KEYS: readonly string[] = [...SERVICE_FIELDS, "backends"];

/**
 * Whether the value being read may hold dates: one parsed from a file may (TOML, YAML); one parsed from JSON (a
 * POST /apply body) cannot, and is not searched for them.
 */
type Source = "file" | "json";

function readBackends(value: unknown, service: ServiceSpec, path: readonly PathSegment[], source: Source): DeclaredBackend[] {
  if (value === undefined || value === null) return [];
  const backends = mapping(value, path, "backend ids to backends");
  const out: DeclaredBackend[] = [];
  for (const [id, body] of Object.entries(backends)) {
    const at = [...path, id];
    checkedId("backend", id, at);
    const obj = mapping(body ?? {}, at, "backend fields");
    refuseUnknown(obj, BACKEND_FIELDS, at);
    refuseUnknownWithin(obj, "pulse", at);
    let fields: Fields;
    try {
      fields = backendFields(obj);
      if (source === "file") refuseDates(obj, []);
      const spec = normalizeBackendFields(fields, service);
      checkProbePort(spec);
      checkForwardedPort(spec, service);
    } catch (error) {
      throw underPath(error, at);
    }
    out.push({ id, fields });
  }
  return out;
}

/** One declared service: its id checked, its fields and its backends'. Throws PathError. */
function readService(id: string, body: unknown, path: readonly PathSegment[], source: Source): DeclaredService {
  const at = [...path, id];
  checkedId("service", id, at);
  const obj = mapping(body ?? {}, at, "service fields");
  refuseUnknown(obj, SERVICE_KEYS, at);
  refuseUnknownWithin(obj, "sorry_server", at);
  const backendsKey = Object.keys(obj).find((k) => k.toLowerCase() === "backends");
  let fields: Fields;
  let spec: ServiceSpec;
  try {
    fields = serviceFields(obj);
    if (source === "file") for (const [key, value] of Object.entries(obj)) if (key !== backendsKey) refuseDates(value, [key]);
    spec = normalizeServiceFields(fields);
    checkSorryPort(spec);
  } catch (error) {
    throw underPath(error, at);
  }
  const backends = readBackends(backendsKey === undefined ? undefined : obj[backendsKey], spec, [...at, backendsKey ?? "backends"], source);
  return { id, fields, backends };
}

/**
 * The declared services of a `services` value (a mapping of service ids to service bodies, each with an
 * optional `backends` mapping). `path` is where the value sits (["services"] in a file). Throws PathError.
 */
export function readServices(value: unknown, path: readonly PathSegment[] = ["services"]): DeclaredService[] {
  if (value === null || value === undefined) return [];
  return Object.entries(mapping(value, path, "service ids to services")).map(([id, body]) => readService(id, body, path, "file"));
}

/**
 * readServices for the daemon (POST /apply): the same checks, with a turn of the event loop every few
 * milliseconds of work (`pacer`, ../pacer.ts), so checking a set of 10,000 backends never holds up other requests
 * and health checks for long. `value` is parsed JSON, which has no dates: they are not searched for.
 */
export async function readServicesPaced(value: unknown, path: readonly PathSegment[] = ["services"], pacer: Pacer = new Pacer()): Promise<DeclaredService[]> {
  if (value === null || value === undefined) return [];
  const out: DeclaredService[] = [];
  for (const [id, body] of Object.entries(mapping(value, path, "service ids to services"))) {
    if (pacer.due()) await pacer.turn();
    out.push(readService(id, body, path, "json"));
  }
  return out;
}
