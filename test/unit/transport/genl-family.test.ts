/**
 * The modprobe gorb runs (as root) when the IPVS family is missing: found only in the system's directories, never
 * through the caller's PATH (a relative entry would find one in the working directory). Bun looks a program up in
 * the PATH the process started with, so each case resolves a family the kernel does not have (which asks modprobe
 * for its module) in a child process started with that PATH.
 */
import { afterEach, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const MODULE = resolve(import.meta.dir, "../../../src/transport/genl-family.ts");
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A directory holding a `modprobe` that leaves a marker file when it runs; returns both paths. */
function plantedModprobe(): { dir: string; marker: string } {
  const dir = mkdtempSync(join(tmpdir(), "gorb-modprobe-"));
  dirs.push(dir);
  const marker = join(dir, "ran");
  writeFileSync(join(dir, "modprobe"), `#!/bin/sh\ntouch '${marker}'\n`);
  chmodSync(join(dir, "modprobe"), 0o755);
  return { dir, marker };
}

/** Resolves a family no kernel has, in a child process with this PATH and working directory. */
async function modprobeWith(path: string, cwd: string): Promise<void> {
  const script =
    `import { resolveGenlFamily } from ${JSON.stringify(MODULE)};` +
    `if (resolveGenlFamily("gorb_test_no_such_family", "gorb_test_no_such_module") !== null) process.exit(3);`;
  const child = Bun.spawn([process.execPath, "-e", script], { env: { PATH: path }, cwd, stdout: "ignore", stderr: "pipe" });
  expect(await child.exited).toBe(0);
}

test("a modprobe in the working directory is not run through a relative PATH entry", async () => {
  const { dir, marker } = plantedModprobe();
  await modprobeWith(".:/usr/sbin:/usr/bin:/sbin:/bin", dir);
  expect(existsSync(marker)).toBe(false);
});

test("a modprobe in a directory of the caller's PATH outside the system's is not run", async () => {
  const { dir, marker } = plantedModprobe();
  await modprobeWith(`${dir}:/usr/sbin:/usr/bin:/sbin:/bin`, "/");
  expect(existsSync(marker)).toBe(false);
});
