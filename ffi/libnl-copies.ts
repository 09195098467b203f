/**
 * Loading libnl from copies held in memory (the compiled executable carries libnl-3 and libnl-genl-3, see
 * src/embedded-libnl.ts) when the system copy cannot be used, without letting any other user choose what is loaded.
 * gorb runs as root, often with an environment someone else chose (sudo -E, a service manager passing the
 * caller's TMPDIR): copies written into a directory another user owns could be renamed or replaced by that user
 * between the write and dlopen, and root would run their code.
 *
 * So the copies go, in this order, to:
 *   1. memfds (memfd_create(2)): files in memory with a path in no directory, loaded by dlopen of /proc/self/fd/N.
 *      Only this process (and root) can reach them, and no noexec mount applies.
 *   2. only where that fails (vm.memfd_noexec=2, no /proc): a fresh private directory (mkdtemp, mode 0700) in the
 *      first SAFE directory of GORB_LIBNL_DIR, TMPDIR, /tmp, /var/tmp and /run/gorb (created 0700 when missing). A
 *      directory is safe when every component of its path from /, looked at with lstat, is a directory (not a
 *      symbolic link) owned by root or by this process's user, and writable by no one else, unless sticky (like
 *      /tmp: then no one else can rename or delete what this process creates in it). A directory that is not, or
 *      where dlopen fails (a noexec mount), is skipped.
 * The memfds are closed and the files deleted as soon as the libraries are loaded (or failed to): a loaded library
 * stays mapped. Nothing is written while the system copy can be used.
 */
import { closeSync, lstatSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { memfdCreate } from "./libc.ts";
import { LIBNL3_SONAME, LIBNL_GENL3_SONAME, type LibnlFailure, LibnlLoadError, type LibnlPlace, libnlLoaded, openLibnl } from "./libnl.ts";

/** The bytes of the two libraries. */
export interface LibnlCopies {
  readonly libnl3: Uint8Array;
  readonly libnlGenl3: Uint8Array;
}

/** Options of loadLibnl. */
export interface LoadLibnlOptions {
  /** Try memfds first. @default true (false goes straight to the directories; tests reach them with it) */
  readonly memfd?: boolean;
}

/** gorb's runtime directory (the systemd unit's RuntimeDirectory): the last directory tried, created when missing. */
const RUN_DIR = "/run/gorb";

/** Directories tried in turn for the extracted copies, each only when safe. */
function extractionDirs(env: Readonly<Record<string, string | undefined>>): string[] {
  const dirs = [env.GORB_LIBNL_DIR, env.TMPDIR, "/tmp", "/var/tmp", RUN_DIR].filter((d): d is string => d !== undefined && d !== "");
  return [...new Set(dirs)];
}

const S_ISVTX = 0o1000;
const GROUP_OTHER_WRITE = 0o022;

/**
 * Why no one but root and this process's user is kept out of `dir` (see the module comment), or null when they
 * are: each component of the path from / must be a directory, not a symbolic link, owned by root or `euid`, and not
 * writable by group or others unless sticky.
 */
function unsafeDirReason(dir: string, euid: number): string | null {
  if (!isAbsolute(dir)) return "not an absolute path";
  const parts = resolve(dir).split("/").filter((p) => p !== "");
  for (let i = 0; i <= parts.length; i++) {
    const path = `/${parts.slice(0, i).join("/")}`;
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(path);
    } catch (e) {
      return `${path}: ${e instanceof Error ? e.message : String(e)}`;
    }
    if (st.isSymbolicLink()) return `${path} is a symbolic link`;
    if (!st.isDirectory()) return `${path} is not a directory`;
    if (st.uid !== 0 && st.uid !== euid) return `${path} belongs to uid ${st.uid}, not root`;
    if ((st.mode & GROUP_OTHER_WRITE) !== 0 && (st.mode & S_ISVTX) === 0) return `${path} is writable by others (mode ${(st.mode & 0o7777).toString(8)})`;
  }
  return null;
}

