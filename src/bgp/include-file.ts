/**
 * The BIRD include file gorb owns: two static protocols, `<name>` (ipv4) and `<name>6` (ipv6), each with one
 * `route <vip>/32 blackhole;` (or `/128`) per announced VIP. The operator's bird.conf includes it at the top
 * level, with wildcards in the directory and the file name (docs/bird.conf), so that a missing file or directory
 * is no error: BIRD starts with nothing announced after a reboot, /run being tmpfs. It exports
 * `proto = "<name>"` / `"<name>6"` over BGP.
 *
 * The file is written atomically: the text goes to `<path>.tmp` (which the `*.conf` wildcard does not match),
 * is flushed to disk, then renamed over the file, so BIRD never reads half a file. Neither the file nor the tmp is
 * opened through a symbolic link. The file is mode 0644 and the directories gorb creates for it 0755, whatever the
 * umask: BIRD, running as its own user, reads it.
 */
import { closeSync, constants, existsSync, fchmodSync, fstatSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { errorCode } from "../errno.ts";

/** The include file could not be read or written (a full or read-only file system, a path that is not a file). */
export class IncludeFileError extends Error {
  override readonly name = "IncludeFileError";
  readonly path: string;
  readonly operation: "read" | "write";
  /** The errno name (ENOSPC, EROFS, ...); "" when the cause carries none. */
  readonly code: string;

  constructor(path: string, operation: IncludeFileError["operation"], cause: unknown) {
    const code = errorCode(cause);
    super(`${operation} ${path}: ${code !== "" ? code : String(cause)}`, { cause });
    this.path = path;
    this.operation = operation;
    this.code = code;
  }
}

/** BIRD symbol names: a letter or underscore, then letters, digits and underscores. */
const SYMBOL = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** True when `name` can name a BIRD protocol. */
function isProtocolName(name: string): boolean {
  return SYMBOL.test(name);
}

/** The names of the two static protocols. */
export function protocolNames(name: string): { readonly inet: string; readonly inet6: string } {
  return { inet: name, inet6: `${name}6` };
}

/** A host prefix `a.b.c.d/32` or `x::y/128` from an address (lower case); null for anything else. */
export function hostPrefix(address: string): string | null {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(address)) return `${address}/32`;
  if (address.includes(":") && /^[0-9a-fA-F:.]+$/.test(address)) return `${address.toLowerCase()}/128`;
  return null;
}

/** The include file's text for these prefixes (sorted, so the same set always gives the same text). */
export function renderInclude(protocol: string, prefixes: Iterable<string>): string {
  if (!isProtocolName(protocol)) throw new RangeError(`protocol: ${JSON.stringify(protocol)} is not a BIRD protocol name`);
  const names = protocolNames(protocol);
  const v4: string[] = [];
  const v6: string[] = [];
  for (const prefix of prefixes) {
    if (!/^[0-9a-fA-F:.]+\/\d{1,3}$/.test(prefix)) throw new RangeError(`prefix: ${JSON.stringify(prefix)} is not an address/length`);
    (prefix.includes(":") ? v6 : v4).push(prefix);
  }
  const block = (name: string, channel: string, list: string[]) =>
    `protocol static ${name} {\n  ${channel};\n${list.sort().map((p) => `  route ${p} blackhole;\n`).join("")}}\n`;
  return (
    "# Written by gorb (its BGP announcer): the VIPs this node announces. Do not edit; gorb rewrites it.\n" +
    block(names.inet, "ipv4", v4) +
    block(names.inet6, "ipv6", v6)
  );
}

/** The largest include file read back (about 200,000 VIPs). */
const INCLUDE_READ_LIMIT = 8 * 1024 * 1024;

/**
 * Creates the missing directories of `dir` one at a time, as the kernel walks the path ("." and ".." included),
 * each 0755 whatever the umask; a directory that was there keeps its mode. (Walking up by name from `dir` to the
 * first directory a recursive mkdir made went, through "new/..", to directories that were there: /tmp/new/../gorb
 * made /tmp 0755.)
 */
function makeDirectories(dir: string): void {
  let path = "";
  for (const [i, part] of dir.split("/").entries()) {
    path = i === 0 ? part : `${path}/${part}`;
    if (part === "" || part === "." || part === "..") continue;
    try {
      mkdirSync(path, 0o755);
    } catch (error) {
      if (errorCode(error) === "EEXIST") continue;
      throw error;
    }
    // Through a descriptor opened without following a link: a directory swapped for one meanwhile (BIRD's
    // /run/bird is writable by BIRD's user) does not make gorb open up what it points to.
    const fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    try {
      fchmodSync(fd, 0o755);
    } finally {
      closeSync(fd);
    }
  }
}

/** The include file on disk; see the module comment. */
export class IncludeFile {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  /**
   * The file's text, or null when there is none or what is there is not a regular file of at most
   * INCLUDE_READ_LIMIT bytes (a symbolic link, a FIFO: not gorb's file, replaced by the next write). Opened
   * without following a link and without blocking, so a FIFO put in the directory cannot stall gorb.
   * Throws IncludeFileError.
   */
  read(): string | null {
    let fd: number;
    try {
      fd = openSync(this.path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (error) {
      const code = errorCode(error);
      if (code === "ENOENT" || code === "ELOOP" || code === "ENXIO") return null;
      throw new IncludeFileError(this.path, "read", error);
    }
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile() || stat.size > INCLUDE_READ_LIMIT) return null;
      return readFileSync(fd, "utf8");
    } catch (error) {
      throw new IncludeFileError(this.path, "read", error);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Replaces the file with `text` atomically (tmp + fsync + rename); creates the directory when missing. On an
   * error (ENOSPC, EROFS) the file is left as it was, the partial tmp is removed, and IncludeFileError is thrown.
   */
  write(text: string): void {
    const tmp = `${this.path}.tmp`;
    try {
      // BIRD runs as its own user (Debian's: bird) and must read the file through its directories; the modes are
      // set, not left to the umask, which the packaged unit makes 0077.
      const dir = dirname(this.path);
      if (!existsSync(dir)) makeDirectories(dir);
      // A fresh file, never one already there: a link planted as the tmp (the directory may be writable by
      // another user, such as BIRD's /run/bird) would make gorb, as root, overwrite whatever it points to.
      rmSync(tmp, { force: true });
      const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
      try {
        fchmodSync(fd, 0o644);
        writeFileSync(fd, text);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.path);
    } catch (error) {
      try {
        rmSync(tmp, { force: true });
      } catch {
        // a read-only file system: there is no partial tmp to remove either
      }
      throw new IncludeFileError(this.path, "write", error);
    }
  }
}
