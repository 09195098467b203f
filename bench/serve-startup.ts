/**
 * Start-up figures that need the real-kernel guest (the host has no IPVS, so `gorb serve` exits 8 there):
 *
 * - inside the guest (bench/serve-startup-guest.ts): `--version` and `serve` spawn-to-first-answer medians of the
 *   compiled executable (system and embedded libnl) and of the sources;
 * - the sandbox: `scripts/sandbox.ts --check` from command to first answered API request on the host, from source
 *   and compiled (a whole boot each, so a few runs).
 *
 *   bun run bench/serve-startup.ts [guest-runs] [sandbox-runs]     (defaults 5 and 3)
 *
 * bench/startup.ts prints these after the host figures.
 */
import { buildGuestExecutable } from "../test/rig/compiled-exe.ts";
import { PROJECT_ROOT } from "../test/rig/paths.ts";
import { RigError, runInGuest } from "../test/rig/qemu.ts";

/** One figure, in milliseconds. */
export interface Figure {
  readonly label: string;
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly runs: number;
}

const JSON_MARKER = /^SERVE_STARTUP_JSON=(.*)$/m;
const SANDBOX_MARKER = /^SANDBOX_FIRST_ANSWER_MS=(\d+)$/m;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

function isFigure(value: unknown): value is Figure {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.label === "string" && typeof v.medianMs === "number" && typeof v.minMs === "number" && typeof v.maxMs === "number" && typeof v.runs === "number";
}

/** Formats a figure as one aligned line. */
export function figureLine(f: Figure): string {
  const unit = f.medianMs >= 10_000 ? `${(f.medianMs / 1000).toFixed(1)} s` : `${f.medianMs.toFixed(0)} ms`;
  return `${f.label.padEnd(56)} median ${unit.padStart(8)}  (min ${f.minMs.toFixed(0)} ms, max ${f.maxMs.toFixed(0)} ms, ${f.runs} runs)`;
}

/**
 * Builds dist/gorb, boots the guest with it at /usr/bin/gorb and runs bench/serve-startup-guest.ts there; returns
 * its figures. The guest's console goes to `onOutput`.
 */
export async function serveStartupInGuest(runs: number, onOutput: (chunk: string) => void = () => {}): Promise<Figure[]> {
  const exe = buildGuestExecutable();
  const result = await runInGuest({
    script: `exec /usr/bin/bun bench/serve-startup-guest.ts ${runs}\n`,
    timeoutMs: 30 * 60_000,
    extraFiles: [exe],
    onOutput,
  });
  if (result.exitCode !== 0) throw new Error(`bench/serve-startup-guest.ts exited ${result.exitCode} in the guest`);
  const json = JSON_MARKER.exec(result.transcript)?.[1];
  if (json === undefined) throw new Error("the guest printed no SERVE_STARTUP_JSON line");
  const parsed: unknown = JSON.parse(json);
  if (!Array.isArray(parsed) || !parsed.every(isFigure)) throw new Error(`SERVE_STARTUP_JSON is not a list of figures: ${json}`);
  return parsed;
}

/** Runs `scripts/sandbox.ts --check` `runs` times (each its own process, so start-up counts) and returns the figure. */
export async function sandboxFirstAnswer(runs: number, compiled: boolean): Promise<Figure> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const argv = [process.execPath, "run", "scripts/sandbox.ts", "--check", ...(compiled ? ["--compiled"] : [])];
    const proc = Bun.spawn(argv, { cwd: PROJECT_ROOT, stdout: "pipe", stderr: "pipe" });
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    const ms = SANDBOX_MARKER.exec(stdout)?.[1];
    if (code !== 0 || ms === undefined) throw new Error(`${argv.slice(1).join(" ")} exited ${code}:\n${stdout}${stderr}`);
    times.push(Number(ms));
  }
  return {
    label: `sandbox --check${compiled ? " --compiled" : ""}: command -> first API answer`,
    medianMs: median(times),
    minMs: Math.min(...times),
    maxMs: Math.max(...times),
    runs,
  };
}

/** Parses a positive run count from argv, naming the argument when it is bad. */
export function runCount(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

if (import.meta.main) {
  try {
    const guestRuns = runCount(process.argv[2], "guest-runs", 5);
    const sandboxRuns = runCount(process.argv[3], "sandbox-runs", 3);
    const figures = await serveStartupInGuest(guestRuns, (s) => process.stderr.write(s));
    figures.push(await sandboxFirstAnswer(sandboxRuns, false));
    figures.push(await sandboxFirstAnswer(sandboxRuns, true));
    console.log("");
    for (const f of figures) console.log(figureLine(f));
  } catch (error) {
    console.error(error instanceof RigError ? `rig failure: ${error.message}` : error instanceof Error ? error.message : String(error));
    process.exit(2);
  }
}
