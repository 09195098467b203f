/**
 * Builds the rig's initramfs as two newc archives that the kernel unpacks one after the other:
 *
 * - a cached, uncompressed **base** archive: busybox (with applet links), iproute2's `ip`, `ipvsadm`, BIRD 2's `bird`
 *   (the BGP speaker and router of test/kernel/bgp.test.ts), `etcd` (the
 *   fleet test's shared store, Debian's etcd-server), the Bun
 *   executable, the shared libraries `ldd` lists for them, libnl in the standard library directory, and the trimmed
 *   kernel modules. Uncompressed because inflating ~70 MB of gzip under software emulation cost about 3 s of boot
 *   (measured: boot 10.3 s gzip'd vs 7.2 s raw); copying 117 MB is cheaper;
 * - a small gzip(-1) **project** archive rebuilt on every run: `/init`, `/rig/cmd.sh` (the command to run), and the
 *   gorb tree at `/gorb` (sources, tests, runtime node_modules);
 * - optionally, an uncompressed **extra** archive of host files for this run (e.g. the compiled executable).
 *
 * The guest layout is merged-/usr like the host (`/lib` -> `usr/lib`, `/lib64` -> `usr/lib64`), so library paths
 * reported by `ldd` on the host are valid in the guest.
 */
import { createHash } from "node:crypto";
import {
  appendFileSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join, relative } from "node:path";
import { CpioWriter } from "./cpio.ts";
import { runHost, requireTool } from "./host-exec.ts";
import type { RigKernel } from "./kernel.ts";
import { INITRAMFS_CACHE, PROJECT_ROOT } from "./paths.ts";

/** Bump when the base archive's layout changes, so stale cached archives are rebuilt. */
const BASE_FORMAT = 1;

/** Where the Bun executable that runs inside the guest comes from. */
export const BUN_EXECUTABLE = join(PROJECT_ROOT, "node_modules", "bun", "bin", "bun.exe");

/** Top-level project entries copied to `/gorb`. */
export const PROJECT_ENTRIES = ["src", "ffi", "test", "bench", "package.json", "bunfig.toml", "tsconfig.json", "node_modules"] as const;

/** node_modules entries left out of the guest: the Bun toolchain itself (installed as /usr/bin/bun) and type-only packages. */
export const EXCLUDED_NODE_MODULES = new Set(["bun", "@oven", "typescript", "@types", "bun-types", ".bin", ".cache"]);

/** Shared libraries gorb's ffi opens by soname: they must be in the standard library directory. */
const LIBNL_SONAMES = ["libnl-3.so.200", "libnl-genl-3.so.200"] as const;

/** A host file placed at a guest path. */
interface Placement {
  readonly host: string;
  readonly guest: string;
  readonly mode: number;
}

