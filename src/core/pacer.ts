/**
 * Pacer: long loops of synchronous work (planning and running an apply of 11,000 objects, restoring a saved
 * state) call `pace()` between items; it lets the event loop run (API requests, health checks, timers) once every
 * `sliceMs` of work. Awaiting an already-resolved promise does not do that: only a macrotask turn does.
 */

/** Default longest stretch of synchronous work between two turns of the event loop. */
const DEFAULT_SLICE_MS = 10;

export class Pacer {
  readonly #sliceMs: number;
  #since = performance.now();

  constructor(sliceMs: number = DEFAULT_SLICE_MS) {
    this.#sliceMs = sliceMs;
  }

  /** Resolves at once, or after one turn of the event loop when the current slice is used up. */
  async pace(): Promise<void> {
    if (performance.now() - this.#since < this.#sliceMs) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.#since = performance.now();
  }
}
