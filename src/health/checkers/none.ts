/** The `none` checker: no probe at all, always Up (the original's `none` driver). */
import type { CheckResult, Checker } from "../checker.ts";

/** What a `none` check says (core records it as a `none` backend's health from the start). */
export const NO_CHECK_MESSAGE = "no health check (type none)";

/** Every `none` check's result (frozen: it is shared). */
export const NO_CHECK_RESULT: CheckResult = Object.freeze({ ok: true, durationMs: 0, message: NO_CHECK_MESSAGE });

/** Nothing to cancel: the check is over before it is returned. */
const NOTHING_TO_CANCEL = (): void => {};

/**
 * noneChecker always passes, without touching the network. Its `run` (the monitor's path) answers at once, in the
 * call: no promise and no AbortController for each of 10,000 backends created without a health check.
 */
export function noneChecker(): Checker {
  return NONE;
}

/** The one `none` checker: it holds no state, so every probe shares it. */
const NONE: Checker = Object.freeze({
  check: () => Promise.resolve(NO_CHECK_RESULT),
  run(_target: unknown, done: (result: CheckResult) => void, released: () => void) {
    done(NO_CHECK_RESULT);
    released();
    return NOTHING_TO_CANCEL;
  },
});
