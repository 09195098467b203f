/** The `none` checker: no probe at all, always Up (the original's `none` driver). */
import type { CheckResult, Checker } from "../checker.ts";

/** What a `none` check says (core records it as a `none` backend's health from the start). */
export const NO_CHECK_MESSAGE = "no health check (type none)";

const RESULT: CheckResult = { ok: true, durationMs: 0, message: NO_CHECK_MESSAGE };

/** noneChecker always passes, without touching the network. */
export function noneChecker(): Checker {
  return { check: () => Promise.resolve(RESULT) };
}
