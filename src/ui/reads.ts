/**
 * The page's full reads (GET /service?detail=true): at the stream's (re)open, on `resync`, and on every tick of the
 * poll. One at a time: a tick while a read is in flight is skipped (a slow API, e.g. 2.7 MB of detail, would
 * otherwise pile up a read every tick), and a read asked for while one is in flight runs once after it (the one in
 * flight may have started before what the request is about). A failed read is reported (what the page shows is
 * stale: since when, and why) until the next read succeeds.
 */

/** The reads are failing: what is shown is what the last good read gave. */
export interface ReadFailure {
  /** What the last failed read said. */
  readonly error: string;
  /** When the first failure since the last good read happened (ms since the epoch). */
  readonly since: number;
}

export interface ReadsOptions {
  /** Called after each failed read, and with null at the first good read after failures. */
  readonly report: (failure: ReadFailure | null) => void;
  /** An error as the page shows it. */
  readonly describe: (error: unknown) => string;
  readonly now?: () => number;
}

export class Reads {
  readonly #read: () => Promise<void>;
  readonly #options: ReadsOptions;
  #current: Promise<void> | null = null;
  #again = false;
  #closed = false;
  #failure: ReadFailure | null = null;

  constructor(read: () => Promise<void>, options: ReadsOptions) {
    this.#read = read;
    this.#options = options;
  }

  /** Whether the last read failed (and since when). */
  get failure(): ReadFailure | null {
    return this.#failure;
  }

  /** Whether a read is in flight. */
  get busy(): boolean {
    return this.#current !== null;
  }

  /** A tick of the poll: a read, unless one is in flight. */
  tick(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return this.#current ?? this.#start();
  }

  /** A read that must start from now: at once, or after the one in flight. */
  request(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#current === null) return this.#start();
    this.#again = true;
    return this.#current;
  }

  /** No more reads start (the page's effect is over). */
  close(): void {
    this.#closed = true;
    this.#again = false;
  }

  #start(): Promise<void> {
    const run = async () => {
      try {
        do {
          this.#again = false;
          try {
            await this.#read();
            if (this.#failure !== null) this.#settle(null);
          } catch (error) {
            // Shown until a read succeeds; the next tick reads again.
            this.#settle({ error: this.#options.describe(error), since: this.#failure?.since ?? (this.#options.now ?? Date.now)() });
          }
        } while (this.#again && !this.#closed);
      } finally {
        this.#current = null;
      }
    };
    this.#current = run();
    return this.#current;
  }

  #settle(failure: ReadFailure | null): void {
    this.#failure = failure;
    if (!this.#closed) this.#options.report(failure);
  }
}
