/**
 * The CA bundle an https or tls check names (`args.ca`), read once when its checker is made. The path comes from an
 * API client and the daemon runs as root, so only a regular file of at most CA_FILE_LIMIT bytes is read: /dev/zero
 * or a FIFO would be read without end (growing memory, or blocking the event loop for good).
 *
 * What is read must be a bundle the TLS library takes: a file with no PEM certificate in it (empty, a key, a typo'd
 * path to another file) or one it cannot parse made every connect throw "Invalid CA" (ERR_BORINGSSL), which failed
 * the backend although nothing was ever sent to it. Such a file is refused here, once, like an unreadable one.
 */
import { createSecureContext } from "node:tls";
import { CA_FILE_LIMIT, FileProblemError, readRegularFile } from "../../regular-file.ts";
import { errorCode } from "../checker.ts";

/** A CA file's text, or why it could not be read: an errno-like code and the problem in words. */
export type CaFile = { readonly ca: string; readonly error: null } | { readonly ca: null; readonly error: { readonly code: string; readonly problem: string } };

const CODES: Readonly<Record<FileProblemError["kind"], string>> = { missing: "ENOENT", unreadable: "EIO", "not-regular": "EINVAL", "too-large": "EFBIG" };

/** The start of a PEM certificate. */
const PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----";

/** Reads the CA bundle at `path` (see the module comment). */
export function readCaFile(path: string): CaFile {
  let ca: string;
  try {
    ca = readRegularFile(path, CA_FILE_LIMIT);
  } catch (error) {
    if (!(error instanceof FileProblemError)) return { ca: null, error: { code: errorCode(error) || "EIO", problem: String(error) } };
    const code = error.kind === "unreadable" ? errorCode(error.cause) || "EIO" : CODES[error.kind];
    return { ca: null, error: { code, problem: error.problem } };
  }
  if (!ca.includes(PEM_CERTIFICATE)) return { ca: null, error: { code: "EINVAL", problem: "holds no PEM certificate" } };
  try {
    createSecureContext({ ca });
  } catch {
    // The library's words only ("Invalid CA"): never the file's content.
    return { ca: null, error: { code: "EINVAL", problem: "is not a bundle of PEM certificates the TLS library can read" } };
  }
  return { ca, error: null };
}
