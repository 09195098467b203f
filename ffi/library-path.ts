/**
 * Where a system shared library lives, as an ABSOLUTE path, found only where the system keeps libraries.
 *
 * gorb runs as root. Bun's dlopen of a bare soname ("libnl-3.so.200") falls back to a file of that name in the
 * current directory when the dynamic loader finds none, so a library planted in whatever directory root
 * started gorb from would run as root. gorb therefore never hands dlopen a bare name: it looks the soname up
 *   1. in the dynamic loader's cache, /etc/ld.so.cache (what `ldconfig -p` prints; it covers /etc/ld.so.conf.d,
 *      e.g. /usr/local/lib), keeping only entries for this machine's architecture, then
 *   2. in the multiarch and standard library directories (/lib/<triplet>, /usr/lib/<triplet>, /lib64, /usr/lib64,
 *      /lib, /usr/lib),
 * and accepts only an absolute path to a regular file. LD_LIBRARY_PATH and the working directory are never
 * searched. The cache is parsed here (no `ldconfig` process); its format is glibc's "glibc-ld.so.cache1.1".
 */
import { readFileSync, statSync } from "node:fs";

/** The multiarch triplet, the ld.so.cache architecture flag (FLAG_*_LIB64 etc.) of this process's architecture. */
const ARCH: Record<string, { readonly triplet: string; readonly cacheFlag: number }> = {
  x64: { triplet: "x86_64-linux-gnu", cacheFlag: 0x0300 },
  arm64: { triplet: "aarch64-linux-gnu", cacheFlag: 0x0a00 },
};

/** FLAG_ELF_LIBC6: the entry is a glibc ELF library. */
const FLAG_ELF_LIBC6 = 0x0003;
const CACHE_MAGIC = "glibc-ld.so.cache1.1";
const HEADER_SIZE = 48; // magic[17] + version[3] + nlibs u32 + len_strings u32 + flags u8 + pad[3] + ext u32 + unused[3] u32
const ENTRY_SIZE = 24; // flags i32, key u32, value u32, osversion u32, hwcap u64

/** The directories searched after the cache, in order. */
export function libraryDirs(arch: string = process.arch): string[] {
  const triplet = ARCH[arch]?.triplet;
  const multiarch = triplet === undefined ? [] : [`/lib/${triplet}`, `/usr/lib/${triplet}`];
  return [...multiarch, "/lib64", "/usr/lib64", "/lib", "/usr/lib"];
}

function isRegularFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * The paths the ld.so cache `bytes` gives for `soname`, for the architecture flag `cacheFlag` (null: any),
 * in cache order. Returns [] for a cache it cannot read (an old or foreign format).
 */
export function cachePaths(bytes: Uint8Array, soname: string, cacheFlag: number | null): string[] {
  const text = (start: number, end: number) => new TextDecoder().decode(bytes.subarray(start, end));
  // An old-format ("ld.so-1.7.0") cache may come first; the new-format table starts at its magic.
  let base = -1;
  for (let i = 0; i + CACHE_MAGIC.length <= bytes.length; i++) {
    if (bytes[i] === 0x67 && text(i, i + CACHE_MAGIC.length) === CACHE_MAGIC) {
      base = i;
      break;
    }
    if (i > 1 << 20) break;
  }
  if (base < 0 || base + HEADER_SIZE > bytes.length) return [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(base + 20, true);
  const stringAt = (offset: number): string => {
    let end = offset;
    while (end < bytes.length && bytes[end] !== 0) end++;
    return text(offset, end);
  };
  const found: string[] = [];
  for (let n = 0; n < count; n++) {
    const entry = base + HEADER_SIZE + n * ENTRY_SIZE;
    if (entry + ENTRY_SIZE > bytes.length) break;
    const flags = view.getInt32(entry, true);
    const key = view.getUint32(entry + 4, true);
    const value = view.getUint32(entry + 8, true);
    if (key >= bytes.length || value >= bytes.length) continue;
    if ((flags & 0xff) !== FLAG_ELF_LIBC6) continue;
    if (cacheFlag !== null && (flags & 0xff00) !== cacheFlag) continue;
    if (stringAt(key) !== soname) continue;
    found.push(stringAt(value)); // new-format offsets count from the start of the file
  }
  return found;
}

/** Options of findSystemLibrary (tests point them elsewhere). */
export interface FindLibraryOptions {
  /** @default "/etc/ld.so.cache" */
  readonly cacheFile?: string;
  /** @default libraryDirs() */
  readonly dirs?: readonly string[];
  /** @default process.arch */
  readonly arch?: string;
}

/** The absolute path of the system's copy of `soname`, or null when the system has none. */
export function findSystemLibrary(soname: string, options: FindLibraryOptions = {}): string | null {
  if (soname.includes("/")) throw new TypeError(`findSystemLibrary: ${JSON.stringify(soname)} is a path, not a soname`);
  const arch = options.arch ?? process.arch;
  let cache: Uint8Array | null = null;
  try {
    cache = readFileSync(options.cacheFile ?? "/etc/ld.so.cache");
  } catch {
    cache = null; // no cache (e.g. a minimal container): the directories below still apply
  }
  if (cache !== null) {
    for (const path of cachePaths(cache, soname, ARCH[arch]?.cacheFlag ?? null)) {
      if (path.startsWith("/") && isRegularFile(path)) return path;
    }
  }
  for (const dir of options.dirs ?? libraryDirs(arch)) {
    const path = `${dir}/${soname}`;
    if (isRegularFile(path)) return path;
  }
  return null;
}
