/**
 * Pulse (health-check) options as core sees them: parsing and rendering are the health module's
 * (src/health/options.ts); this adapter turns its PulseOptionsError into core's ValidationError, so a bad pulse
 * is a 400 naming the field ("pulse.interval: ...") like every other bad field.
 */
import { PulseOptionsError } from "../health/errors.ts";
import { parsePulseOptions, renderPulseWire, type PulseOptions, type RenderedPulseWire } from "../health/options.ts";
import { ValidationError } from "./errors.ts";

/** Normalised pulse options of a backend. */
export type PulseSpec = PulseOptions;

/** The pulse of a backend body (`undefined` = all defaults: tcp every 1m). */
export function normalizePulse(raw: unknown): PulseSpec {
  try {
    return parsePulseOptions(raw);
  } catch (error) {
    if (error instanceof PulseOptionsError) throw new ValidationError(error.field, error.problem, { cause: error });
    throw error;
  }
}

/** The GORB wire shape of a pulse for GET: {type, interval, args}. */
export function pulseView(spec: PulseSpec): RenderedPulseWire {
  return renderPulseWire(spec);
}

/** True when two pulses check the same way at the same pace (a PATCH that changes nothing keeps the history). */
export function samePulse(a: PulseSpec, b: PulseSpec): boolean {
  return JSON.stringify(renderPulseWire(a)) === JSON.stringify(renderPulseWire(b));
}
