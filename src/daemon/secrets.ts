/**
 * Secrets on disk: the API token file (--token-file), the Consul token file (--consul-token-file), the TLS
 * private key (--tls-key) and a configuration file that holds `token:` or `consul_token:`. gorb runs as root, so
 * a secret file any other user can read hands them the load balancer: such a file is refused at start, naming the
 * file, its mode and the fix, instead of being used.
 */
import { readFileSync } from "node:fs";
import { FileProblemError, checkRegularFile } from "../regular-file.ts";
import type { DaemonOptions, SharedStoreOptions } from "../config/daemon-options.ts";

/** SecretFileError: a secret file that cannot be used; `file` is its path, `flag` the setting that named it. */
export class SecretFileError extends Error {
  override readonly name = "SecretFileError";
  readonly file: string;
  readonly flag: string;
  /** What is wrong, with the fix when there is one. */
  readonly problem: string;
  /** The file's permission bits, when the problem is that others may read it. */
  readonly mode: number | null;

  constructor(flag: string, file: string, problem: string, mode: number | null = null, options?: { cause?: unknown }) {
    super(`--${flag}: ${file}: ${problem}`, options);
    this.file = file;
    this.flag = flag;
    this.problem = problem;
    this.mode = mode;
  }
}

/** Largest secret or certificate file read at start (a token or a key is a few KiB, a CA bundle a few hundred). */
const SECRET_FILE_LIMIT = 1024 * 1024;

/**
 * Throws SecretFileError when `file` is missing, not a regular file, over `limit` bytes, or readable or writable by
 * group or others. (A configuration file holding a token has its own limit, checked when it is read: null here.)
 */
export function checkPrivateFile(flag: string, file: string, limit: number | null = SECRET_FILE_LIMIT): void {
  const mode = checkFile(flag, file, limit);
  if ((mode & 0o077) !== 0) {
    throw new SecretFileError(
      flag,
      file,
      `holds a secret but its mode is ${mode.toString(8).padStart(4, "0")} (group or others may read it); ` +
        `run: chmod 600 ${file}`,
      mode,
    );
  }
}

/** The mode of `file`, a regular file of at most `limit` bytes; throws SecretFileError naming `flag`. */
function checkFile(flag: string, file: string, limit: number | null = SECRET_FILE_LIMIT): number {
  try {
    return checkRegularFile(file, limit);
  } catch (error) {
    if (!(error instanceof FileProblemError)) throw error;
    throw new SecretFileError(flag, file, error.problem, null, { cause: error });
  }
}

/** The text of a checked secret file, without surrounding whitespace; SecretFileError naming `flag` when unreadable. */
function readPrivateText(flag: string, file: string): string {
  try {
    // A few bytes, read at start-up and reload: synchronously (node:fs/promises would load with every CLI command
    // that imports this module for checkPrivateFile).
    return readFileSync(file, "utf8").trim();
  } catch (error) {
    throw new SecretFileError(flag, file, `cannot read it (${String((error as { code?: unknown }).code ?? error)})`, null, {
      cause: error,
    });
  }
}

/** The secret in `file` (private, see checkPrivateFile), without surrounding whitespace; an empty one is refused. */
export async function readSecretFile(flag: string, file: string): Promise<string> {
  checkPrivateFile(flag, file);
  const value = readPrivateText(flag, file);
  if (value === "") throw new SecretFileError(flag, file, "is empty");
  if (/[\s\u0000-\u001f\u007f]/.test(value)) {
    throw new SecretFileError(flag, file, "must hold one token without whitespace or control characters");
  }
  return value;
}

/**
 * loadSecrets reads the token files named by `options` and checks the TLS key's permissions; returns the options
 * with `token` and `consulToken` filled in. Throws SecretFileError.
 */
export async function loadSecrets(options: DaemonOptions): Promise<DaemonOptions> {
  const token = options.tokenFile !== null ? await readSecretFile("token-file", options.tokenFile) : options.token;
  const consulToken =
    options.consulTokenFile !== null ? await readSecretFile("consul-token-file", options.consulTokenFile) : options.consulToken;
  if (options.tls !== null) checkPrivateFile("tls-key", options.tls.keyFile);
  // The etcd files are read when the store opens, after IPVS is found: checked here, so a wrong one is a usage error
  // naming its flag, before anything starts. The client key and the password are secrets like the token.
  if (options.sharedStore !== null) checkEtcdFiles(options.sharedStore);
  return { ...options, token, consulToken };
}

/**
 * The etcd files of --store (gorb serve, gorb state export): regular files of at most 1 MiB, the client key and
 * the password file private. Throws SecretFileError naming the flag.
 */
export function checkEtcdFiles(etcd: SharedStoreOptions): void {
  if (etcd.caFile !== null) checkFile("etcd-ca", etcd.caFile);
  if (etcd.certFile !== null) checkFile("etcd-cert", etcd.certFile);
  if (etcd.keyFile !== null) checkPrivateFile("etcd-key", etcd.keyFile);
  if (etcd.passwordFile !== null) {
    checkPrivateFile("etcd-password-file", etcd.passwordFile);
    // An empty one would start gorb with every etcd call refused ("refused user"); as an empty token file, refused.
    if (readPrivateText("etcd-password-file", etcd.passwordFile) === "") throw new SecretFileError("etcd-password-file", etcd.passwordFile, "is empty");
  }
}
