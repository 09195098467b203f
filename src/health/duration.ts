/**
 * The pulse duration grammar (intervals, timeouts, back-off caps).
 *
 * It is the original's grammar, `(?i)^([+-]?[0-9]+)(s|sec|seconds|m|min|minutes|h|hours)$` after trimming,
 * plus one extension: an `ms` suffix for sub-second values. A unit is always required: a bare number
 * ("60" or 60) is rejected rather than guessed as seconds or milliseconds, exactly as the original rejected it.
 */
import { PulseOptionsError } from "./errors.ts";

const DURATION = /^([+-]?[0-9]+)(ms|s|sec|seconds|m|min|minutes|h|hours)$/i;

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  sec: 1_000,
  seconds: 1_000,
  m: 60_000,
  min: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hours: 3_600_000,
};

/** MAX_DURATION_MS is the longest accepted duration: the largest delay setTimeout can hold (about 596h). */
export const MAX_DURATION_MS = 2_147_483_647;

/** A parsed duration: milliseconds plus the trimmed text it came from (kept for GET responses). */
export interface Duration {
  readonly ms: number;
  readonly text: string;
}

/**
 * parseDuration reads one duration field. `field` names it in errors ("pulse.interval").
 * Throws PulseOptionsError for a non-string, a bad format, a value <= 0 or one above MAX_DURATION_MS.
 */
export function parseDuration(value: unknown, field: string): Duration {
  if (typeof value !== "string") {
    throw new PulseOptionsError(field, `must be a string with a unit such as "5s", got ${describeValue(value)}`);
  }
  const text = value.trim();
  const match = DURATION.exec(text);
  if (match === null) {
    throw new PulseOptionsError(field, `invalid interval ${JSON.stringify(value)}, use e.g. 500ms, 5s, 1m, 2h`);
  }
  const amount = Number(match[1]);
  const unit = UNIT_MS[(match[2] ?? "").toLowerCase()] ?? 1_000;
  if (amount <= 0) throw new PulseOptionsError(field, `must be positive, got ${JSON.stringify(text)}`);
  const ms = amount * unit;
  if (ms > MAX_DURATION_MS) {
    throw new PulseOptionsError(field, `${JSON.stringify(text)} is too long, at most 596h`);
  }
  return { ms, text };
}

/** formatDuration renders whole milliseconds in the largest unit that divides them exactly ("90s", "2m", "1500ms"). */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1_000 === 0) return `${ms / 1_000}s`;
  return `${ms}ms`;
}

/** describeValue names a JSON value's type and shows it briefly, for error messages ("nothing" when missing). */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  if (typeof value === "string") return `string ${JSON.stringify(value)}`;
  return `${typeof value} ${String(value)}`;
}
