/**
 * Build the single gorb executable: `bun run scripts/build.ts [--outfile dist/gorb] [--fetch-libnl] [--cache-dir DIR]`.
 *
 * It is `bun build --compile --bytecode --splitting --format=esm src/main.ts`, run through Bun.build: --bytecode
 * precompiles the bundle (about half the start-up time of `gorb --version`); it needs ESM output (the code uses
 * import.meta) and no top-level await in the entry (src/main.ts has none). --splitting puts each lazily imported
 * command (src/cli/index.ts) in chunks of its own inside the executable, so `gorb status` loads about 80 KB of
 * the 1.9 MB bundle and `gorb serve` the daemon's (on the host `gorb --version` went from 15.8 to 8.6 ms of CPU
 * and from 2,120 to 1,350 page faults, `perf stat -r 30`).
 *
 * The executable carries libnl-3 and libnl-genl-3 (src/embedded-libnl.ts imports them by their Debian paths), used
 * only where the system has no copy. The copies embedded are the host's when both are installed; otherwise (or with
 * --fetch-libnl, or GORB_BUILD_FETCH_LIBNL=1) the Debian packages libnl-3-200 and libnl-genl-3-200 are fetched with
 * `apt-get download` into a cache directory (--cache-dir, GORB_BUILD_CACHE, default .build-cache/libnl), unpacked
 * there with `dpkg-deb -x`, and a bundler plugin points those two imports at the unpacked files. So
 * `npm run build` needs neither libnl nor root, only apt's package lists.
 */
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..");

/** The two libraries, as src/embedded-libnl.ts imports them (the host's paths) and the packages that ship them. */
export const EMBEDDED_LIBRARIES = [
  { path: "/usr/lib/x86_64-linux-gnu/libnl-3.so.200", soname: "libnl-3.so.200", debianPackage: "libnl-3-200" },
  { path: "/usr/lib/x86_64-linux-gnu/libnl-genl-3.so.200", soname: "libnl-genl-3.so.200", debianPackage: "libnl-genl-3-200" },
] as const;

/** The default cache of fetched libnl packages. */
export const DEFAULT_LIBNL_CACHE = join(ROOT, ".build-cache", "libnl");

/** The file in an unpacked package directory that names the .deb it came from. */
const DEB_MARKER = "gorb-deb";

/** Where each embedded library comes from for one build: import path -> file on this machine. */
export interface LibnlFiles {
  /** "host" or "downloaded libnl-3-200_3.7.0-0.2+b1_amd64.deb, ..." */
  readonly origin: string;
  readonly files: ReadonlyMap<string, string>;
}

/** Options of a build. */
export interface BuildOptions {
  /** Fetch the Debian packages even when the host has libnl (default: only when it has not). */
  readonly fetchLibnl?: boolean;
  /** Cache of fetched packages (default GORB_BUILD_CACHE or {@link DEFAULT_LIBNL_CACHE}). */
  readonly cacheDir?: string;
}

/** The first file named `name` under `dir` (depth-first), or null. */
function findFile(dir: string, name: string): string | null {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.name === name && (entry.isFile() || entry.isSymbolicLink())) return path;
    if (entry.isDirectory()) {
      const found = findFile(path, name);
      if (found !== null) return found;
    }
  }
  return null;
}