/** Maps a host library path to its guest path under the merged-/usr layout. */
function guestLibPath(hostPath: string): string {
  if (hostPath.startsWith("/lib/") || hostPath.startsWith("/lib64/")) return `usr${hostPath}`;
  return hostPath.replace(/^\//, "");
}

/** Parses `ldd` output into the absolute paths of the libraries it resolved; throws on "not found". */
export function parseLdd(binary: string, output: string): string[] {
  const libs: string[] = [];
  for (const raw of output.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("linux-vdso") || line.includes("statically linked") || line.includes("not a dynamic executable")) {
      continue;
    }
    if (line.includes("=> not found")) throw new Error(`ldd ${binary}: ${line}`);
    const arrow = /=>\s*(\/\S+)/.exec(line);
    const bare = /^(\/\S+)\s+\(/.exec(line);
    const path = arrow?.[1] ?? bare?.[1];
    if (path) libs.push(path);
  }
  return libs;
}

/** Libraries a dynamic executable needs, as host paths. Empty for static executables. */
function librariesOf(binary: string): string[] {
  let output: string;
  try {
    output = runHost(["ldd", binary]).stdout;
  } catch (err) {
    // ldd exits 1 for static executables ("not a dynamic executable").
    const text = err instanceof Error ? err.message : String(err);
    if (text.includes("not a dynamic executable")) return [];
    throw err;
  }
  return parseLdd(binary, output);
}

/** Finds a library by soname in the host's multiarch directories. */
function findLibrary(soname: string): string {
  for (const dir of ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib"]) {
    const path = join(dir, soname);
    if (existsSync(path)) return path;
  }
  throw new Error(`rig needs ${soname} on the host (Debian package ${soname.replace(/\.so\.(\d+)$/, "-$1")}); run .ci/rig-deps.sh`);
}

/** Every file (not directory) under `root`, recursively, as paths relative to `root`, sorted. */
function walkFiles(root: string, skip: (rel: string, name: string) => boolean = () => false): string[] {
  const out: string[] = [];
  const visit = (rel: string): void => {
    const entries = readdirSync(join(root, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const entry of entries) {
      const childRel = rel === "" ? entry.name : `${rel}/${entry.name}`;
      if (skip(childRel, entry.name)) continue;
      if (entry.isDirectory()) visit(childRel);
      else out.push(childRel);
    }
  };
  visit("");
  return out;
}

/** The tools the base archive ships, located on the host. */
interface BaseInputs {
  readonly busybox: string;
  readonly applets: string[];
  readonly placements: Placement[];
}

function collectBaseInputs(kernel: RigKernel): BaseInputs {
  const busybox = requireTool("busybox", "busybox-static");
  if (librariesOf(busybox).length > 0) {
    throw new Error(`${busybox} is dynamically linked; the rig needs Debian's busybox-static`);
  }
  const applets = runHost([busybox, "--list-full"]).stdout.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const ip = "/usr/sbin/ip";
  if (!existsSync(ip)) throw new Error("rig needs /usr/sbin/ip (Debian package iproute2); run .ci/rig-deps.sh");
  const ipvsadm = requireTool("ipvsadm", "ipvsadm");
  const bird = requireTool("bird", "bird2");
  const etcd = requireTool("etcd", "etcd-server");
  if (!existsSync(BUN_EXECUTABLE)) throw new Error(`rig needs the Bun executable at ${BUN_EXECUTABLE} (run bun install)`);

  const placements: Placement[] = [
    { host: busybox, guest: "bin/busybox", mode: 0o755 },
    { host: ip, guest: "usr/sbin/ip", mode: 0o755 },
    { host: ipvsadm, guest: "usr/sbin/ipvsadm", mode: 0o755 },
    { host: bird, guest: "usr/sbin/bird", mode: 0o755 },
    { host: etcd, guest: "usr/bin/etcd", mode: 0o755 },
    { host: BUN_EXECUTABLE, guest: "usr/bin/bun", mode: 0o755 },
  ];
  const libs = new Set<string>();
  for (const binary of [ip, ipvsadm, bird, etcd, BUN_EXECUTABLE]) for (const lib of librariesOf(binary)) libs.add(lib);
  for (const soname of LIBNL_SONAMES) libs.add(findLibrary(soname));
  for (const lib of [...libs].sort()) placements.push({ host: lib, guest: guestLibPath(lib), mode: 0o755 });

  const modulesDir = join(kernel.modulesRoot, "lib", "modules");
  for (const rel of walkFiles(modulesDir)) {
    placements.push({ host: join(modulesDir, rel), guest: `usr/lib/modules/${rel}`, mode: 0o644 });
  }
  return { busybox, applets, placements };
}

/**
 * The files that put a host tool and the libraries `ldd` lists for it into the guest, for one run's extra
 * archive (e.g. keepalived for bench/checks.ts). Kept out of the cached base archive so that tools only a
 * benchmark needs do not rebuild the base for every test run. `pkg` names the Debian package in the error.
 */
export function hostToolFiles(binary: string, pkg: string): GuestFile[] {
  if (!existsSync(binary)) throw new Error(`rig needs ${binary} on the host (Debian package ${pkg}); run .ci/rig-deps.sh`);
  const files: GuestFile[] = [{ host: realpathSync(binary), guest: binary.replace(/^\/+/, "").replace(/^sbin\//, "usr/sbin/").replace(/^bin\//, "usr/bin/"), mode: 0o755 }];
  for (const lib of librariesOf(binary)) files.push({ host: realpathSync(lib), guest: guestLibPath(lib), mode: 0o755 });
  return files;
}

/** A content key for the base archive: changes whenever an input file or the kernel changes. */
function baseKey(kernel: RigKernel, inputs: BaseInputs): string {
  const hash = createHash("sha256");
  hash.update(JSON.stringify({ BASE_FORMAT, kernel: [kernel.packageName, kernel.packageVersion], applets: inputs.applets }));
  for (const p of inputs.placements) {
    const st = statSync(p.host);
    hash.update(`${p.host}\0${p.guest}\0${st.size}\0${st.mtimeMs}\n`);
  }
  return hash.digest("hex").slice(0, 16);
}

const ETC_FILES: Record<string, string> = {
  "etc/passwd": "root:x:0:0:root:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
  "etc/group": "root:x:0:\nnogroup:x:65534:\n",
  "etc/hosts": "127.0.0.1 localhost\n::1 localhost\n",
  "etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
  "etc/os-release": 'NAME="gorb test rig"\nID=gorb-rig\n',
};

function writeBase(inputs: BaseInputs): Uint8Array {
  const cpio = new CpioWriter();
  for (const dir of ["usr/bin", "usr/sbin", "usr/lib/x86_64-linux-gnu", "usr/lib64", "bin", "sbin", "etc", "proc", "sys", "dev", "run", "var", "root", "mnt"]) {
    cpio.dir(dir);
  }
  cpio.dir("tmp", 0o1777);
  cpio.symlink("lib", "usr/lib");
  cpio.symlink("lib64", "usr/lib64");
  cpio.symlink("var/run", "../run");
  // The kernel opens /dev/console for /init's stdio before anything is mounted.
  cpio.charDevice("dev/console", 5, 1, 0o600);
  cpio.charDevice("dev/null", 1, 3, 0o666);
  for (const [path, text] of Object.entries(ETC_FILES)) cpio.file(path, text);

  for (const p of inputs.placements) {
    const real = realpathSync(p.host);
    cpio.file(p.guest, readFileSync(real), p.mode, Math.floor(statSync(real).mtimeMs / 1000));
  }
  for (const applet of inputs.applets) {
    const guest = applet.replace(/^\/+/, "");
    if (cpio.has(guest) || guest === "bin/busybox") continue; // real tools (e.g. /usr/sbin/ip) win over applets
    cpio.symlink(guest, "/bin/busybox");
  }
  return cpio.finish();
}

/**
 * Returns the path of the base archive for `kernel`, building it when no archive with the same inputs is
 * cached. Older base archives are deleted.
 */
export function buildBaseArchive(kernel: RigKernel, log: (line: string) => void = (l) => console.error(l)): { path: string; cached: boolean } {
  const inputs = collectBaseInputs(kernel);
  const key = baseKey(kernel, inputs);
  mkdirSync(INITRAMFS_CACHE, { recursive: true });
  const path = join(INITRAMFS_CACHE, `base-${key}.cpio`);
  if (existsSync(path)) return { path, cached: true };

  log(`rig: building base initramfs ${relative(PROJECT_ROOT, path)}`);
  const raw = writeBase(inputs);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, raw);
  renameSync(tmp, path);
  for (const name of readdirSync(INITRAMFS_CACHE)) {
    if (/^base-[0-9a-f]{16}\.cpio$/.test(name) && join(INITRAMFS_CACHE, name) !== path) {
      rmSync(join(INITRAMFS_CACHE, name), { force: true });
    }
  }
  log(`rig: base initramfs ${(raw.length / 1e6).toFixed(0)} MB`);
  return { path, cached: false };
}

/** A host file copied into the guest for one run (e.g. the compiled executable at `usr/bin/gorb`). */
export interface GuestFile {
  /** Path on the host. */
  readonly host: string;
  /**
   * Path in the guest, relative to `/`, under `usr/`, `opt/` or `gorb/` (entries under the `lib`/`lib64` symlinks
   * would replace the symlinks with directories).
   */
  readonly guest: string;
  /** Permission bits; default 0o755. */
  readonly mode?: number;
}

/** What the project archive tells the guest to do. */
export interface ProjectArchiveOptions {
  /** Shell script run by busybox sh with cwd /gorb. */
  readonly script: string;
  /** Bring up eth0 on qemu's user network (needed for host port forwards). */
  readonly network: boolean;
  /**
   * Host files added for this run only, in a third, uncompressed archive after the project archive (later entries
   * win, so a file here replaces one of the base archive). Uncompressed because a 100 MB executable inflates slowly
   * under emulation and copies fast.
   */
  readonly extraFiles?: readonly GuestFile[];
}

const EXTRA_FILE_ROOTS = ["usr/", "opt/", "gorb/"] as const;

/** Checks one {@link GuestFile}; throws naming the field and the problem. */
export function checkGuestFile(file: GuestFile, index: number): void {
  const guest = file.guest.replace(/^\/+/, "");
  if (!EXTRA_FILE_ROOTS.some((root) => guest.startsWith(root)) || guest.split("/").includes("..")) {
    throw new Error(`extraFiles[${index}].guest must lie under ${EXTRA_FILE_ROOTS.join(", ")} without "..", got ${JSON.stringify(file.guest)}`);
  }
  if (!existsSync(file.host) || !statSync(file.host).isFile()) {
    throw new Error(`extraFiles[${index}].host ${JSON.stringify(file.host)} is not a file`);
  }
  if (file.mode !== undefined && (!Number.isInteger(file.mode) || file.mode < 0 || file.mode > 0o7777)) {
    throw new Error(`extraFiles[${index}].mode must be permission bits 0-0o7777, got ${file.mode}`);
  }
}

/** Builds the uncompressed archive of {@link ProjectArchiveOptions.extraFiles}. */
export function buildExtraArchive(files: readonly GuestFile[]): Uint8Array {
  files.forEach(checkGuestFile);
  const cpio = new CpioWriter();
  for (const file of files) {
    const st = statSync(file.host);
    cpio.file(file.guest.replace(/^\/+/, ""), readFileSync(file.host), file.mode ?? 0o755, Math.floor(st.mtimeMs / 1000));
  }
  return cpio.finish();
}

/** Adds one project file or symlink under /gorb. */
function addProjectPath(cpio: CpioWriter, rel: string): void {
  const host = join(PROJECT_ROOT, rel);
  const st = lstatSync(host);
  const guest = `gorb/${rel}`;
  if (st.isSymbolicLink()) cpio.symlink(guest, readlinkSync(host));
  else if (st.isFile()) cpio.file(guest, readFileSync(host), st.mode & 0o777, Math.floor(st.mtimeMs / 1000));
}

/** Builds the small per-run archive: /init, /rig/cmd.sh and the project tree at /gorb. Returns gzip'd bytes. */
export function buildProjectArchive(opts: ProjectArchiveOptions): Uint8Array {
  const cpio = new CpioWriter();
  cpio.file("init", readFileSync(join(import.meta.dir, "init.sh")), 0o755);
  cpio.file("rig/cmd.sh", opts.script.endsWith("\n") ? opts.script : `${opts.script}\n`, 0o755);
  if (opts.network) cpio.file("rig/net", "1\n");
  cpio.dir("gorb");
  for (const entry of PROJECT_ENTRIES) {
    const host = join(PROJECT_ROOT, entry);
    if (!existsSync(host)) continue;
    // NB: statSync follows a symlinked top-level entry (a git worktree's node_modules -> the main checkout's),
    // which would otherwise reach the guest as a symlink to a path that does not exist there.
    const st = statSync(host);
    if (!st.isDirectory()) {
      addProjectPath(cpio, entry);
      continue;
    }
    cpio.dir(`gorb/${entry}`);
    const skip = (rel: string, name: string): boolean =>
      (entry === "node_modules" && !rel.includes("/") && EXCLUDED_NODE_MODULES.has(name)) || name === ".rig-cache";
    for (const rel of walkFiles(host, skip)) addProjectPath(cpio, `${entry}/${rel}`);
  }
  return Bun.gzipSync(cpio.finish(), { level: 1 });
}

/** A ready initramfs for one run; {@link RigInitramfs.dispose} deletes the per-run file. */
export interface RigInitramfs {
  readonly path: string;
  readonly baseCached: boolean;
  readonly buildMs: number;
  dispose(): void;
}

/** Deletes per-run archives left behind by runs whose process is gone (their names carry the pid). */
function removeStaleRunArchives(): void {
  for (const name of readdirSync(INITRAMFS_CACHE)) {
    const pid = Number(/^run-(\d+)-/.exec(name)?.[1]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) continue;
    try {
      process.kill(pid, 0); // still running: keep
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ESRCH") rmSync(join(INITRAMFS_CACHE, name), { force: true });
    }
  }
}

/** Per-run archives made by this process: part of their names, as guests of one process may start in the same ms. */
let runArchives = 0;

/** Builds (or reuses) the base archive and writes base + a fresh project archive into one per-run file. */
export function buildInitramfs(kernel: RigKernel, opts: ProjectArchiveOptions, log?: (line: string) => void): RigInitramfs {
  const started = performance.now();
  const base = buildBaseArchive(kernel, log);
  const project = buildProjectArchive(opts);
  removeStaleRunArchives();
  const path = join(INITRAMFS_CACHE, `run-${process.pid}-${Date.now().toString(36)}-${++runArchives}.cpio`);
  copyFileSync(base.path, path);
  appendFileSync(path, project);
  if (opts.extraFiles !== undefined && opts.extraFiles.length > 0) {
    // The kernel takes an uncompressed archive only at a 4-byte aligned offset; it skips the zero padding.
    const offset = statSync(path).size;
    appendFileSync(path, new Uint8Array((4 - (offset % 4)) % 4));
    appendFileSync(path, buildExtraArchive(opts.extraFiles));
  }
  return {
    path,
    baseCached: base.cached,
    buildMs: performance.now() - started,
    dispose: () => rmSync(path, { force: true }),
  };
}

if (import.meta.main) {
  // `bun run test/rig/initramfs.ts`: prepare kernel + base archive (e.g. to warm the cache) and report timings.
  const { prepareKernel } = await import("./kernel.ts");
  const t0 = performance.now();
  const kernel = prepareKernel();
  const t1 = performance.now();
  const rig = buildInitramfs(kernel, { script: "true", network: false });
  const t2 = performance.now();
  rig.dispose();
  console.log(
    `kernel ${kernel.release} ${Math.round(t1 - t0)} ms; initramfs ${Math.round(t2 - t1)} ms (base ${rig.baseCached ? "cached" : "built"})`,
  );
}
