/**
 * A writer for the "newc" cpio format the kernel unpacks as an initramfs (see the kernel's
 * Documentation/driver-api/early-userspace/buffer-format.rst). Writing it ourselves lets the archive hold device
 * nodes and root-owned files without root, and map host paths to any guest path without a staging copy.
 *
 * Every entry's parent directories are emitted first (the kernel does not create missing parents).
 */

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

const encoder = new TextEncoder();

/** Rounds `n` up to a multiple of 4 (newc pads headers+names and file data to 4 bytes). */
function pad4(n: number): number {
  return (n + 3) & ~3;
}

/** Accumulates newc entries in memory; {@link CpioWriter.finish} returns the archive bytes. */
export class CpioWriter {
  private readonly chunks: Uint8Array[] = [];
  private readonly dirs = new Set<string>([""]);
  private readonly names = new Set<string>();
  private ino = 1;
  private size = 0;

  /** Number of bytes written so far. */
  get length(): number {
    return this.size;
  }

  /** Adds a directory (and its parents). */
  dir(path: string, mode = 0o755): void {
    const name = normalise(path);
    if (this.dirs.has(name)) return;
    this.parents(name);
    this.dirs.add(name);
    this.entry(name, S_IFDIR | mode, new Uint8Array(0), 2, 0, 0);
  }

  /** Adds a regular file with the given contents. */
  file(path: string, data: Uint8Array | string, mode = 0o644, mtime = 0): void {
    const name = normalise(path);
    this.parents(name);
    this.entry(name, S_IFREG | (mode & 0o7777), typeof data === "string" ? encoder.encode(data) : data, 1, 0, 0, mtime);
  }

  /** Adds a symbolic link `path` -> `target`. */
  symlink(path: string, target: string): void {
    const name = normalise(path);
    this.parents(name);
    this.entry(name, S_IFLNK | 0o777, encoder.encode(target), 1, 0, 0);
  }

  /** Adds a character device node. */
  charDevice(path: string, major: number, minor: number, mode = 0o600): void {
    const name = normalise(path);
    this.parents(name);
    this.entry(name, S_IFCHR | mode, new Uint8Array(0), 1, major, minor);
  }

  /** True when `path` was already added (as any kind of entry). */
  has(path: string): boolean {
    const name = normalise(path);
    return this.names.has(name) || this.dirs.has(name);
  }

  /** Appends the trailer and returns the archive. The writer must not be used afterwards. */
  finish(): Uint8Array<ArrayBuffer> {
    this.entry("TRAILER!!!", 0, new Uint8Array(0), 1, 0, 0, 0, true);
    const out = new Uint8Array(this.size);
    let offset = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    this.chunks.length = 0;
    return out;
  }

  private parents(name: string): void {
    const slash = name.lastIndexOf("/");
    if (slash > 0) this.dir(name.slice(0, slash));
  }

  private entry(
    name: string,
    mode: number,
    data: Uint8Array,
    nlink: number,
    rdevMajor: number,
    rdevMinor: number,
    mtime = 0,
    trailer = false,
  ): void {
    if (!trailer) {
      if (this.names.has(name)) throw new Error(`cpio: ${name} added twice`);
      this.names.add(name);
    }
    const nameBytes = encoder.encode(`${name}\0`);
    const fields = [
      trailer ? 0 : this.ino++,
      mode,
      0, // uid
      0, // gid
      nlink,
      mtime,
      data.length,
      0, // devmajor
      0, // devminor
      rdevMajor,
      rdevMinor,
      nameBytes.length,
      0, // check
    ];
    const header = `070701${fields.map((f) => (f >>> 0).toString(16).padStart(8, "0")).join("")}`;
    const headLen = pad4(header.length + nameBytes.length);
    const head = new Uint8Array(headLen);
    head.set(encoder.encode(header), 0);
    head.set(nameBytes, header.length);
    this.push(head);
    if (data.length > 0) {
      this.push(data);
      const padding = pad4(data.length) - data.length;
      if (padding > 0) this.push(new Uint8Array(padding));
    }
  }

  private push(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
  }
}

/** Strips leading `/` and `./`, rejects empty and `..` components. */
function normalise(path: string): string {
  const name = path.replace(/^(\.?\/)+/, "").replace(/\/+$/, "");
  if (name === "" || name.split("/").some((c) => c === ".." || c === "")) {
    throw new Error(`cpio: bad archive path ${JSON.stringify(path)}`);
  }
  return name;
}
