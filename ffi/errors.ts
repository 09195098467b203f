/**
 * Errors raised while loading or calling native libraries.
 */

/** A shared library could not be loaded; the message names it and the Debian package that provides it. */
export class LibraryLoadError extends Error {
  override readonly name = "LibraryLoadError";
  readonly library: string;
  readonly debianPackage: string;

  constructor(library: string, debianPackage: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`cannot load ${library} (${reason}); install it with: apt-get install ${debianPackage}`, { cause });
    this.library = library;
    this.debianPackage = debianPackage;
  }
}

/** A libnl call returned a negative NLE_* code; `text` is libnl's nl_geterror(). */
export class LibnlError extends Error {
  override readonly name = "LibnlError";
  readonly fn: string;
  /** Positive NLE_* code. */
  readonly code: number;

  constructor(fn: string, code: number, text: string) {
    super(`${fn}: ${text} (NLE ${code})`);
    this.fn = fn;
    this.code = code;
  }
}

/** A libc call failed; errno is the positive error number. */
export class SyscallError extends Error {
  override readonly name = "SyscallError";
  readonly fn: string;
  readonly errno: number;

  constructor(fn: string, errno: number) {
    super(`${fn} failed with errno ${errno}`);
    this.fn = fn;
    this.errno = errno;
  }
}
