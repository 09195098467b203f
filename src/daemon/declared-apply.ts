/**
 * The configuration file's services, applied at start-up and on SIGHUP. A set refused because a name could not be
 * looked up for a reason that may pass (lookupMayPass: the resolver not ready at boot, or not
 * answering) is applied again in the background, after DEFAULTS.declaredRetryMs doubling up to
 * DEFAULTS.declaredRetryMaxMs, until it is applied or refused for another reason; a newer set (SIGHUP) or the stop
 * ends the retry. Any other refusal (a name that does not exist, a bad field, a conflict) is logged and not retried.
 */
import { DEFAULTS } from "../contract/fields.ts";
import type { ApplyReport } from "../core/apply.ts";
import { errorMessage } from "../core/errors.ts";
import type { DeclaredService } from "../core/plan.ts";
import { ResolveTimeoutError } from "../core/resolve.ts";
import { errorCode } from "../errno.ts";
import type { MonitorClock } from "../health/clock.ts";
import type { Logger } from "../log.ts";

/** What DeclaredApplier needs: the apply (Gorb.apply), the timers and where to log. */
export interface DeclaredApplierOptions {
  readonly apply: (declared: readonly DeclaredService[]) => Promise<ApplyReport>;
  readonly clock: MonitorClock;
  readonly log: Logger;
}

/** A retry waiting for its timer. */
interface Pending {
  readonly file: string;
  readonly handle: unknown;
}

/** Applies the file's declared sets, one retry pending at most (the latest set's). */
export class DeclaredApplier {
  readonly #o: DeclaredApplierOptions;
  /** Bumped by each new set and by cancel(): an attempt of an older one schedules nothing. */
  #generation = 0;
  #pending: Pending | null = null;
  /** The attempt running (a retry's included), which the stop waits for. */
  #running: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(options: DeclaredApplierOptions) {
    this.#o = options;
  }

  /** Apply `declared` (from `file`, named in the log) now, ending a retry of an earlier set; resolves after this first attempt. */
  apply(declared: readonly DeclaredService[], file: string): Promise<void> {
    this.#clear();
    return this.#attempt(declared, file, ++this.#generation, 1, DEFAULTS.declaredRetryMs);
  }

  /** End the retry pending, if any, logging `why` (a SIGHUP: the file is read again). */
  cancel(why: string): void {
    this.#generation++;
    const pending = this.#pending;
    if (pending === null) return;
    this.#clear();
    this.#o.log.info(`${pending.file}: its services are no longer retried (${why})`);
  }

  /** End the retry and wait for an attempt still running: nothing is applied after this resolves. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.cancel("gorb is stopping");
    await this.#running;
  }

  #clear(): void {
    if (this.#pending !== null) this.#o.clock.clearTimer(this.#pending.handle);
    this.#pending = null;
  }

  #attempt(declared: readonly DeclaredService[], file: string, generation: number, attempt: number, waitMs: number): Promise<void> {
    const run = this.#run(declared, file, generation, attempt, waitMs);
    this.#running = run;
    return run;
  }

  async #run(declared: readonly DeclaredService[], file: string, generation: number, attempt: number, waitMs: number): Promise<void> {
    const { log } = this.#o;
    let report: ApplyReport;
    try {
      report = await this.#o.apply(declared);
    } catch (error) {
      const why = errorMessage(error);
      if (!lookupMayPass(error)) {
        log.error(`${file}: ${why}; its services are refused whole and nothing changed`);
        return;
      }
      if (generation !== this.#generation || this.#stopped) {
        // A newer set or the stop came meanwhile: not tried again.
        log.warn(`${file}: ${why}; its services are refused whole and nothing changed`);
        return;
      }
      log.warn(`${file}: ${why}; its services are refused whole and nothing changed: trying again in ${seconds(waitMs)} (attempt ${attempt + 1})`);
      const handle = this.#o.clock.setTimer(() => {
        this.#pending = null;
        void this.#attempt(declared, file, generation, attempt + 1, Math.min(waitMs * 2, DEFAULTS.declaredRetryMaxMs));
      }, waitMs);
      this.#pending = { file, handle };
      return;
    }
    if (attempt > 1) log.info(`${file}: its services were applied at attempt ${attempt} (the names resolved)`);
    logReport(log, file, report);
  }
}

/** "2s", "1.5s". */
function seconds(ms: number): string {
  return `${ms / 1000}s`;
}

/** The changes an apply made, one line each (a failed one as an error). */
function logReport(log: Logger, file: string, report: ApplyReport): void {
  if (report.changes.length === 0) {
    log.info(`${file}: the services already match the file`);
    return;
  }
  for (const change of report.changes) {
    const what = change.backend === null ? change.service : `${change.service}/${change.backend}`;
    const line = `${file}: ${change.action} ${what}${change.details.length === 0 ? "" : `: ${change.details.join(", ")}`}`;
    if (change.status === "failed") log.error(`${line}: FAILED: ${change.error ?? ""}`);
    else log.info(line);
  }
}

/**
 * Whether `error` (a refused request or declared set) failed on a lookup that may pass if tried again: this host's
 * resolver did not answer in time (ResolveTimeoutError) or could not answer (EAI_AGAIN: unreachable, not ready yet,
 * SERVFAIL). A name that does not exist (ENOTFOUND), one without an address of the family, and every other refusal
 * are not: the same set fails the same way. Read from the causes the errors carry, never from their text.
 */
function lookupMayPass(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof ResolveTimeoutError || errorCode(e) === "EAI_AGAIN") return true;
  }
  return false;
}
