/**
 * Obtains the Debian cloud kernel the rig boots, plus the handful of modules IPVS tests need.
 *
 * The version is never hard-coded: the meta-package `linux-image-cloud-amd64` names the current
 * `linux-image-<kver>-cloud-amd64`, which is fetched with `apt-get download`, unpacked with `dpkg -x`, cut down to
 * the modules listed in {@link WANTED_MODULES} (plus everything they depend on) and indexed with `depmod`.
 * The result is cached under `.rig-cache/kernel/<package>_<version>/`, so a second run downloads nothing.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { runHost, requireTool } from "./host-exec.ts";
import { KERNEL_CACHE, RIG_CACHE } from "./paths.ts";

/** The meta-package whose dependency names the current cloud kernel. */
export const KERNEL_META_PACKAGE = "linux-image-cloud-amd64";

/** A kernel ready to boot: its image and a module tree that already has `modules.dep`. */
export interface RigKernel {
  /** Debian package the kernel came from, e.g. `linux-image-6.1.0-56-cloud-amd64`. */
  readonly packageName: string;
  /** Debian version of that package, e.g. `6.1.192-2`. */
  readonly packageVersion: string;
  /** Kernel release (the `lib/modules/<kver>` directory name). */
  readonly release: string;
  /** Absolute path of the bzImage. */
  readonly vmlinuz: string;
  /** Directory holding `lib/modules/<kver>/` with only the wanted modules and a fresh `modules.dep`. */
  readonly modulesRoot: string;
  /** Paths of the kept modules, relative to `lib/modules/<kver>/`. */
  readonly modules: readonly string[];
  /** The WANTED_MODULES selection the cache was built from (a changed selection rebuilds it). */
  readonly selection?: string;
}

/**
 * Module selection, as paths relative to `lib/modules/<kver>/kernel/`. A trailing `/` selects every module in that
 * directory. `required: false` entries may be missing from a future kernel without failing the build.
 */
export const WANTED_MODULES: readonly { path: string; required: boolean }[] = [
  { path: "net/netfilter/ipvs/", required: true },
  { path: "net/netfilter/ipvs/ip_vs.ko", required: true },
  { path: "net/netfilter/ipvs/ip_vs_rr.ko", required: true },
  { path: "net/netfilter/ipvs/ip_vs_wrr.ko", required: true },
  { path: "net/netfilter/ipvs/ip_vs_lc.ko", required: true },
  { path: "net/netfilter/ipvs/ip_vs_wlc.ko", required: true },
  { path: "net/netfilter/ipvs/ip_vs_sh.ko", required: true },
  { path: "net/netfilter/ipvs/ip_vs_mh.ko", required: true },
  { path: "net/netfilter/ipvs/ip_vs_ftp.ko", required: false },
  { path: "net/netfilter/ipvs/ip_vs_pe_sip.ko", required: false },
  { path: "net/netfilter/nf_conntrack.ko", required: true },
  { path: "drivers/net/veth.ko", required: true },
  { path: "net/ipv4/ipip.ko", required: true },
  { path: "net/ipv4/tunnel4.ko", required: true },
  { path: "net/ipv4/ip_tunnel.ko", required: true },
  { path: "net/ipv6/ip6_tunnel.ko", required: false },
  { path: "net/ipv6/tunnel6.ko", required: false },
  { path: "net/ipv4/fou.ko", required: false },
  { path: "net/ipv6/fou6.ko", required: false },
  // 6in4 (IPv6 service, IPv4 tunnel backend): the backend decapsulates protocol 41 with sit.
  { path: "net/ipv6/sit.ko", required: false },
  { path: "net/ipv4/gre.ko", required: false },
  { path: "net/ipv4/ip_gre.ko", required: false },
  { path: "net/ipv6/ip6_gre.ko", required: false },
  { path: "drivers/virtio/", required: true },
  { path: "drivers/net/virtio_net.ko", required: true },
  { path: "drivers/net/net_failover.ko", required: true },
  { path: "net/core/failover.ko", required: true },
  { path: "drivers/char/hw_random/virtio-rng.ko", required: false },
];

/** WANTED_MODULES as one string: a cached kernel built from another selection is rebuilt. */
export const MODULE_SELECTION = WANTED_MODULES.map((m) => `${m.path}${m.required ? "" : "?"}`).join(",");

/** Files depmod and modprobe want next to the modules. */
const MODULE_INDEX_FILES = ["modules.builtin", "modules.builtin.modinfo", "modules.order"] as const;

/** Name of the file written last into a kernel cache directory; its presence means the directory is complete. */
const READY_FILE = "rig-kernel.json";

/**
 * Resolves the current cloud kernel package and its version from apt's lists, through the meta-package's
 * `Depends: linux-image-<kver>-cloud-amd64 (= <version>)`. Throws when apt knows neither.
 */
