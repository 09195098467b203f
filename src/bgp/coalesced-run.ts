/**
 * CoalescedRun: an async pass that never runs twice at once. A call while a pass runs asks for one more pass
 * after it and shares its promise, so a burst of calls costs at most one extra pass, and every caller's promise
 * resolves once what it asked for has been handled.
 */
export class CoalescedRun {
  readonly #pass: () => Promise<void>;
  readonly #stopped: () => boolean;
  readonly #after: () => void;
  #running: Promise<void> | null = null;
  #again = false;

  /** `pass` does the work; no further pass starts once `stopped()`; `after` runs when a series of passes ends. */
  constructor(pass: () => Promise<void>, stopped: () => boolean, after: () => void = () => {}) {
    this.#pass = pass;
    this.#stopped = stopped;
    this.#after = after;
  }

  /** Run a pass now, or once more after the one running. */
  run(): Promise<void> {
    if (this.#running !== null) {
      this.#again = true;
      return this.#running;
    }
    const run = (async () => {
      try {
        do {
          this.#again = false;
          await this.#pass();
        } while (this.#again && !this.#stopped());
      } finally {
        this.#running = null;
        this.#after();
      }
    })();
    this.#running = run;
    return run;
  }

  /** Resolves once the passes running now (if any) are over. */
  async idle(): Promise<void> {
    await this.#running;
  }
}
