/**
 * The sliding window of the last N check results (N = 100 as in the original), kept as a ring of bytes with
 * a running count of passes, so health is O(1) per result.
 */

/** WINDOW_SIZE is the original's window: the last 100 results. */
export const WINDOW_SIZE = 100;

/** HealthWindow remembers the last `capacity` pass/fail results. */
export class HealthWindow {
  private readonly ring: Uint8Array;
  private head = 0;
  private count = 0;
  private passes = 0;

  constructor(readonly capacity: number = WINDOW_SIZE) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`window capacity must be a positive integer, got ${capacity}`);
    this.ring = new Uint8Array(capacity);
  }

  /** push records one result, dropping the oldest once the window is full. */
  push(ok: boolean): void {
    const bit = ok ? 1 : 0;
    if (this.count === this.capacity) this.passes -= this.ring[this.head] ?? 0;
    else this.count++;
    this.ring[this.head] = bit;
    this.passes += bit;
    this.head = (this.head + 1) % this.capacity;
  }

  /** samples is how many results the window holds (at most capacity). */
  get samples(): number {
    return this.count;
  }

  /** samplesOk is how many of them passed. */
  get samplesOk(): number {
    return this.passes;
  }

  /** health is the fraction of passes in the window, 0 when it is empty. */
  get health(): number {
    return this.count === 0 ? 0 : this.passes / this.count;
  }

  /** copyFrom replaces this window's results with another window's (same capacity). */
  copyFrom(other: HealthWindow): void {
    if (other.capacity !== this.capacity) throw new RangeError("windows of different capacities");
    this.ring.set(other.ring);
    this.head = other.head;
    this.count = other.count;
    this.passes = other.passes;
  }

  /** reset forgets every result. */
  reset(): void {
    this.ring.fill(0);
    this.head = 0;
    this.count = 0;
    this.passes = 0;
  }
}
