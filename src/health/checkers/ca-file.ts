/**
 * The CA bundle an https or tls check names (`args.ca`), read when its checker is made, and again at a check when
 * the file changed since (an operator rotating the CA replaces the file) or while it cannot be used: see
 * CaConnector. The path comes from an API client and the daemon runs as root, so only a regular file of at most
 * CA_FILE_LIMIT bytes is read: /dev/zero or a FIFO would be read without end (growing memory, or blocking the event
 * loop for good).
 *
 * What is read must be a bundle the TLS library takes: a file with no PEM certificate in it (empty, a key, a typo'd
 * path to another file) or one it cannot parse made every connect throw "Invalid CA" (ERR_BORINGSSL), which failed
 * the backend although nothing was ever sent to it. Such a file is refused here, once, like an unreadable one.
 */
import { type Stats, statSync } from "node:fs";
import { createSecureContext } from "node:tls";
import { errorCode } from "../../errno.ts";
import { CA_FILE_LIMIT, FileProblemError, readRegularFile } from "../../regular-file.ts";

/**
 * What tells one version of a file from the next without reading it: its device and inode (a file renamed over it),
 * size, modification and change times (a file written in place).
 */
type FileVersion = string;

function versionOf(stat: Stats): FileVersion {
  return `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}`;
}

/** The version of the file at `path` now, or null when it cannot be stat'ed (then it is read, to say why). */
function versionAt(path: string): FileVersion | null {
  try {
    return versionOf(statSync(path));
  } catch {
    return null;
  }
}

/**
 * A CA file's text and the version of the file it was read from, or why it could not be read: an errno-like code
 * and the problem in words.
 */
type CaFile =
  | { readonly ca: string; readonly version: FileVersion; readonly error: null }
  | { readonly ca: null; readonly version: null; readonly error: { readonly code: string; readonly problem: string } };

const CODES: Readonly<Record<FileProblemError["kind"], string>> = { missing: "ENOENT", unreadable: "EIO", "not-regular": "EINVAL", "too-large": "EFBIG" };

/** The start of a PEM certificate. */
const PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----";

/** Reads the CA bundle at `path` (see the module comment). */
function readCaFile(path: string): CaFile {
  let ca: string;
  // The version of the descriptor read (readRegularFile's last check), not of whatever the path names later.
  let version: FileVersion = "";
  try {
    ca = readRegularFile(path, CA_FILE_LIMIT, (stat) => {
      version = versionOf(stat);
    });
  } catch (error) {
    if (!(error instanceof FileProblemError)) return { ca: null, version: null, error: { code: errorCode(error) || "EIO", problem: String(error) } };
    const code = error.kind === "unreadable" ? errorCode(error.cause) || "EIO" : CODES[error.kind];
    return { ca: null, version: null, error: { code, problem: error.problem } };
  }
  if (!ca.includes(PEM_CERTIFICATE)) return { ca: null, version: null, error: { code: "EINVAL", problem: "holds no PEM certificate" } };
  try {
    createSecureContext({ ca });
  } catch {
    // The library's words only ("Invalid CA"): never the file's content.
    return { ca: null, version: null, error: { code: "EINVAL", problem: "is not a bundle of PEM certificates the TLS library can read" } };
  }
  return { ca, version, error: null };
}

/** Why a CA file cannot be used: an errno-like code and the problem in words. */
type CaProblem = NonNullable<CaFile["error"]>;

/**
 * The connector of a checker whose TLS settings may name a CA file (`path`; null: the system's CAs): made once the
 * file reads. Until it does, each `get` reads it again, so a CA file that appears or is fixed after the checker was
 * made (gorb started before the file was installed) is used from the next check on; it was a check error until the
 * pulse changed or gorb restarted, and the backend was never checked meanwhile.
 *
 * Once made, each `get` stats the file (cheap) and reads it again only when its version changed (see FileVersion):
 * a rotated CA is used from the next check on (the old one was kept until gorb restarted). What the file holds now
 * is what counts: when the new file cannot be used (removed, not a bundle) each check is a check error saying why,
 * which moves no backend's state, until the file is fixed.
 */
export class CaConnector<C> {
  #made: C | null = null;
  #version: FileVersion | null = null;
  #problem: CaProblem | null = null;

  constructor(
    private readonly path: string | null,
    private readonly make: (ca: string | null) => C,
  ) {
    this.#load();
  }

  /** The connector, or why the CA file cannot be used yet. */
  get(): { readonly connector: C; readonly problem: null } | { readonly connector: null; readonly problem: CaProblem } {
    if (this.#made === null || (this.path !== null && versionAt(this.path) !== this.#version)) this.#load();
    if (this.#made !== null) return { connector: this.#made, problem: null };
    return { connector: null, problem: this.#problem ?? { code: "EIO", problem: "not read" } };
  }

  #load(): void {
    if (this.path === null) {
      this.#made = this.make(null);
      return;
    }
    const file = readCaFile(this.path);
    this.#made = file.error === null ? this.make(file.ca) : null;
    this.#version = file.version;
    this.#problem = file.error;
  }
}
