/**
 * The compiled executable in the rig (host side): kernel tests named `compiled*.test.ts` run `/usr/bin/gorb`, built
 * on the host from the current sources (scripts/build.ts) just before the guest boots and added to its initramfs.
 * The guest side (hiding libnl, running the executable) is test/kernel/helpers/executable.ts.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { buildExecutable } from "../../scripts/build.ts";
import { PACKAGE_FILES, buildPackage } from "../../scripts/package.ts";
import { GUEST_EXECUTABLE, GUEST_PACKAGE_ROOT } from "../kernel/helpers/executable.ts";
import type { GuestFile } from "./initramfs.ts";
import { PROJECT_ROOT } from "./paths.ts";

/** Where the executable lives on the host after a build. */
export const DIST_EXECUTABLE = join(PROJECT_ROOT, "dist", "gorb");

/** Kernel test files that need the executable in the guest. */
export const COMPILED_TEST_FILE = /^compiled.*\.test\.ts$/;

/** The compiled test files among `paths` (files or directories, project-relative or absolute). */
export function compiledTests(paths: readonly string[]): string[] {
  const found: string[] = [];
  const visit = (path: string): void => {
    const abs = path.startsWith("/") ? path : join(PROJECT_ROOT, path);
    if (!existsSync(abs)) return;
    if (statSync(abs).isDirectory()) {
      for (const name of readdirSync(abs).sort()) visit(join(abs, name));
    } else if (COMPILED_TEST_FILE.test(basename(abs))) {
      found.push(abs);
    }
  };
  paths.forEach(visit);
  return found;
}

/**
 * Builds dist/gorb from the current sources (about 1-2 s) and returns it as a guest file at /usr/bin/gorb. The
 * build writes a temporary file and renames it, so a concurrent reader never sees half an executable.
 */
export function buildGuestExecutable(log: (line: string) => void = (l) => console.error(l)): GuestFile {
  const started = performance.now();
  mkdirSync(join(PROJECT_ROOT, "dist"), { recursive: true });
  const tmp = join(PROJECT_ROOT, "dist", `.gorb-${process.pid}.tmp`);
  try {
    buildExecutable(tmp);
    renameSync(tmp, DIST_EXECUTABLE);
  } finally {
    rmSync(tmp, { force: true });
  }
  const size = statSync(DIST_EXECUTABLE).size;
  log(`rig: built dist/gorb (${(size / 1e6).toFixed(0)} MB) in ${((performance.now() - started) / 1000).toFixed(1)} s, at ${GUEST_EXECUTABLE} in the guest`);
  return { host: DIST_EXECUTABLE, guest: GUEST_EXECUTABLE.slice(1), mode: 0o755 };
}

/** Where the package built for the guest is unpacked on the host (rebuilt on every run). */
const PACKAGE_TREE = join(PROJECT_ROOT, "dist", "package-tree");

/**
 * Builds the Debian package from dist/gorb (scripts/package.ts, uncompressed), unpacks it with dpkg-deb (files and
 * maintainer scripts) and returns its files as guest files under {@link GUEST_PACKAGE_ROOT}, except the executable,
 * which must be byte for byte dist/gorb (already at /usr/bin/gorb in the guest, where the package installs it): a
 * second 110 MiB copy would only cost the guest memory. Call after {@link buildGuestExecutable}.
 */
export function buildGuestPackage(log: (line: string) => void = (l) => console.error(l)): GuestFile[] {
  const started = performance.now();
  const deb = buildPackage({ exe: DIST_EXECUTABLE, outDir: join(PROJECT_ROOT, "dist"), compress: false });
  rmSync(PACKAGE_TREE, { recursive: true, force: true });
  mkdirSync(PACKAGE_TREE, { recursive: true });
  for (const argv of [["dpkg-deb", "-x", deb, PACKAGE_TREE], ["dpkg-deb", "-e", deb, join(PACKAGE_TREE, "DEBIAN")]]) {
    const proc = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
    if (proc.exitCode !== 0) throw new Error(`${argv.join(" ")} failed (exit ${proc.exitCode}): ${proc.stderr.toString().trim()}`);
  }
  const packaged = join(PACKAGE_TREE, PACKAGE_FILES.executable.path);
  if (!readFileSync(packaged).equals(readFileSync(DIST_EXECUTABLE))) throw new Error(`${packaged} differs from ${DIST_EXECUTABLE}`);
  const files: GuestFile[] = [];
  const visit = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) visit(path);
      else if (path !== packaged) files.push({ host: path, guest: join(GUEST_PACKAGE_ROOT.slice(1), relative(PACKAGE_TREE, path)), mode: statSync(path).mode & 0o777 });
    }
  };
  visit(PACKAGE_TREE);
  log(`rig: built ${basename(deb)} and unpacked it at ${GUEST_PACKAGE_ROOT} in the guest (${files.length} files) in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return files;
}
