/**
 * The CA bundle an https or tls check names (`args.ca`), read when its checker is made (and again at each check while
 * it cannot be used: see CaConnector). The path comes from an
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
type CaFile = { readonly ca: string; readonly error: null } | { readonly ca: null; readonly error: { readonly code: string; readonly problem: string } };

const CODES: Readonly<Record<FileProblemError["kind"], string>> = { missing: "ENOENT", unreadable: "EIO", "not-regular": "EINVAL", "too-large": "EFBIG" };

/** The start of a PEM certificate. */
const PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----";

/** Reads the CA bundle at `path` (see the module comment). */
function readCaFile(path: string): CaFile {
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

/** Why a CA file cannot be used: an errno-like code and the problem in words. */
type CaProblem = NonNullable<CaFile["error"]>;

/**
 * The connector of a checker whose TLS settings may name a CA file (`path`; null: the system's CAs): made once the
 * file reads. Until it does, each `get` reads it again, so a CA file that appears or is fixed after the checker was
 * made (gorb started before the file was installed) is used from the next check on; it was a check error until the
 * pulse changed or gorb restarted, and the backend was never checked meanwhile.
 */
export class CaConnector<C> {
  #made: C | null = null;
  #problem: CaProblem | null = null;

  constructor(
    private readonly path: string | null,
    private readonly make: (ca: string | null) => C,
  ) {
    this.#load();
  }

  /** The connector, or why the CA file cannot be used yet. */
  get(): { readonly connector: C; readonly problem: null } | { readonly connector: null; readonly problem: CaProblem } {
    if (this.#made === null) this.#load();
    if (this.#made !== null) return { connector: this.#made, problem: null };
    return { connector: null, problem: this.#problem ?? { code: "EIO", problem: "not read" } };
  }

  #load(): void {
    if (this.path === null) {
      this.#made = this.make(null);
      return;
    }
    const file = readCaFile(this.path);
    if (file.error !== null) this.#problem = file.error;
    else this.#made = this.make(file.ca);
  }
}
