/**
 * A hand-driven MonitorClock for deterministic monitor tests: time moves only through advance(), which fires
 * due timers in time order and lets promise callbacks (check results) run between them.
 */
import type { MonitorClock } from "../../../src/health/clock.ts";

interface PendingTimer {
  readonly at: number;
  readonly callback: () => void;
}

/** ManualClock starts at t=0 and moves only when told. */
export class ManualClock implements MonitorClock {
  private time = 0;
  private nextId = 1;
  private readonly timers = new Map<number, PendingTimer>();
  /** Most timers ever pending at once (the monitor should never need more than one). */
  maxPending = 0;
  /** Timers fired so far. */
  fired = 0;

  now(): number {
    return this.time;
  }

  setTimer(callback: () => void, delayMs: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + Math.max(0, delayMs), callback });
    this.maxPending = Math.max(this.maxPending, this.timers.size);
    return id;
  }

  clearTimer(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** pending is the number of armed timers. */
  get pending(): number {
    return this.timers.size;
  }

  /** advance moves time forward by `ms`, firing every timer that falls due on the way, in order. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      await settle();
      let nextId = -1;
      let next: PendingTimer | undefined;
      for (const [id, t] of this.timers) {
        if (t.at <= end && (next === undefined || t.at < next.at)) {
          next = t;
          nextId = id;
        }
      }
      if (next === undefined) break;
      this.timers.delete(nextId);
      this.time = Math.max(this.time, next.at);
      this.fired++;
      next.callback();
    }
    this.time = end;
    await settle();
  }

  /** advanceTo moves time to an absolute instant. */
  advanceTo(at: number): Promise<void> {
    return this.advance(Math.max(0, at - this.time));
  }
}

/** settle lets queued promise callbacks run (check results resolve through a few microtask hops). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
