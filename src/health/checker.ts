/**
 * The checker seam: one probe of one target, returning a result value. Checkers never throw and never
 * schedule anything; the monitor owns intervals, timeouts (through the AbortSignal) and thresholds.
 */
import type { ProbeTarget } from "./options.ts";

/** CheckResult is the outcome of one probe: whether it passed, how long it took and what happened, in words. */
export interface CheckResult {
  readonly ok: boolean;
  readonly durationMs: number;
  readonly message: string;
}

/** Checker probes a target; it resolves (never rejects) once the probe ends or `signal` aborts. */
export interface Checker {
  check(target: ProbeTarget, signal: AbortSignal): Promise<CheckResult>;
}

/** formatHostPort renders host:port, bracketing IPv6 literals ("[::1]:80"). */
export function formatHostPort(target: ProbeTarget): string {
  return target.host.includes(":") ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
}

/** describeError turns whatever a probe threw into one line: the error code when there is one, then the text. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const text = err.message || err.name;
    return typeof code === "string" && code !== "" && !text.includes(code) ? `${code}: ${text}` : text;
  }
  return String(err);
}

/** abortMessage explains an aborted probe, using the abort reason when it is an Error (e.g. the monitor's timeout). */
export function abortMessage(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  return reason instanceof Error && reason.name !== "AbortError" ? `aborted: ${reason.message}` : "aborted";
}

/** elapsedSince gives whole-ish milliseconds since `start` (a performance.now() value), to 0.1ms. */
export function elapsedSince(start: number): number {
  return Math.round((performance.now() - start) * 10) / 10;
}