export function resolveKernelPackage(): { packageName: string; packageVersion: string } {
  requireTool("apt-cache", "apt");
  const meta = runHost(["apt-cache", "show", "--no-all-versions", KERNEL_META_PACKAGE]).stdout;
  const depends = /^Depends:(.*)$/m.exec(meta)?.[1] ?? "";
  const match = /(linux-image-\S+-cloud-amd64)(?:\s*\(\s*=\s*([^)\s]+)\s*\))?/.exec(depends);
  const packageName = match?.[1];
  if (!packageName) {
    throw new Error(
      `\`apt-cache show ${KERNEL_META_PACKAGE}\` names no linux-image-*-cloud-amd64 dependency ` +
        `(is apt-get update done? run .ci/rig-deps.sh). Output was:\n${meta}`,
    );
  }
  const pinned = match[2];
  if (pinned) return { packageName, packageVersion: pinned };
  const show = runHost(["apt-cache", "show", "--no-all-versions", packageName]).stdout;
  const version = /^Version:\s*(\S+)\s*$/m.exec(show)?.[1];
  if (!version) throw new Error(`\`apt-cache show ${packageName}\` gave no Version field:\n${show}`);
  return { packageName, packageVersion: version };
}

/** Reads a finished kernel cache directory, or returns undefined when it is absent or incomplete. */
function readCachedKernel(dir: string): RigKernel | undefined {
  const ready = join(dir, READY_FILE);
  if (!existsSync(ready)) return undefined;
  const parsed: unknown = JSON.parse(readFileSync(ready, "utf8"));
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const { packageName, packageVersion, release, modules, selection } = parsed as Partial<Record<keyof RigKernel, unknown>>;
  if (typeof packageName !== "string" || typeof packageVersion !== "string" || typeof release !== "string" || !Array.isArray(modules)) {
    return undefined;
  }
  if (selection !== MODULE_SELECTION) return undefined;
  // Paths are rebuilt from `dir`, so a moved cache stays valid.
  const kernel: RigKernel = {
    packageName,
    packageVersion,
    release,
    vmlinuz: join(dir, `vmlinuz-${release}`),
    modulesRoot: join(dir, "root"),
    modules: modules.filter((m): m is string => typeof m === "string"),
  };
  if (!existsSync(kernel.vmlinuz) || !existsSync(join(kernel.modulesRoot, "lib", "modules", release, "modules.dep"))) {
    return undefined;
  }
  return kernel;
}

/** The newest complete cached kernel, used only when apt cannot be asked. */
function newestCachedKernel(): RigKernel | undefined {
  if (!existsSync(KERNEL_CACHE)) return undefined;
  const kernels = readdirSync(KERNEL_CACHE)
    .map((name) => readCachedKernel(join(KERNEL_CACHE, name)))
    .filter((k): k is RigKernel => k !== undefined);
  kernels.sort((a, b) => runHostCompareVersions(a.packageVersion, b.packageVersion));
  return kernels.at(-1);
}

/** Orders two Debian versions with dpkg's own comparison. */
function runHostCompareVersions(a: string, b: string): number {
  if (a === b) return 0;
  try {
    runHost(["dpkg", "--compare-versions", a, "lt", b]);
    return -1;
  } catch {
    return 1;
  }
}

/** Parses `modules.dep` into module path -> direct and indirect dependency paths (all relative to the release dir). */
export function parseModulesDep(text: string): Map<string, string[]> {
  const deps = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const mod = line.slice(0, colon).trim();
    const rest = line.slice(colon + 1).trim();
    deps.set(mod, rest ? rest.split(/\s+/) : []);
  }
  return deps;
}

/** Picks the wanted modules out of `all` (paths like `kernel/net/...ko`) and closes the set over `deps`. */
export function selectModules(all: Map<string, string[]>, wanted: readonly { path: string; required: boolean }[]): string[] {
  const chosen = new Set<string>();
  const missing: string[] = [];
  for (const want of wanted) {
    const full = `kernel/${want.path}`;
    const matches = full.endsWith("/")
      ? [...all.keys()].filter((m) => m.startsWith(full) && !m.slice(full.length).includes("/"))
      : all.has(full)
        ? [full]
        : [];
    if (matches.length === 0 && want.required) missing.push(want.path);
    for (const m of matches) chosen.add(m);
  }
  if (missing.length > 0) {
    throw new Error(`kernel lacks required module(s): ${missing.join(", ")}`);
  }
  for (const mod of [...chosen]) {
    for (const dep of all.get(mod) ?? []) chosen.add(dep);
  }
  return [...chosen].sort();
}

