/**
 * The page's full reads (GET /service?detail=true): at the stream's (re)open, on `resync`, and on every tick of the
 * poll. One at a time: a tick while a read is in flight is skipped (a slow API, e.g. 2.7 MB of detail, would
 * otherwise pile up a read every tick), and a read asked for while one is in flight runs once after it (the one in
 * flight may have started before what the request is about).
 */
export class Reads {
  readonly #read: () => Promise<void>;
  #current: Promise<void> | null = null;
  #again = false;
  #closed = false;

  constructor(read: () => Promise<void>) {
    this.#read = read;
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
          } catch {
            // The next tick reads again.
          }
        } while (this.#again && !this.#closed);
      } finally {
        this.#current = null;
      }
    };
    this.#current = run();
    return this.#current;
  }
}
