/**
 * The checker seam: one probe of one target, returning a result value. Checkers never throw and never
 * schedule anything; the monitor owns intervals, timeouts and thresholds.
 *
 * Two ways to run a probe:
 * - `run(target, done, released)`: the monitor's path. No promise, no AbortController: the checker calls `done`
 *   once with the result, and `released` once every OS resource of the probe (socket, child process) is gone;
 *   the returned function cancels the probe and releases its resources at once (a socket is destroyed, not left
 *   to the kernel's SYN timeout; a child process is killed). After a cancel `done` is never called; within the
 *   cancel call it may be, once, with a check error ("local-error"), when the probe was still waiting on this host
 *   rather than on the backend (a host name's lookup): the monitor then records that instead of a timeout.
 * - `check(target, signal)`: the same probe as a promise, for tests and one-off callers (see checkWithSignal).
 *
 * Results carry data, not only words: `kind` says whether the probe passed, failed, timed out, or could not
 * run for a local reason ("local-error": the checker's own process ran out of file descriptors, buffers, local
 * ports or memory, or could not spawn a script). A local error says nothing about the backend; the monitor never
 * changes a backend's state on one. `code` is the error kind (an errno name such as ECONNREFUSED, an HTTP status,
 * a TLS verification code, a DNS rcode): never response content, which a backend controls.
 */
import { closeSync, openSync } from "node:fs";
import { errorCode } from "../errno.ts";
import { hostPort } from "../ipv6-text.ts";
import type { ProbeTarget } from "./options.ts";

/** CheckKind classifies a result: only "pass" and "fail"/"timeout" say something about the backend. */
export type CheckKind = "pass" | "fail" | "timeout" | "local-error";

/** CheckResult is the outcome of one probe: whether it passed, how long it took and what happened, in words. */
export interface CheckResult {
  readonly ok: boolean;
  readonly durationMs: number;
  readonly message: string;
  /** The result's class; absent means pass when ok, fail otherwise. */
  readonly kind?: CheckKind;
  /** The error kind or status, e.g. "ECONNREFUSED", "503", "NXDOMAIN", "CERT_HAS_EXPIRED", "exit 2". */
  readonly code?: string;
}

/** Cancels a running probe and releases its resources; harmless after the probe ended. It may answer with a check error through `done` (see the module comment). */
export type CancelProbe = () => void;

/** Checker probes a target. */
export interface Checker {
  /** Resolves (never rejects) once the probe ends or `signal` aborts. */
  check(target: ProbeTarget, signal: AbortSignal): Promise<CheckResult>;
  /** The monitor's allocation-light path; see the module comment. Checkers without it are run through `check`. */
  run?(target: ProbeTarget, done: (result: CheckResult) => void, released: () => void): CancelProbe;
}

/** RunProbe is the `run` half of a checker. */
export type RunProbe = (target: ProbeTarget, done: (result: CheckResult) => void, released: () => void) => CancelProbe;

/** AbortWords phrases an abort (`why`: "aborted: timed out after 5s") before the probe started, or while it ran. */
export type AbortWords = (target: ProbeTarget, when: "before" | "while", why: string) => string;

/** checkerOf builds a full Checker from its `run` half; `check` adapts it to an AbortSignal. */
export function checkerOf(run: RunProbe, what: AbortWords): Checker {
  return {
    run,
    check: (target, signal) => checkWithSignal(run, target, signal, what),
  };
}

/** checkWithSignal runs a probe as a promise; an abort cancels it (resources released) and reports the reason. */
function checkWithSignal(
  run: RunProbe,
  target: ProbeTarget,
  signal: AbortSignal,
  what: AbortWords,
): Promise<CheckResult> {
  if (signal.aborted) return Promise.resolve({ ok: false, durationMs: 0, message: what(target, "before", abortMessage(signal)) });
  const start = performance.now();
  return new Promise<CheckResult>((resolve) => {
    let settled = false;
    const onAbort = () => {
      if (settled) return;
      cancel(); // may answer with a check error (see the module comment)
      if (settled) return;
      settled = true;
      resolve({ ok: false, durationMs: elapsedSince(start), message: what(target, "while", abortMessage(signal)), kind: "timeout" });
    };
    const cancel = run(
      target,
      (result) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener("abort", onAbort);
        resolve(result);
      },
      () => {},
    );
    if (!settled) signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** formatHostPort renders host:port, bracketing IPv6 literals ("[::1]:80"). */
export function formatHostPort(target: ProbeTarget): string {
  return hostPort(target.host, target.port);
}

/**
 * describeError turns whatever a probe threw into a short kind: the error code when there is one, else the
 * error's name. Never the message: messages of TLS and HTTP libraries can quote what the peer sent.
 */
export function describeError(err: unknown): string {
  const code = errorCode(err);
  if (code !== "") return code;
  if (err instanceof Error) return err.name;
  return typeof err;
}

/** abortMessage explains an aborted probe, using the abort reason when it is an Error (e.g. the monitor's timeout). */
function abortMessage(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  return reason instanceof Error && reason.name !== "AbortError" ? `aborted: ${reason.message}` : "aborted";
}

/** elapsedSince gives whole-ish milliseconds since `start` (a performance.now() value), to 0.1ms. */
export function elapsedSince(start: number): number {
  return Math.round((performance.now() - start) * 10) / 10;
}

/**
 * LOCAL_ERROR_CODES are errors of the checking host itself, not of the backend: out of descriptors, buffers,
 * local ports or memory; a connect this host's own firewall forbids (EPERM: an OUTPUT rule drops the packet on the
 * way out; no ICMP error maps to EPERM, while EACCES can be a remote IPv6 "administratively prohibited", the
 * backend's side); and a name (`args.host`) this
 * host's resolver could not look up for its own reasons (EAI_AGAIN: the resolver is unreachable, timed out or
 * answered SERVFAIL; EAI_FAIL: it refused the query). ENOTFOUND, a name that does not exist, stays the backend's
 * failure, as does a refusal the backend's side sends (ECONNREFUSED, a REJECT with a reset).
 */
export const LOCAL_ERROR_CODES: ReadonlySet<string> = new Set([
  "EMFILE",
  "ENFILE",
  "ENOBUFS",
  "EADDRNOTAVAIL",
  "ENOMEM",
  "EPERM",
  "EAI_AGAIN",
  "EAI_FAIL",
  "EAI_MEMORY",
  "EAI_SYSTEM",
]);

/**
 * localErrorOf says whether a failed connect was the checker's own fault, returning the local code or "".
 * NB: Bun (1.4) reports a connect that failed because the process is out of file descriptors as ECONNREFUSED
 * (measured: with `ulimit -n 64` and every fd taken, Bun.connect and node:net both say ECONNREFUSED, while
 * Bun.udpSocket and spawn say EMFILE). So a refused connect is double-checked by opening /dev/null: if that fails
 * with EMFILE/ENFILE, the refusal was local. This costs two system calls on the refused path only.
 */
export function localErrorOf(code: string): string {
  if (LOCAL_ERROR_CODES.has(code)) return code;
  if (code === "ECONNREFUSED" || code === "") {
    try {
      closeSync(openSync("/dev/null", "r"));
    } catch (err) {
      const local = errorCode(err);
      if (LOCAL_ERROR_CODES.has(local)) return local;
    }
  }
  return "";
}
