/**
 * The copies of libnl-3 and libnl-genl-3 carried inside the compiled executable, for machines without the
 * libnl-3-200 / libnl-genl-3-200 packages. Only the compiled executable imports this module (see
 * src/cli/native.ts): run from source, gorb uses the system libraries and never touches these paths.
 *
 * The system copy is always tried first: it gets the distribution's security updates, the embedded one does not.
 * It is used only when the system has BOTH libraries (ffi/libnl.ts finds them by absolute path, never in the
 * working directory); a system with libnl-3 but not libnl-genl-3 gets both embedded copies, because one copy's
 * libnl-genl-3 on another copy's libnl-3 aborts the process. Only when the system copy cannot be used are the
 * embedded files written to a fresh private directory (mode 0700, random
 * name), loaded from there, and deleted at once: a loaded library stays mapped after its file is unlinked.
 * Bun could dlopen the /$bunfs path itself, but it extracts to a predictable /tmp/.bun-*.so name, which a local
 * user could race; a mkdtemp directory cannot be.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import libnl3File from "/usr/lib/x86_64-linux-gnu/libnl-3.so.200" with { type: "file" };
import libnlGenl3File from "/usr/lib/x86_64-linux-gnu/libnl-genl-3.so.200" with { type: "file" };
import { LibraryLoadError } from "../ffi/errors.ts";
import { LIBNL3_SONAME, LIBNL_GENL3_SONAME, addLibnlCandidate, libnlLoaded, openLibnl } from "../ffi/libnl.ts";

/** Directories tried in turn for the extracted copies (a noexec mount makes dlopen fail; the next one is tried). */
function extractionDirs(env: Readonly<Record<string, string | undefined>>): string[] {
  const dirs = [env.GORB_LIBNL_DIR, tmpdir(), "/var/tmp", "/run"].filter((d): d is string => d !== undefined && d !== "");
  return [...new Set(dirs)];
}

/**
 * loadLibnl loads libnl, from the system when possible, else from the embedded copies, and returns where it
 * came from ("system" or "embedded:<dir>"). Throws the system's LibraryLoadError when neither loads.
 */
export async function loadLibnl(env: Readonly<Record<string, string | undefined>> = process.env): Promise<string> {
  if (libnlLoaded()) return openLibnl().source;
  let systemError: unknown;
  try {
    return openLibnl().source;
  } catch (error) {
    if (!(error instanceof LibraryLoadError)) throw error;
    systemError = error;
  }
  const libnl3 = new Uint8Array(await Bun.file(libnl3File).arrayBuffer());
  const libnlGenl3 = new Uint8Array(await Bun.file(libnlGenl3File).arrayBuffer());
  for (const base of extractionDirs(env)) {
    let dir: string;
    try {
      dir = mkdtempSync(join(base, "gorb-libnl-"));
    } catch {
      continue;
    }
    try {
      chmodSync(dir, 0o700);
      // NB: libnl-genl-3 needs libnl-3 (DT_NEEDED libnl-3.so.200); loading libnl-3 first by path satisfies it,
      // because the dynamic loader matches the already-loaded library by its soname.
      const nl3Path = join(dir, LIBNL3_SONAME);
      const genlPath = join(dir, LIBNL_GENL3_SONAME);
      writeFileSync(nl3Path, libnl3, { mode: 0o500 });
      writeFileSync(genlPath, libnlGenl3, { mode: 0o500 });
      addLibnlCandidate(`embedded:${base}`, nl3Path, genlPath);
      try {
        return openLibnl().source;
      } catch {
        // e.g. a noexec mount: try the next directory.
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  throw systemError;
}
