/**
 * Build the single gorb executable: `bun run scripts/build.ts [--outfile dist/gorb]`.
 *
 * --bytecode precompiles the bundle (about half the start-up time of `gorb --version`); it needs ESM output
 * (the code uses import.meta) and no top-level await in the entry (src/main.ts has none). The executable carries
 * libnl-3 and libnl-genl-3 (src/embedded-libnl.ts), used only where the system has no copy.
 */
import { existsSync } from "node:fs";

/** The libraries the executable embeds; the build fails early with a clear message when one is missing. */
export const EMBEDDED_LIBRARIES = [
  "/usr/lib/x86_64-linux-gnu/libnl-3.so.200",
  "/usr/lib/x86_64-linux-gnu/libnl-genl-3.so.200",
] as const;

/** The `bun build` command line for an executable at `outfile`. */
export function buildCommand(outfile: string): string[] {
  return [process.execPath, "build", "--compile", "--bytecode", "--format=esm", "src/main.ts", "--outfile", outfile];
}

/** Build the executable at `outfile` (relative to the repository root); throws with bun's output on failure. */
export function buildExecutable(outfile: string): void {
  for (const lib of EMBEDDED_LIBRARIES) {
    if (!existsSync(lib)) throw new Error(`${lib} is missing: install libnl-3-200 and libnl-genl-3-200 to build gorb`);
  }
  const root = new URL("..", import.meta.url).pathname;
  const proc = Bun.spawnSync(buildCommand(outfile), { cwd: root, stdout: "pipe", stderr: "pipe" });
  if (proc.exitCode !== 0) {
    throw new Error(`bun build failed (exit ${proc.exitCode}):\n${proc.stdout.toString()}${proc.stderr.toString()}`);
  }
}

if (import.meta.main) {
  const i = process.argv.indexOf("--outfile");
  const outfile = i > 0 ? (process.argv[i + 1] ?? "dist/gorb") : "dist/gorb";
  const t0 = performance.now();
  buildExecutable(outfile);
  console.log(`built ${outfile} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
