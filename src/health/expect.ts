/**
 * The `expect` argument of HTTP pulses: which status codes count as Up.
 *
 * Accepted forms (numbers and digit strings alike, unlike the original, which only took a digit string):
 * `200`, `"200"`, `"200,204"`, `"200-299"`, `"2xx"`, `"200-299, 404"`, and arrays of any of these
 * (`[200, "3xx"]`). Every code must be a real HTTP status, 100-599, and at least one must end a response (101, or
 * 200 and above: interim 1xx responses are read past).
 */
import { describeValue } from "./duration.ts";
import { PulseOptionsError } from "./errors.ts";

/** One inclusive range of status codes; a single code has min === max. */
export interface StatusRange {
  readonly min: number;
  readonly max: number;
}

/** ExpectSpec is a non-empty list of status ranges; a response matches when any range contains its status. */
export type ExpectSpec = readonly StatusRange[];

/** DEFAULT_EXPECT is the original's default: exactly 200. */
export const DEFAULT_EXPECT: ExpectSpec = [{ min: 200, max: 200 }];

const ITEM = /^(?:([1-5])xx|(\d{3})(?:\s*-\s*(\d{3}))?)$/i;

/** parseExpect reads `args.expect`; `field` names it in errors. Throws PulseOptionsError. */
export function parseExpect(value: unknown, field: string): ExpectSpec {
  const items = Array.isArray(value) ? (value as unknown[]) : [value];
  if (items.length === 0) throw new PulseOptionsError(field, "must list at least one status code");
  const out: StatusRange[] = [];
  for (const item of items) {
    if (typeof item === "number") {
      out.push(codeRange(item, item, field, String(item)));
    } else if (typeof item === "string") {
      const parts = item.split(",").map((p) => p.trim());
      for (const part of parts) out.push(parseItem(part, field, item));
    } else {
      throw new PulseOptionsError(
        field,
        `must be a status code, a list such as "200,204" or a range such as "200-299", got ${describeValue(item)}`,
      );
    }
  }
  // The check reads past interim responses (1xx but 101) to the final one: a spec of only those never matches.
  if (!out.some((r) => r.max >= 200 || (r.min <= 101 && r.max >= 101))) {
    throw new PulseOptionsError(
      field,
      "lists only interim codes (1xx other than 101), which never end a response: the backend would always be down; expect a final status such as 200",
    );
  }
  return out;
}

/** matchesExpect says whether a status code is one of the expected ones. */
export function matchesExpect(spec: ExpectSpec, status: number): boolean {
  for (const r of spec) if (status >= r.min && status <= r.max) return true;
  return false;
}

/** formatExpect renders a spec back as text ("200-299,404"), for messages. */
export function formatExpect(spec: ExpectSpec): string {
  return spec.map((r) => (r.min === r.max ? String(r.min) : `${r.min}-${r.max}`)).join(",");
}

function parseItem(part: string, field: string, whole: string): StatusRange {
  const m = ITEM.exec(part);
  if (m === null) {
    throw new PulseOptionsError(
      field,
      `invalid status ${JSON.stringify(whole)}, use e.g. 200, "200,204", "200-299" or "2xx"`,
    );
  }
  if (m[1] !== undefined) {
    const base = Number(m[1]) * 100;
    return { min: base, max: base + 99 };
  }
  const min = Number(m[2]);
  const max = m[3] === undefined ? min : Number(m[3]);
  return codeRange(min, max, field, whole);
}

function codeRange(min: number, max: number, field: string, shown: string): StatusRange {
  for (const code of [min, max]) {
    if (!Number.isInteger(code) || code < 100 || code > 599) {
      throw new PulseOptionsError(field, `status ${JSON.stringify(shown)} is not an HTTP status code (100-599)`);
    }
  }
  if (min > max) throw new PulseOptionsError(field, `range ${JSON.stringify(shown)} is backwards (${min} > ${max})`);
  return { min, max };
}
