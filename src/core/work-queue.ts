/**
 * The work queue behind gorb's lock: jobs run one at a time, in call order, except that mutations queued
 * together run as one group (the holder drains every mutation waiting at the head of the queue), so they can
 * share one commit to the state store. Exclusive jobs (health drains, reconcile, apply, restore, close) run
 * alone. A job never runs concurrently with another.
 */

/** A queued job: `group` jobs that are adjacent in the queue run together through `runGroup`. */
export interface QueuedJob {
  readonly group: boolean;
}

/**
 * Queues a background job (a health batch, a ramp step, a probe-service sync) to run alone on gorb's lock; its
 * failure is logged as "`what` failed: ...". Gorb gives one to the runners that need it.
 */
export type ScheduleJob = (section: () => Promise<void>, what: string) => void;

/** See the module comment. */
export class WorkQueue<J extends QueuedJob> {
  readonly #queue: J[] = [];
  readonly #runOne: (job: J) => Promise<void>;
  readonly #runGroup: (jobs: J[]) => Promise<void>;
  #running = false;

  constructor(runOne: (job: J) => Promise<void>, runGroup: (jobs: J[]) => Promise<void>) {
    this.#runOne = runOne;
    this.#runGroup = runGroup;
  }

  push(job: J): void {
    this.#queue.push(job);
    if (!this.#running) void this.#drain();
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      // Let the requests queued by the code running now join the first group (one microtask, not a turn of the
      // event loop: a lone request, the usual case, starts at once). Requests that arrive while a group runs wait
      // and form the next group together.
      await null;
      while (this.#queue.length > 0) {
        const head = this.#queue[0] as J;
        if (!head.group) {
          this.#queue.shift();
          await this.#runOne(head).catch(() => undefined);
          continue;
        }
        let n = 0;
        while (n < this.#queue.length && (this.#queue[n] as J).group) n++;
        const group = this.#queue.splice(0, n);
        await this.#runGroup(group).catch(() => undefined);
      }
    } finally {
      this.#running = false;
    }
  }
}
