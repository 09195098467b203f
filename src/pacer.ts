/**
 * Pacer: long loops of synchronous work (planning and running an apply of 11,000 objects, encoding its kernel
 * writes, restoring a saved state) ask `due()` between items and, when it says so, `await turn()`: one turn of the event loop (API requests,
 * health checks, timers) once every `sliceMs` of work. Awaiting an already-resolved promise does not do that: only
 * a macrotask turn does.
 *
 * `due()` is synchronous, so the loop awaits nothing between turns, and it reads the clock only every so many
 * items: after each reading it guesses, from the items done so far in the slice, how many fit in half of what is
 * left of it (at most MAX_STRIDE). In the emulated guest (HPET clock source) a reading costs about 4 µs; an apply
 * of 11,000 objects read the clock and awaited a promise for every one of them.
 */

/** Default longest stretch of synchronous work between two turns of the event loop. */
const DEFAULT_SLICE_MS = 10;
/** Most items between two clock readings, so a run of items slower than the ones before overshoots little. */
const MAX_STRIDE = 64;

export class Pacer {
  readonly #sliceMs: number;
  readonly #now: () => number;
  #since: number;
  /** Calls of due() since the slice began, and the count at which the clock is read next. */
  #items = 0;
  #nextRead = 1;

  constructor(sliceMs: number = DEFAULT_SLICE_MS, now: () => number = () => performance.now()) {
    this.#sliceMs = sliceMs;
    this.#now = now;
    this.#since = now();
  }

  /** True when the slice is used up: the caller then awaits turn() before its next item. */
  due(): boolean {
    if (++this.#items < this.#nextRead) return false;
    const elapsed = this.#now() - this.#since;
    const left = this.#sliceMs - elapsed;
    if (left <= 0) return true;
    // This call comes before an item, so the slice has done one item fewer than it has asked about.
    const done = this.#items - 1;
    const stride = done === 0 ? 1 : elapsed <= 0 ? MAX_STRIDE : Math.floor((left / 2) * (done / elapsed));
    this.#nextRead = this.#items + Math.max(1, Math.min(MAX_STRIDE, stride));
    return false;
  }

  /** One turn of the event loop; the next slice starts when it is over. */
  async turn(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.#since = this.#now();
    this.#items = 0;
    this.#nextRead = 1;
  }
}
