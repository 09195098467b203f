/**
 * The logger gorb's library code writes to (core, discovery, the API): the subset of a consola instance it
 * uses, so tests can pass a recording or silent logger and the daemon passes `consola.withTag("core")`. It sits
 * below every layer that logs, so none of them has to import another for it.
 */

/** Logger is what a consola instance provides (and all gorb's library code needs). */
export interface Logger {
  debug(message: string, ...args: unknown[]): void;
  info(message: string, ...args: unknown[]): void;
  warn(message: string, ...args: unknown[]): void;
  error(message: string, ...args: unknown[]): void;
  /** consola's level: debug lines are written from 4 up. Absent (a test's logger): every line is written. */
  readonly level?: number;
}

/** True when `log` writes debug lines: code that builds a debug line per object of a bulk run asks first. */
export function debugOn(log: Logger): boolean {
  return log.level === undefined || log.level >= 4;
}

/** A logger that drops everything. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
