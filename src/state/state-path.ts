/**
 * The path to the state, checked before gorb (root, as a rule) opens its database: every directory on the way to
 * the state directory, and every symbolic link met on the way, must belong to root or to gorb's own user, and no
 * directory on the way may be written by group or others (an ancestor with the sticky bit, such as /tmp, may: no
 * one else can rename or replace what root owns in it). The state directory itself must not be written by group or
 * others at all. state.db and its companions (-wal, -shm, -journal), when present, must be regular files of the
 * same owners, never symbolic links.
 *
 * Otherwise another user could plant a link where gorb writes (state.db -> /etc/passwd): gorb would create or
 * chmod a file of their choice as root and keep its state there.
 */
import { type Stats, lstatSync, mkdirSync, readlinkSync } from "node:fs";
import { resolve } from "node:path";
import { StateDirCreateError, UnsafeStatePathError } from "./errors.ts";
import { errorCode } from "../errno.ts";

/** Links followed on the way before the path is refused as a loop (Linux's own limit). */
const MAX_LINKS = 40;

/** The files SQLite keeps next to a database named `file`. */
const COMPANIONS = ["", "-wal", "-shm", "-journal"] as const;

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, "0");
}

function checkOwner(path: string, stat: Stats, uid: number): void {
  if (stat.uid === 0 || stat.uid === uid) return;
  throw new UnsafeStatePathError(path, "owner", `owned by uid ${stat.uid}, neither root nor gorb's user (uid ${uid})`, stat);
}

/** lstat of `path`, made first (a directory, mode 0700) when `create` and it is missing. */
function lstatOrMake(path: string, create: boolean): Stats {
  try {
    return lstatSync(path);
  } catch (error) {
    if (errorCode(error) !== "ENOENT" || !create) throw error;
  }
  try {
    mkdirSync(path, { mode: 0o700 });
  } catch (error) {
    // Made meanwhile: what is there now is checked as anything found on the way.
    const code = errorCode(error);
    if (code !== "EEXIST") throw new StateDirCreateError(path, code, error);
  }
  return lstatSync(path);
}

/**
 * The real path of the state directory `dir`, once every component on the way is checked (see the module
 * comment); `uid` is gorb's effective user id. With `create`, a missing directory on the way is made (mode 0700),
 * each only once its parent passed the checks: never through another user's link or in a directory others may
 * write to. Without it, `dir` must exist. Throws UnsafeStatePathError, StateDirCreateError (a directory could not be
 * made: its errno, and what to do), or a file system error.
 */
export function checkStateDir(dir: string, uid: number, create = false): string {
  let links = 0;
  // `path` is absolute and normalised; `last`: its final component is the state directory. Returns its real path.
  const visit = (path: string, last: boolean): string => {
    const names = path.split("/").filter((name) => name !== "");
    let at = "/";
    checkDirectory(at, lstatSync(at), last && names.length === 0);
    for (const [i, name] of names.entries()) {
      const next = at === "/" ? `/${name}` : `${at}/${name}`;
      const final = last && i === names.length - 1;
      const stat = lstatOrMake(next, create);
      checkOwner(next, stat, uid);
      if (stat.isSymbolicLink()) {
        if (++links > MAX_LINKS) throw new UnsafeStatePathError(next, "loop", `more than ${MAX_LINKS} symbolic links on the way`, stat);
        at = visit(resolve(at, readlinkSync(next)), final);
        continue;
      }
      checkDirectory(next, stat, final);
      at = next;
    }
    return at;
  };
  const checkDirectory = (path: string, stat: Stats, final: boolean): void => {
    checkOwner(path, stat, uid);
    if (!stat.isDirectory()) throw new UnsafeStatePathError(path, "not-directory", "not a directory", stat);
    const others = (stat.mode & 0o022) !== 0;
    if (others && (final || (stat.mode & 0o1000) === 0)) {
      throw new UnsafeStatePathError(
        path,
        "writable",
        `mode ${octal(stat.mode)}: group or others may write to it${final ? "" : " (and it has no sticky bit)"}; run: chmod go-w ${path}`,
        stat,
      );
    }
  };
  return visit(resolve(dir), true);
}

/**
 * Checks the database `file` (in a checked directory) and its companions that exist: regular files of root or
 * `uid`, not symbolic links. Throws UnsafeStatePathError.
 */
export function checkStateFiles(file: string, uid: number): void {
  for (const suffix of COMPANIONS) {
    const path = file + suffix;
    let stat: Stats;
    try {
      stat = lstatSync(path);
    } catch (error) {
      if (errorCode(error) === "ENOENT") continue;
      throw error;
    }
    if (!stat.isFile()) {
      const what = stat.isSymbolicLink() ? `a symbolic link to ${readlinkSync(path)}` : "not a regular file";
      throw new UnsafeStatePathError(path, "link", `${what}; gorb writes its state only to a regular file of its own`, stat);
    }
    checkOwner(path, stat, uid);
  }
}
