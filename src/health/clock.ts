/**
 * The monitor's notion of time, injectable so tests can drive it by hand. One timer at a time is enough:
 * the monitor keeps every deadline in its own heap and arms a single timer for the earliest.
 */

/** MonitorClock gives monotonic milliseconds and one-shot timers. */
export interface MonitorClock {
  /** Milliseconds on a monotonic scale (only differences matter). */
  now(): number;
  /** Calls `callback` once after about `delayMs`; returns a handle for clearTimer. */
  setTimer(callback: () => void, delayMs: number): unknown;
  clearTimer(handle: unknown): void;
}

/** systemClock is performance.now() plus the runtime's setTimeout. */
export const systemClock: MonitorClock = {
  now: () => performance.now(),
  setTimer: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
