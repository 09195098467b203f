/**
 * The copies of libnl-3 and libnl-genl-3 carried inside the compiled executable, for machines without the
 * libnl-3-200 / libnl-genl-3-200 packages. Only the compiled executable imports this module (see
 * src/cli/native.ts): run from source, gorb uses the system libraries and never touches these paths.
 *
 * The system copy is always tried first: it gets the distribution's security updates, the embedded one does not.
 * It is used only when the system has BOTH libraries (ffi/libnl.ts finds them by absolute path, never in the
 * working directory); a system with libnl-3 but not libnl-genl-3 gets both embedded copies, because one copy's
 * libnl-genl-3 on another copy's libnl-3 aborts the process. Only when the system copy cannot be used are the
 * embedded files read and loaded, from memory or a directory no other user can touch (ffi/libnl-copies.ts).
 * Bun could dlopen the /$bunfs path itself, but it extracts to a predictable /tmp/.bun-*.so name, which a local
 * user could race.
 */
import libnl3File from "/usr/lib/x86_64-linux-gnu/libnl-3.so.200" with { type: "file" };
import libnlGenl3File from "/usr/lib/x86_64-linux-gnu/libnl-genl-3.so.200" with { type: "file" };
import { type LibnlCopies, loadLibnl as loadLibnlFrom } from "../ffi/libnl-copies.ts";

async function embeddedCopies(): Promise<LibnlCopies> {
  return {
    libnl3: new Uint8Array(await Bun.file(libnl3File).arrayBuffer()),
    libnlGenl3: new Uint8Array(await Bun.file(libnlGenl3File).arrayBuffer()),
  };
}

/**
 * loadLibnl loads libnl, from the system when possible, else from the embedded copies, and returns where it
 * came from ("system", "embedded:memfd" or "embedded:<dir>"). Throws LibnlLoadError when no place can be used.
 */
export function loadLibnl(env: Readonly<Record<string, string | undefined>> = process.env): Promise<string> {
  return loadLibnlFrom(embeddedCopies, env);
}
