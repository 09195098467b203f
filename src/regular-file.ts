/**
 * Reading a file a setting names (a configuration file, a CA certificate, a token file) only when it is a regular
 * file within a size: a character device (/dev/zero) or a FIFO would be read without end, growing memory, and a
 * huge file only to be refused later. The file's type and size are checked before it is opened, and again on the
 * open descriptor, which is then read.
 */
import { type Stats, closeSync, constants, fstatSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { errorCode } from "./errno.ts";

/** Largest CA bundle read (`--ca`, `GORB_CA`, a check's `args.ca`): Debian's whole system bundle is about 220 KiB. */
export const CA_FILE_LIMIT = 4 * 1024 * 1024;

/** What is wrong with a file: missing, unreadable (stat failed), not a regular file, over the size limit. */
export type FileProblemKind = "missing" | "unreadable" | "not-regular" | "too-large";

/** FileProblemError: a file that is not read; `problem` says why, to follow the file's name ("not a regular file"). */
export class FileProblemError extends Error {
  override readonly name = "FileProblemError";
  readonly file: string;
  readonly kind: FileProblemKind;
  readonly problem: string;

  constructor(file: string, kind: FileProblemKind, problem: string, options?: { cause?: unknown }) {
    super(`${file}: ${problem}`, options);
    this.file = file;
    this.kind = kind;
    this.problem = problem;
  }
}

/** "4 MiB" for a whole number of MiB, else "N bytes". */
function sizeText(bytes: number): string {
  return bytes % 1048576 === 0 ? `${bytes / 1048576} MiB` : `${bytes} bytes`;
}

function typeOf(stat: Stats): string {
  if (stat.isDirectory()) return "a directory";
  if (stat.isCharacterDevice()) return "a character device";
  if (stat.isBlockDevice()) return "a block device";
  if (stat.isFIFO()) return "a FIFO";
  if (stat.isSocket()) return "a socket";
  return "not a file";
}

/** Throws FileProblemError when `stat` (of `file`) is not a regular file of at most `limit` bytes (null: any size). */
function checkStat(file: string, stat: Stats, limit: number | null): void {
  if (!stat.isFile()) throw new FileProblemError(file, "not-regular", `is not a regular file (${typeOf(stat)})`);
  if (limit !== null && stat.size > limit) {
    throw new FileProblemError(file, "too-large", `is ${stat.size} bytes, over the limit of ${sizeText(limit)}`);
  }
}

function unreadable(file: string, error: unknown): FileProblemError {
  const code = errorCode(error);
  if (code === "ENOENT") return new FileProblemError(file, "missing", "no such file", { cause: error });
  return new FileProblemError(file, "unreadable", `cannot read it (${code !== "" ? code : String(error)})`, { cause: error });
}

/** The Stats of `file` (a symbolic link is followed), a regular file of at most `limit` bytes (null: any size). */
function statRegularFile(file: string, limit: number | null): Stats {
  let stat: Stats;
  try {
    stat = statSync(file);
  } catch (error) {
    throw unreadable(file, error);
  }
  checkStat(file, stat, limit);
  return stat;
}

/**
 * The permission bits of `file`, a regular file of at most `limit` bytes (null: any size); throws FileProblemError.
 * A symbolic link is followed.
 */
export function checkRegularFile(file: string, limit: number | null): number {
  return statRegularFile(file, limit).mode & 0o7777;
}

/**
 * Opens `file`, a regular file of at most `limit` bytes (null: any size), and returns its descriptor (the caller
 * closes it); throws FileProblemError, or what `check` (more checks of the file's Stats: its mode) throws. The path
 * is checked first, so a device or FIFO is never opened (opening some devices acts: a watchdog starts); then the
 * open descriptor is checked again, and that is what counts: what is read from the descriptor is the file checked,
 * even if the path was made to name another file in between. O_NONBLOCK: a FIFO swapped in after the first check
 * does not block the open (its fstat refuses it); reads of a regular file ignore the flag.
 */
export function openRegularFile(file: string, limit: number | null, check: (stat: Stats) => void = () => {}): number {
  check(statRegularFile(file, limit));
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (error) {
    throw unreadable(file, error);
  }
  try {
    let stat: Stats;
    try {
      stat = fstatSync(fd);
    } catch (error) {
      throw unreadable(file, error);
    }
    checkStat(file, stat, limit);
    check(stat);
    return fd;
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

/** Bytes read from a descriptor at a time, past what its fstat said (a file that grows as it is read). */
const READ_CHUNK = 64 * 1024;

/**
 * The UTF-8 text of the file open as `fd` (see openRegularFile), from its start; throws FileProblemError naming `file`.
 * At most `limit` bytes (null: any size) are read: the size was checked on the descriptor, but a file that grew since
 * would otherwise be read to its end, however long it grew.
 */
export function readOpenFile(file: string, fd: number, limit: number | null): string {
  if (limit === null) {
    try {
      return readFileSync(fd, "utf8");
    } catch (error) {
      throw unreadable(file, error);
    }
  }
  const chunks: Buffer[] = [];
  let length = 0;
  // One byte past the limit tells a file that grew over it from one that is exactly at it.
  while (length <= limit) {
    const chunk = Buffer.allocUnsafe(Math.min(READ_CHUNK, limit + 1 - length));
    let n: number;
    try {
      n = readSync(fd, chunk, 0, chunk.length, length);
    } catch (error) {
      throw unreadable(file, error);
    }
    if (n === 0) break;
    chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
    length += n;
  }
  if (length > limit) throw new FileProblemError(file, "too-large", `grew over the limit of ${sizeText(limit)} as it was read`);
  return Buffer.concat(chunks, length).toString("utf8");
}

/**
 * The UTF-8 text of `file`, a regular file of at most `limit` bytes (see openRegularFile, which calls `check` with the
 * path's Stats, then with the descriptor's: the last call is of the file read); throws FileProblemError.
 */
export function readRegularFile(file: string, limit: number, check?: (stat: Stats) => void): string {
  const fd = openRegularFile(file, limit, check);
  try {
    return readOpenFile(file, fd, limit);
  } finally {
    closeSync(fd);
  }
}
