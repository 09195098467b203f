/**
 * Build-time only: bundles the web UI (./main.tsx with Preact and uPlot) and its CSS into strings. Called as a
 * Bun macro by src/api/ui-assets.ts (`with { type: "macro" }`), so `bun build --compile` inlines the result into
 * the executable (no files beside it, nothing fetched at run time), and `bun src/main.ts` runs it when it first
 * serves the UI. Bun.build cannot run inside a macro (the bundler would wait for itself), so this runs
 * `bun build` as a child process, as Bun's error message advises.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** The UI's files as strings. */
export interface UiBundle {
  readonly js: string;
  readonly css: string;
}

export function uiBundle(): UiBundle {
  const dir = import.meta.dir;
  const root = join(dir, "..", "..");
  const proc = Bun.spawnSync(
    [process.execPath, "build", join(dir, "main.tsx"), "--minify", "--target=browser", "--format=esm", "--tsconfig-override", join(root, "tsconfig.json")],
    { cwd: root, stdout: "pipe", stderr: "pipe", env: { ...process.env, NODE_ENV: "production" } },
  );
  if (proc.exitCode !== 0) throw new Error(`bundling the web UI failed:\n${proc.stderr.toString()}${proc.stdout.toString()}`);
  const css = [readFileSync(join(root, "node_modules", "uplot", "dist", "uPlot.min.css"), "utf8"), readFileSync(join(dir, "style.css"), "utf8")].join("\n");
  return { js: proc.stdout.toString(), css };
}
