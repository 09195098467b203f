/**
 * Secrets on disk: the API token file (--token-file), the Consul token file (--consul-token-file), the TLS
 * private key (--tls-key) and a configuration file that holds `token:` or `consul_token:`. gorb runs as root, so
 * a secret file any other user can read hands them the load balancer: such a file is refused at start, naming the
 * file, its mode and the fix, instead of being used. So is one owned by another user (as ssh and sudo refuse it):
 * they could make it readable, or write the secret gorb then trusts. A secret file is opened once, and the open
 * descriptor is what is checked and read: a path checked, then read again by name, may name another file by then
 * (anyone who may write to its directory can swap it).
 */
import { type Stats, closeSync } from "node:fs";
import { FileProblemError, checkRegularFile, openRegularFile, readOpenFile } from "../regular-file.ts";
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
 * Throws SecretFileError unless `stat` (of `file`) is private: no permission for group or others, and owned by root
 * or by the user gorb runs as.
 */
function checkPrivate(flag: string, file: string, stat: Stats): void {
  const mode = stat.mode & 0o7777;
  if ((mode & 0o077) !== 0) {
    throw new SecretFileError(
      flag,
      file,
      `holds a secret but its mode is ${mode.toString(8).padStart(4, "0")} (group or others may read it); ` +
        `run: chmod 600 ${file}`,
      mode,
    );
  }
  const euid = process.geteuid?.() ?? 0;
  if (stat.uid !== euid && stat.uid !== 0) {
    const owners = euid === 0 ? "not root" : `neither root nor the user gorb runs as, uid ${euid}`;
    throw new SecretFileError(
      flag,
      file,
      `holds a secret but is owned by uid ${stat.uid} (${owners}), who could change it; ` +
        `run: chown ${euid === 0 ? "root" : euid} ${file}`,
    );
  }
}

/**
 * Throws SecretFileError unless `stat`, the Stats of the descriptor `file` was read from (a configuration file holding
 * a token: ../config/load.ts ConfigFile.stat), is of a private file (see checkPrivateFile).
 */
export function checkPrivateStat(flag: string, file: string, stat: Stats): void {
  checkPrivate(flag, file, stat);
}

/** `file` opened as a private file (see checkPrivate) of at most `limit` bytes; the caller closes the descriptor. */
function openPrivateFile(flag: string, file: string, limit: number | null): number {
  try {
    return openRegularFile(file, limit, (stat) => checkPrivate(flag, file, stat));
  } catch (error) {
    if (!(error instanceof FileProblemError)) throw error;
    throw new SecretFileError(flag, file, error.problem, null, { cause: error });
  }
}

/**
 * Throws SecretFileError when `file` is missing, not a regular file, over `limit` bytes, readable or writable by
 * group or others, or owned by another user than root or gorb's. (A configuration file holding a token has its own
 * limit, checked when it is read: null here.)
 */
export function checkPrivateFile(flag: string, file: string, limit: number | null = SECRET_FILE_LIMIT): void {
  closeSync(openPrivateFile(flag, file, limit));
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

/**
 * The text of `file`, a regular file of at most 1 MiB that need not be private (a certificate), read from the
 * descriptor that was checked; throws SecretFileError naming `flag`.
 */
export function readPublicFile(flag: string, file: string): string {
  return readChecked(flag, file, () => openRegularFile(file, SECRET_FILE_LIMIT));
}

/** `open` (a FileProblemError as SecretFileError naming `flag`), then the text read from that descriptor, closed after. */
function readChecked(flag: string, file: string, open: () => number): string {
  const named = <T>(work: () => T): T => {
    try {
      return work();
    } catch (error) {
      if (!(error instanceof FileProblemError)) throw error;
      throw new SecretFileError(flag, file, error.problem, null, { cause: error });
    }
  };
  const fd = named(open);
  try {
    return named(() => readOpenFile(file, fd, SECRET_FILE_LIMIT));
  } finally {
    closeSync(fd);
  }
}

/**
 * The text of `file`, a private file (see checkPrivateFile), read from the descriptor that was checked; throws
 * SecretFileError naming `flag`.
 */
export function readPrivateFile(flag: string, file: string): string {
  // A few bytes, read at start-up and reload: synchronously (node:fs/promises would load with every CLI command
  // that imports this module for checkPrivateFile).
  return readChecked(flag, file, () => openPrivateFile(flag, file, SECRET_FILE_LIMIT));
}

/** The secret in `file` (private, see checkPrivateFile), without surrounding whitespace; an empty one is refused. */
export async function readSecretFile(flag: string, file: string): Promise<string> {
  const value = readPrivateFile(flag, file).trim();
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
  if (options.tls !== null) {
    checkFile("tls-cert", options.tls.certFile);
    checkPrivateFile("tls-key", options.tls.keyFile);
  }
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
    // An empty one would start gorb with every etcd call refused ("refused user"); as an empty token file, refused.
    if (readPrivateFile("etcd-password-file", etcd.passwordFile).trim() === "") throw new SecretFileError("etcd-password-file", etcd.passwordFile, "is empty");
  }
}