/** Downloads, unpacks and trims one kernel package into `dir`. */
function buildKernel(packageName: string, packageVersion: string, dir: string, log: (line: string) => void): RigKernel {
  requireTool("apt-get", "apt");
  requireTool("dpkg", "dpkg");
  const depmod = requireTool("depmod", "kmod");
  mkdirSync(RIG_CACHE, { recursive: true });
  const work = mkdtempSync(join(RIG_CACHE, "kernel-build-"));
  try {
    log(`rig: downloading ${packageName}=${packageVersion}`);
    runHost(["apt-get", "download", "-q", `${packageName}=${packageVersion}`], { cwd: work });
    const deb = readdirSync(work).find((f) => f.endsWith(".deb"));
    if (!deb) throw new Error(`apt-get download ${packageName}=${packageVersion} left no .deb in ${work}`);
    const unpacked = join(work, "root");
    runHost(["dpkg", "-x", join(work, deb), unpacked]);

    const releases = readdirSync(join(unpacked, "lib", "modules"));
    const release = packageName.replace(/^linux-image-/, "");
    if (!releases.includes(release)) {
      throw new Error(`${deb} has lib/modules/{${releases.join(",")}}, expected ${release}`);
    }
    const image = join(unpacked, "boot", `vmlinuz-${release}`);
    if (!existsSync(image)) throw new Error(`${deb} has no boot/vmlinuz-${release}`);

    // The package ships no modules.dep: index the whole tree once to learn dependencies.
    runHost([depmod, "-b", unpacked, release]);
    const fullRelDir = join(unpacked, "lib", "modules", release);
    const all = parseModulesDep(readFileSync(join(fullRelDir, "modules.dep"), "utf8"));
    const modules = selectModules(all, WANTED_MODULES);

    // Assemble under a private name and rename into place, so concurrent first runs cannot mix their files.
    const staging = `${dir}.tmp-${process.pid}`;
    rmSync(staging, { recursive: true, force: true });
    const modulesRoot = join(staging, "root");
    const relDir = join(modulesRoot, "lib", "modules", release);
    for (const mod of modules) {
      mkdirSync(dirname(join(relDir, mod)), { recursive: true });
      copyFileSync(join(fullRelDir, mod), join(relDir, mod));
    }
    for (const index of MODULE_INDEX_FILES) {
      if (existsSync(join(fullRelDir, index))) copyFileSync(join(fullRelDir, index), join(relDir, index));
    }
    runHost([depmod, "-b", modulesRoot, release]);
    copyFileSync(image, join(staging, `vmlinuz-${release}`));

    const kernel: RigKernel = {
      packageName,
      packageVersion,
      release,
      vmlinuz: join(dir, `vmlinuz-${release}`),
      modulesRoot: join(dir, "root"),
      modules,
      selection: MODULE_SELECTION,
    };
    writeFileSync(join(staging, READY_FILE), `${JSON.stringify(kernel, null, 2)}\n`);
    if (existsSync(dir) && !readCachedKernel(dir)) rmSync(dir, { recursive: true, force: true }); // incomplete leftover
    try {
      renameSync(staging, dir);
    } catch (err) {
      rmSync(staging, { recursive: true, force: true });
      const other = readCachedKernel(dir); // another run finished first: use its copy
      if (!other) throw err;
      return other;
    }
    log(`rig: kernel ${release} ready with ${modules.length} modules`);
    return kernel;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Returns the current cloud kernel, downloading and trimming it on first use. When apt cannot name the current
 * kernel (no package lists) a previously cached kernel is used, with a warning; with neither this throws.
 */
export function prepareKernel(log: (line: string) => void = (line) => console.error(line)): RigKernel {
  let resolved: { packageName: string; packageVersion: string };
  try {
    resolved = resolveKernelPackage();
  } catch (err) {
    const cached = newestCachedKernel();
    if (!cached) throw err;
    const reason = err instanceof Error ? err.message.split("\n")[0] : String(err);
    log(`rig: WARNING cannot resolve the current kernel (${reason}); using cached ${cached.packageName}=${cached.packageVersion}`);
    return cached;
  }
  const dir = join(KERNEL_CACHE, `${resolved.packageName}_${resolved.packageVersion}`);
  const cached = readCachedKernel(dir);
  if (cached) return cached;
  const kernel = buildKernel(resolved.packageName, resolved.packageVersion, dir, log);
  // Drop kernels of older versions: only the current one is ever booted.
  for (const name of readdirSync(KERNEL_CACHE)) {
    const other = join(KERNEL_CACHE, name);
    if (other !== dir && !name.includes(".tmp-") && readCachedKernel(other)) rmSync(other, { recursive: true, force: true });
  }
  return kernel;
}

if (import.meta.main) {
  const started = performance.now();
  const kernel = prepareKernel();
  console.log(`${kernel.packageName}=${kernel.packageVersion} (${kernel.modules.length} modules) in ${Math.round(performance.now() - started)} ms`);
  console.log(kernel.vmlinuz);
}
