/**
 * The compiled executable in the rig (host side): kernel tests named `compiled*.test.ts` run `/usr/bin/gorb`, built
 * on the host from the current sources (scripts/build.ts) just before the guest boots and added to its initramfs.
 * The guest side (hiding libnl, running the executable) is test/kernel/helpers/executable.ts.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { buildExecutable } from "../../scripts/build.ts";
import { GUEST_EXECUTABLE } from "../kernel/helpers/executable.ts";
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
