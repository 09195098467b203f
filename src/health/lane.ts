/**
 * A lane of the health monitor (./monitor.ts): one class of probes (plain sockets and processes, or HTTP) with its
 * own in-flight limit and FIFO queue, and the limit's adaptation to the event loop's lag.
 */

/**
 * LAG_HIGH_MS, LAG_LOW_MS: when the monitor's timer fires more than LAG_HIGH_MS late (the event loop is saturated:
 * more checks are in flight than this process can serve, so their replies wait and they would time out), every
 * lane's in-flight limit halves, down to MIN_ADAPTIVE_IN_FLIGHT; while it fires less than LAG_LOW_MS late, the limit
 * climbs back by an eighth per tick, up to its maximum. Checks beyond the limit wait in the FIFO queue, and their timeout
 * only starts when they start, so an overloaded monitor checks fewer backends per second instead of timing its
 * own checks out (measured in the emulated guest: 1,000 http backends/s at 256 in flight, about 100 checks/s
 * possible, half the backends went down on timeouts).
 */
const LAG_HIGH_MS = 250;
const LAG_LOW_MS = 50;
const MIN_ADAPTIVE_IN_FLIGHT = 16;

/** Lane is one class of probes with its own concurrency limit and FIFO queue. */
export class Lane<P> {
  /** Probes of this lane holding resources. */
  open = 0;
  /** The limit in force: `max`, or less while the event loop lags (see LAG_HIGH_MS). */
  limit: number;
  private queue: P[] = [];
  private head = 0;

  constructor(readonly max: number) {
    this.limit = max;
  }

  /** adapt moves the limit for an event-loop lag of `lagMs` (see LAG_HIGH_MS). */
  adapt(lagMs: number): void {
    if (lagMs > LAG_HIGH_MS) this.limit = Math.max(Math.min(MIN_ADAPTIVE_IN_FLIGHT, this.max), this.limit >> 1);
    else if (lagMs < LAG_LOW_MS && this.limit < this.max) this.limit = Math.min(this.max, this.limit + Math.max(1, this.limit >> 3));
  }

  get queued(): number {
    return this.queue.length - this.head;
  }

  push(p: P): void {
    this.queue.push(p);
  }

  /** shift returns the next queued probe, or undefined; stale entries are the caller's to skip. */
  shift(): P | undefined {
    if (this.head >= this.queue.length) return undefined;
    const p = this.queue[this.head++];
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return p;
  }

  clear(): void {
    this.queue = [];
    this.head = 0;
  }
}
