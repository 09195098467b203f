/**
 * Pulse (health-check) options as core sees them: parsing and rendering are the health module's
 * (src/health/options.ts); this adapter turns its PulseOptionsError into core's ValidationError, so a bad pulse
 * is a 400 naming the field ("pulse.interval: ...") like every other bad field.
 */
import { PulseOptionsError } from "../health/errors.ts";
import { parsePulseOptions, renderPulseWire, type PulseOptions, type RenderedPulseWire } from "../health/options.ts";
import { isPlainJson } from "../contract/json-values.ts";
import { ValidationError } from "./errors.ts";

/** Normalised pulse options of a backend. */
export type PulseSpec = PulseOptions;

/**
 * Pulses already parsed, by the JSON text of what was sent: a set of 10,000 backends usually holds a handful of
 * distinct pulses, and parsing one was a quarter of checking a backend. Only plain JSON values are keyed (see
 * plainKey), so two inputs that parse differently never share a key. The options are frozen: one object is
 * shared by every backend with that pulse. Bounded: cleared when full.
 */
const PARSED = new Map<string, PulseSpec>();
const PARSED_MAX = 512;
/** Longest key kept; a larger pulse is parsed each time. */
const KEY_MAX = 1024;

/**
 * The JSON text of `value` when it holds only plain JSON values (see isPlainJson) and is short, else null. A pulse
 * that is only a type ({"type": "none"}, most of them) is keyed by the type, behind a character no JSON text starts
 * with.
 */
function plainKey(value: unknown): string | null {
  if (value === undefined) return "";
  if (typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    const keys = Object.keys(value);
    const type = (value as { type?: unknown }).type;
    if (keys.length === 1 && keys[0] === "type" && typeof type === "string" && type.length <= KEY_MAX) return `\u0000${type}`;
  }
  if (!isPlainJson(value, 4)) return null;
  const text = JSON.stringify(value);
  return text.length > KEY_MAX ? null : text;
}

function frozen(spec: PulseSpec): PulseSpec {
  for (const part of Object.values(spec)) if (typeof part === "object" && part !== null) Object.freeze(part);
  return Object.freeze(spec);
}

/** The pulse of a backend body (`undefined` = all defaults: tcp every 1m). */
export function normalizePulse(raw: unknown): PulseSpec {
  const key = plainKey(raw);
  const known = key === null ? undefined : PARSED.get(key);
  if (known !== undefined) return known;
  let spec: PulseSpec;
  try {
    spec = parsePulseOptions(raw);
  } catch (error) {
    if (error instanceof PulseOptionsError) throw new ValidationError(error.field, error.problem, { cause: error });
    throw error;
  }
  if (key === null) return spec;
  if (PARSED.size >= PARSED_MAX) PARSED.clear();
  PARSED.set(key, frozen(spec));
  return spec;
}

/** The GORB wire shape of a pulse for GET: {type, interval, args}. */
export function pulseView(spec: PulseSpec): RenderedPulseWire {
  return renderPulseWire(spec);
}

/** True when two pulses check the same way at the same pace (a PATCH that changes nothing keeps the history). */
export function samePulse(a: PulseSpec, b: PulseSpec): boolean {
  return JSON.stringify(renderPulseWire(a)) === JSON.stringify(renderPulseWire(b));
}