/** openLibnl(place): where the libraries came from, or the place's own failure (not the system's again). */
function tryPlace(place: LibnlPlace): string | LibnlFailure {
  try {
    return openLibnl(place).source;
  } catch (e) {
    if (!(e instanceof LibnlLoadError)) throw e;
    // After a partly loaded place, the failure is that place's: "already loaded from there".
    return e.failures.find((f) => f.source === place.source) ?? { source: place.source, reason: e.message };
  }
}

/** Load the copies from memfds, closed again whatever happens. */
function loadFromMemfds(copies: LibnlCopies): string | LibnlFailure {
  const source = "embedded:memfd";
  const fds: number[] = [];
  const inMemory = (name: string, bytes: Uint8Array): string => {
    const fd = memfdCreate(name);
    fds.push(fd);
    for (let written = 0; written < bytes.length; ) written += writeSync(fd, bytes, written);
    return `/proc/self/fd/${fd}`;
  };
  try {
    // NB: libnl-genl-3 needs libnl-3 (DT_NEEDED libnl-3.so.200); loading libnl-3 first satisfies it, because the
    // dynamic loader matches the already-loaded library by its soname, whatever its path.
    const libnl3 = inMemory(LIBNL3_SONAME, copies.libnl3);
    const libnlGenl3 = inMemory(LIBNL_GENL3_SONAME, copies.libnlGenl3);
    return tryPlace({ source, libnl3, libnlGenl3 });
  } catch (e) {
    return { source, reason: e instanceof Error ? e.message : String(e) };
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

/** Load the copies from a private directory made in `base`, deleted again whatever happens. */
function loadFromDir(base: string, copies: LibnlCopies): string | LibnlFailure {
  const source = `embedded:${base}`;
  if (base === RUN_DIR) {
    try {
      mkdirSync(RUN_DIR, { mode: 0o700 });
    } catch {
      // exists already (checked below), or cannot be made (the check below says why)
    }
  }
  const unsafe = unsafeDirReason(base, process.geteuid?.() ?? -1);
  if (unsafe !== null) return { source, reason: `not used: ${unsafe}` };
  let dir: string;
  try {
    dir = mkdtempSync(join(base, "gorb-libnl-"));
  } catch (e) {
    return { source, reason: e instanceof Error ? e.message : String(e) };
  }
  try {
    const libnl3 = join(dir, LIBNL3_SONAME);
    const libnlGenl3 = join(dir, LIBNL_GENL3_SONAME);
    writeFileSync(libnl3, copies.libnl3, { mode: 0o500, flag: "wx" });
    writeFileSync(libnlGenl3, copies.libnlGenl3, { mode: 0o500, flag: "wx" });
    return tryPlace({ source, libnl3, libnlGenl3 });
  } catch (e) {
    return { source, reason: e instanceof Error ? e.message : String(e) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * loadLibnl loads libnl from the system when possible, else from `copies()` (called only then) the way the module
 * comment says, and returns where it came from ("system", "embedded:memfd" or "embedded:<dir>"). Throws
 * LibnlLoadError with each place's failure when none can be used.
 */
export async function loadLibnl(
  copies: () => Promise<LibnlCopies>,
  env: Readonly<Record<string, string | undefined>>,
  options: LoadLibnlOptions = {},
): Promise<string> {
  if (libnlLoaded()) return openLibnl().source;
  const failures: LibnlFailure[] = [];
  try {
    return openLibnl().source;
  } catch (e) {
    if (!(e instanceof LibnlLoadError)) throw e;
    failures.push(...e.failures);
  }
  const libs = await copies();
  const attempts = [...(options.memfd === false ? [] : [() => loadFromMemfds(libs)]), ...extractionDirs(env).map((base) => () => loadFromDir(base, libs))];
  for (const attempt of attempts) {
    const result = attempt();
    if (typeof result === "string") return result;
    failures.push(result);
  }
  throw new LibnlLoadError(failures);
}
