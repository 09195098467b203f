/**
 * The monitor's notion of time, injectable so tests can drive it by hand. One timer at a time is enough:
 * the monitor keeps every deadline in its own heap and arms a single timer for the earliest.
 */

/** MonitorClock gives monotonic milliseconds and one-shot timers. */
export interface MonitorClock {
  /** Milliseconds on a monotonic scale (only differences matter). */
  now(): number;
  /** Calls `callback` once after about `delayMs` (<= 0: as soon as pending I/O has run); returns a handle. */
  setTimer(callback: () => void, delayMs: number): unknown;
  clearTimer(handle: unknown): void;
}

class Immediate {
  constructor(readonly handle: ReturnType<typeof setImmediate>) {}
}

/**
 * systemClock is performance.now() plus the runtime's timers. NB: a zero delay uses setImmediate, not
 * setTimeout(0): the monitor yields with it between batches, and a timeout is clamped to about 1ms, which
 * would cap a busy monitor at one batch per millisecond.
 */
export const systemClock: MonitorClock = {
  now: () => performance.now(),
  setTimer: (callback, delayMs) => (delayMs <= 0 ? new Immediate(setImmediate(callback)) : setTimeout(callback, delayMs)),
  clearTimer: (handle) => {
    if (handle instanceof Immediate) clearImmediate(handle.handle);
    else clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};