function run(argv: readonly string[], cwd: string): string {
  let proc;
  try {
    proc = Bun.spawnSync([...argv], { cwd, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  } catch (error) {
    throw new Error(`${argv.join(" ")} failed (${error instanceof Error ? error.message : String(error)})`);
  }
  if (proc.exitCode !== 0) {
    throw new Error(`${argv.join(" ")} failed (exit ${proc.exitCode}: ${proc.stderr.toString().trim() || proc.stdout.toString().trim()})`);
  }
  return proc.stdout.toString();
}

/**
 * fetchLibnl makes sure `cacheDir` holds the unpacked libnl-3-200 and libnl-genl-3-200 packages (fetching and
 * unpacking the ones it lacks) and returns the library files in it. A package directory appears whole or not at all
 * (unpacked beside it, then renamed), so an interrupted fetch is simply redone.
 */
export function fetchLibnl(cacheDir: string): LibnlFiles {
  mkdirSync(cacheDir, { recursive: true });
  const files = new Map<string, string>();
  for (const lib of EMBEDDED_LIBRARIES) {
    const unpacked = join(cacheDir, lib.debianPackage);
    if (!existsSync(unpacked)) {
      const work = mkdtempSync(join(cacheDir, `.fetch-${lib.debianPackage}-`));
      try {
        try {
          run(["apt-get", "download", "-q", lib.debianPackage], work);
        } catch (error) {
          throw new Error(
            `${lib.soname} is not on this machine and fetching it failed: ${(error as Error).message}. ` +
              `Run \`apt-get update\` (apt needs its package lists) or install ${EMBEDDED_LIBRARIES.map((l) => l.debianPackage).join(" ")}.`,
          );
        }
        const deb = readdirSync(work).find((name) => name.startsWith(`${lib.debianPackage}_`) && name.endsWith(".deb"));
        if (deb === undefined) throw new Error(`apt-get download ${lib.debianPackage} left no .deb in ${work}`);
        const tree = join(work, "tree");
        run(["dpkg-deb", "-x", deb, tree], work);
        writeFileSync(join(tree, DEB_MARKER), `${deb}\n`);
        renameSync(tree, unpacked);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    }
    const found = findFile(unpacked, lib.soname);
    if (found === null) throw new Error(`${unpacked} (unpacked ${lib.debianPackage}) holds no ${lib.soname}; delete it to fetch again`);
    const file = realpathSync(found);
    if (!file.startsWith(`${realpathSync(unpacked)}/`)) throw new Error(`${found} points outside the unpacked package (${file})`);
    files.set(lib.path, file);
  }
  const debs = EMBEDDED_LIBRARIES.map((lib) => readFileSync(join(cacheDir, lib.debianPackage, DEB_MARKER), "utf8").trim());
  return { origin: `downloaded ${debs.join(", ")} (cache ${cacheDir})`, files };
}

/** The libraries to embed: the host's when it has both (and no fetch is forced), else the fetched packages'. */
export function libnlFiles(options: BuildOptions = {}): LibnlFiles {
  const force = options.fetchLibnl ?? process.env.GORB_BUILD_FETCH_LIBNL === "1";
  const onHost = EMBEDDED_LIBRARIES.every((lib) => existsSync(lib.path) && lstatSync(realpathSync(lib.path)).isFile());
  if (onHost && !force) return { origin: "host", files: new Map(EMBEDDED_LIBRARIES.map((lib) => [lib.path, lib.path])) };
  return fetchLibnl(options.cacheDir ?? process.env.GORB_BUILD_CACHE ?? DEFAULT_LIBNL_CACHE);
}

/** Compiles src/main.ts into the executable `outfile` with the given libnl files; throws with bun's messages. */
export async function compile(outfile: string, libnl: LibnlFiles): Promise<void> {
  const result = await Bun.build({
    // The dump thread's worker is an entry point of its own: Bun embeds it (as transport/dump-worker.js below the
    // entry points' common directory), and src/transport/dump-thread.ts starts it by that absolute embedded URL.
    entrypoints: [join(ROOT, "src", "main.ts"), join(ROOT, "src", "transport", "dump-worker.ts")],
    // A root daemon and CLI never take code or settings from the directory they are started in: without these,
    // the executable reads bunfig.toml (its `preload` runs code), .env, tsconfig.json and package.json from the
    // working directory and its parents, so a bunfig.toml in a shared /tmp ran as root with `gorb status`.
    compile: {
      outfile: resolve(outfile),
      autoloadBunfig: false,
      autoloadDotenv: false,
      autoloadTsconfig: false,
      autoloadPackageJson: false,
    },
    bytecode: true,
    splitting: true,
    format: "esm",
    target: "bun",
    throw: false,
    plugins: [
      {
        name: "gorb-embedded-libnl",
        setup(build) {
          build.onResolve({ filter: /^\/usr\/lib\/x86_64-linux-gnu\/libnl-(genl-)?3\.so\.200$/ }, (args) => {
            const file = libnl.files.get(args.path);
            if (file === undefined) throw new Error(`no file for ${args.path}`);
            return { path: file };
          });
        },
      },
    ],
  });
  if (!result.success) throw new Error(`bun build failed:\n${result.logs.map((l) => String(l)).join("\n")}`);
}

/** The command line that builds the executable at `outfile` (this script, in its own process). */
export function buildCommand(outfile: string, options: BuildOptions = {}): string[] {
  return [
    process.execPath,
    join(ROOT, "scripts", "build.ts"),
    "--outfile",
    outfile,
    ...(options.fetchLibnl === true ? ["--fetch-libnl"] : []),
    ...(options.cacheDir !== undefined ? ["--cache-dir", options.cacheDir] : []),
  ];
}

/**
 * Build the executable at `outfile` (relative to the repository root) in a child process, synchronously; returns
 * what the build printed (its last line names where libnl came from). Throws with the output on failure.
 */
export function buildExecutable(outfile: string, options: BuildOptions = {}): string {
  const proc = Bun.spawnSync(buildCommand(outfile, options), { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const output = `${proc.stdout.toString()}${proc.stderr.toString()}`;
  if (proc.exitCode !== 0) throw new Error(`building ${outfile} failed (exit ${proc.exitCode}):\n${output}`);
  return output;
}

if (import.meta.main) {
  const argv = process.argv.slice(2);
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const outfile = value("--outfile") ?? "dist/gorb";
  const cacheDir = value("--cache-dir");
  const t0 = performance.now();
  try {
    const libnl = libnlFiles({ ...(argv.includes("--fetch-libnl") ? { fetchLibnl: true } : {}), ...(cacheDir !== undefined ? { cacheDir } : {}) });
    await compile(outfile, libnl);
    console.log(`built ${outfile} in ${((performance.now() - t0) / 1000).toFixed(1)} s (libnl: ${libnl.origin})`);
  } catch (error) {
    console.error(`build: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
}
