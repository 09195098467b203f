/**
 * The directories `exec` health checks may run programs from (--check-exec-dir). gorb runs as root and any API
 * client may name a program under them, so a directory others can write to would let any local user run code as
 * root: such a directory is refused at start, naming it, its mode and the fix. Every ancestor is checked too (one
 * others may write to, without the sticky bit, lets them swap the directory for their own).
 */
import { realpathSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { errorCode } from "../errno.ts";

/** ExecDirError: a --check-exec-dir that cannot be used; `dir` is the path given, `problem` what is wrong. */
export class ExecDirError extends Error {
  override readonly name = "ExecDirError";
  readonly flag = "check-exec-dir";
  readonly dir: string;
  readonly problem: string;
  /** The offending directory's permission bits, when the problem is its mode. */
  readonly mode: number | null;

  constructor(dir: string, problem: string, mode: number | null = null, options?: { cause?: unknown }) {
    super(`--check-exec-dir: ${dir}: ${problem}`, options);
    this.dir = dir;
    this.problem = problem;
    this.mode = mode;
  }
}

const OTHERS_WRITE = 0o002;
const STICKY = 0o1000;

/** Throws ExecDirError unless `dir` is an existing directory that others cannot write to (nor swap out). */
function checkExecDir(dir: string): void {
  let real: string;
  try {
    real = realpathSync(dir);
    if (!statSync(real).isDirectory()) throw new ExecDirError(dir, "is not a directory");
  } catch (error) {
    if (error instanceof ExecDirError) throw error;
    const code = errorCode(error);
    throw new ExecDirError(dir, code === "ENOENT" ? "no such directory" : `cannot read it (${code !== "" ? code : String(error)})`, null, { cause: error });
  }
  const mode = statSync(real).mode & 0o7777;
  if ((mode & OTHERS_WRITE) !== 0) {
    throw new ExecDirError(dir, `others may write to it (mode ${mode.toString(8).padStart(4, "0")}); run: chmod o-w ${real}`, mode);
  }
  for (let up = dirname(real); ; up = dirname(up)) {
    const m = statSync(up).mode & 0o7777;
    if ((m & OTHERS_WRITE) !== 0 && (m & STICKY) === 0) {
      throw new ExecDirError(dir, `its parent ${up} may be written to by others (mode ${m.toString(8).padStart(4, "0")}); run: chmod o-w ${up}`, m);
    }
    if (up === "/") break;
  }
}

/** checkExecDirs checks each directory (see checkExecDir); null (the default directory) is not checked. */
export function checkExecDirs(dirs: readonly string[] | null): void {
  for (const dir of dirs ?? []) checkExecDir(dir);
}
