/**
 * The logger core and discovery write to: the subset of a consola instance they use, so tests can pass a
 * recording or silent logger and the daemon passes `consola.withTag("core")`.
 */

/** Logger is what a consola instance provides (and all gorb's library code needs). */
export interface Logger {
  debug(message: string, ...args: unknown[]): void;
  info(message: string, ...args: unknown[]): void;
  warn(message: string, ...args: unknown[]): void;
  error(message: string, ...args: unknown[]): void;
}

/** A logger that drops everything. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
