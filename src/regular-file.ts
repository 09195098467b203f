/**
 * Reading a file a setting names (a configuration file, a CA certificate, a token file) only when it is a regular
 * file within a size: a character device (/dev/zero) or a FIFO would be read without end, growing memory, and a
 * huge file only to be refused later. The file's type and size are checked before it is opened.
 */
import { type Stats, readFileSync, statSync } from "node:fs";

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

/**
 * The permission bits of `file`, a regular file of at most `limit` bytes (null: any size); throws FileProblemError.
 * A symbolic link is followed.
 */
export function checkRegularFile(file: string, limit: number | null): number {
  let stat: Stats;
  try {
    stat = statSync(file);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === "ENOENT") throw new FileProblemError(file, "missing", "no such file", { cause: error });
    throw new FileProblemError(file, "unreadable", `cannot read it (${String(code ?? error)})`, { cause: error });
  }
  if (!stat.isFile()) throw new FileProblemError(file, "not-regular", `is not a regular file (${typeOf(stat)})`);
  if (limit !== null && stat.size > limit) {
    throw new FileProblemError(file, "too-large", `is ${stat.size} bytes, over the limit of ${sizeText(limit)}`);
  }
  return stat.mode & 0o7777;
}

/** The UTF-8 text of `file`, a regular file of at most `limit` bytes (see checkRegularFile); throws FileProblemError. */
export function readRegularFile(file: string, limit: number): string {
  checkRegularFile(file, limit);
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    throw new FileProblemError(file, "unreadable", `cannot read it (${String((error as { code?: unknown }).code ?? error)})`, { cause: error });
  }
}
