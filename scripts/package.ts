/**
 * `npm run package`: the Debian package of gorb, `dist/gorb_<version>_amd64.deb`, built with `dpkg-deb --build`
 * (no root needed: --root-owner-group).
 *
 *   bun run scripts/package.ts [--exe dist/gorb] [--out dist]
 *
 * Without --exe the executable is built first (scripts/build.ts, into dist/gorb). The package holds:
 *   /usr/bin/gorb                                      the single executable (libnl inside, used only without the system's)
 *   /lib/systemd/system/gorb.service                   packaging/gorb.service
 *   /etc/gorb/gorb.yaml                                packaging/gorb.yaml, a conffile (kept on upgrade when edited),
 *                                                      mode 0600: it may hold the API token (`token:`)
 *   /usr/share/bash-completion/completions/gorb        `gorb completion bash`, and zsh and fish likewise
 *   /usr/share/zsh/vendor-completions/_gorb
 *   /usr/share/fish/vendor_completions.d/gorb.fish
 *   /usr/share/doc/gorb/{copyright,README.md}
 * and the maintainer scripts packaging/{postinst,prerm,postrm} (which never enable or start the daemon).
 */
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { buildExecutable } from "./build.ts";

const ROOT = resolve(import.meta.dir, "..");
const PACKAGING = join(ROOT, "packaging");

/** Where each file goes in the package, relative to its root, and its mode. */
export const PACKAGE_FILES = {
  executable: { path: "usr/bin/gorb", mode: 0o755 },
  unit: { path: "lib/systemd/system/gorb.service", mode: 0o644 },
  // 0600, as gorb serve requires of a file holding `token:`: an operator who adds one (README: "listen address,
  // token, declared services") need not chmod it first. The client never reads it unless named (`gorb diff -f`).
  config: { path: "etc/gorb/gorb.yaml", mode: 0o600 },
  bash: { path: "usr/share/bash-completion/completions/gorb", mode: 0o644 },
  zsh: { path: "usr/share/zsh/vendor-completions/_gorb", mode: 0o644 },
  fish: { path: "usr/share/fish/vendor_completions.d/gorb.fish", mode: 0o644 },
  copyright: { path: "usr/share/doc/gorb/copyright", mode: 0o644 },
  readme: { path: "usr/share/doc/gorb/README.md", mode: 0o644 },
} as const;

/** The package's file name for this version. */
export function packageFileName(version: string = pkg.version): string {
  return `gorb_${version}_amd64.deb`;
}

/** The DEBIAN/control text for `installedKiB` of files. */
export function controlText(version: string, installedKiB: number): string {
  return [
    "Package: gorb",
    `Version: ${version}`,
    "Architecture: amd64",
    "Maintainer: gorb developers <gorb@localhost>",
    `Installed-Size: ${installedKiB}`,
    "Depends: libc6 (>= 2.27)",
    "Recommends: libnl-3-200, libnl-genl-3-200",
    "Suggests: ipvsadm",
    "Section: net",
    "Priority: optional",
    "Homepage: https://github.com/kobolog/gorb",
    "Description: IPVS load balancer control plane with a REST API and health checks",
    " gorb drives the Linux kernel's IPVS load balancer: a daemon with a REST API, a",
    " command-line client and a web UI. It programs IPVS over generic netlink,",
    " health-checks every backend, drains failing ones to weight 0 and restores them",
    " gradually, registers services in Consul and exports Prometheus metrics.",
    " .",
    " The systemd unit is installed but neither enabled nor started.",
    "",
  ].join("\n");
}

function run(argv: readonly string[]): string {
  const proc = Bun.spawnSync([...argv], { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  if (proc.exitCode !== 0) throw new Error(`${argv.join(" ")} failed (exit ${proc.exitCode}): ${proc.stderr.toString().trim()}`);
  return proc.stdout.toString();
}

function sizeOf(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? sizeOf(path) : statSync(path).size;
  }
  return total;
}

/** Options of {@link buildPackage}. */
export interface PackageOptions {
  /** An executable built already (default: build dist/gorb now). */
  readonly exe?: string;
  /** Directory the .deb is written to (default dist/). */
  readonly outDir?: string;
  /** gzip the package (default); false stores it uncompressed (faster, for the test rig). */
  readonly compress?: boolean;
}

/** Builds the package and returns the path of the .deb. */
export function buildPackage(options: PackageOptions = {}): string {
  const outDir = resolve(ROOT, options.outDir ?? "dist");
  mkdirSync(outDir, { recursive: true });
  let exe = options.exe === undefined ? undefined : resolve(ROOT, options.exe);
  if (exe === undefined) {
    exe = join(ROOT, "dist", "gorb");
    mkdirSync(dirname(exe), { recursive: true });
    buildExecutable(exe);
  }
  const stage = mkdtempSync(join(outDir, ".package-"));
  try {
    const place = (file: { path: string; mode: number }, from: string | { text: string }) => {
      const to = join(stage, file.path);
      mkdirSync(dirname(to), { recursive: true });
      if (typeof from === "string") copyFileSync(from, to);
      else writeFileSync(to, from.text);
      chmodSync(to, file.mode);
    };
    place(PACKAGE_FILES.executable, exe);
    place(PACKAGE_FILES.unit, join(PACKAGING, "gorb.service"));
    place(PACKAGE_FILES.config, join(PACKAGING, "gorb.yaml"));
    for (const shell of ["bash", "zsh", "fish"] as const) place(PACKAGE_FILES[shell], { text: run([exe, "completion", shell]) });
    place(PACKAGE_FILES.copyright, join(PACKAGING, "copyright"));
    place(PACKAGE_FILES.readme, join(ROOT, "README.md"));
    const installedKiB = Math.ceil(sizeOf(stage) / 1024);
    const debian = join(stage, "DEBIAN");
    mkdirSync(debian, { mode: 0o755 });
    writeFileSync(join(debian, "control"), controlText(pkg.version, installedKiB));
    writeFileSync(join(debian, "conffiles"), `/${PACKAGE_FILES.config.path}\n`);
    for (const script of ["postinst", "prerm", "postrm"]) {
      copyFileSync(join(PACKAGING, script), join(debian, script));
      chmodSync(join(debian, script), 0o755);
    }
    // Directories 0755 whatever the umask; gzip at level 6 (xz takes minutes for the 110 MiB executable).
    run(["find", stage, "-type", "d", "-exec", "chmod", "0755", "{}", "+"]);
    const deb = join(outDir, packageFileName());
    run(["dpkg-deb", "--root-owner-group", ...(options.compress === false ? ["-Znone"] : ["-Zgzip", "-z6"]), "--build", stage, deb]);
    return deb;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const argv = process.argv.slice(2);
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const t0 = performance.now();
  try {
    const exe = value("--exe");
    const outDir = value("--out");
    const deb = buildPackage({ ...(exe !== undefined ? { exe } : {}), ...(outDir !== undefined ? { outDir } : {}) });
    console.log(`built ${deb} (${(statSync(deb).size / 1e6).toFixed(0)} MB) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  } catch (error) {
    console.error(`package: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
}
