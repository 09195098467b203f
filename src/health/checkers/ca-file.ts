/**
 * The CA bundle an https or tls check names (`args.ca`), read once when its checker is made. The path comes from an
 * API client and the daemon runs as root, so only a regular file of at most CA_FILE_LIMIT bytes is read: /dev/zero
 * or a FIFO would be read without end (growing memory, or blocking the event loop for good).
 */
import { CA_FILE_LIMIT, FileProblemError, readRegularFile } from "../../regular-file.ts";
import { errorCode } from "../checker.ts";

/** A CA file's text, or why it could not be read: an errno-like code and the problem in words. */
export type CaFile = { readonly ca: string; readonly error: null } | { readonly ca: null; readonly error: { readonly code: string; readonly problem: string } };

const CODES: Readonly<Record<FileProblemError["kind"], string>> = { missing: "ENOENT", unreadable: "EIO", "not-regular": "EINVAL", "too-large": "EFBIG" };

/** Reads the CA bundle at `path` (see the module comment). */
export function readCaFile(path: string): CaFile {
  try {
    return { ca: readRegularFile(path, CA_FILE_LIMIT), error: null };
  } catch (error) {
    if (!(error instanceof FileProblemError)) return { ca: null, error: { code: errorCode(error) || "EIO", problem: String(error) } };
    const code = error.kind === "unreadable" ? errorCode(error.cause) || "EIO" : CODES[error.kind];
    return { ca: null, error: { code, problem: error.problem } };
  }
}
