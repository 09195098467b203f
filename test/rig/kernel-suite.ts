/**
 * Runs kernel tests inside the qemu rig: `bun run test/rig/kernel-suite.ts [paths...]` (default: test/kernel).
 *
 * Builds the rig (cached), splits the selected test files over GORB_RIG_GUESTS guests (default 2) booted side by
 * side, each running `bun test <its files>` in /gorb, prints the first guest's console as it comes and every other
 * guest's when it ends, prints where the time went, and exits with the first failing guest's `bun test` exit code.
 * When a guest fails to boot or never reports (timeout, crash, setup failure) it prints why and exits 2. Each guest
 * is its own kernel with its own IPVS table and network namespaces, so the files of one never see another's.
 *
 * Files are dealt to the guests by their expected duration (FILE_SECONDS, measured; longest first, each to the
 * guest with the least so far), so the guests end close together. Most of the suite waits on the guest's clock
 * (check intervals, hold timers, restarts), so two guests on two host CPUs took 738 s where one took 1,208 s (same
 * machine, 2026-12-04; each guest's files ran about 1.35x slower than alone).
 *
 * When a guest's files include a `compiled*.test.ts` file, dist/gorb is built first and placed at /usr/bin/gorb in
 * that guest, and the Debian package's other files are unpacked under /opt/gorb-deb (test/rig/compiled-exe.ts).
 *
 * Environment: GORB_RIG_TIMEOUT_MS bounds each guest run (default 2,700,000 = 45 min: a guard against a hung
 * guest, not a speed target; in one guest the suite took 15-16 min in fresh-clone runs of .ci/run and over 20 on
 * CI's machine of 2026-12-04, where the old 20-minute bound killed it in its last file); GORB_RIG_GUESTS (default 2);
 * GORB_RIG_TEST_TIMEOUT_MS is bun test's per-test timeout inside the guest (default 180,000: the guest is emulated
 * and runs about 10x slower than the host); GORB_RIG_CPUS, GORB_RIG_VERBOSE=1 (all kernel messages).
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { isAbsolute, join, relative } from "node:path";
import { buildGuestExecutable, buildGuestPackage, compiledTests } from "./compiled-exe.ts";
import type { GuestFile } from "./initramfs.ts";
import { PROJECT_ROOT } from "./paths.ts";
import { RigError, runInGuest, type GuestRunResult } from "./qemu.ts";

/** Exit status when the rig itself failed (as opposed to the tests). */
export const RIG_FAILURE_EXIT = 2;

function positiveIntFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer (milliseconds), got ${JSON.stringify(raw)}`);
  return value;
}

/** Quotes one word for busybox sh. */
function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Turns command-line paths into project-relative paths that exist, or throws naming the bad one. */
export function suitePaths(args: readonly string[]): string[] {
  const paths = args.length > 0 ? args : ["test/kernel"];
  return paths.map((p) => {
    const abs = isAbsolute(p) ? p : join(process.cwd(), p);
    const rel = relative(PROJECT_ROOT, abs);
    if (rel.startsWith("..") || isAbsolute(rel)) throw new Error(`path ${p} is outside the project (${PROJECT_ROOT})`);
    if (!existsSync(abs)) throw new Error(`path ${p} does not exist`);
    return rel === "" ? "." : rel;
  });
}

function seconds(ms: number | undefined): string {
  return ms === undefined ? "n/a" : `${(ms / 1000).toFixed(1)} s`;
}

/**
 * Seconds each kernel test file took in one guest (2026-12-04 17:00 UTC, wall time, hooks included), used only to
 * deal the files to the guests; a file not listed counts as DEFAULT_FILE_SECONDS.
 */
const FILE_SECONDS: Readonly<Record<string, number>> = {
  "test/kernel/ipvs-driver.test.ts": 303,
  "test/kernel/fleet.test.ts": 178,
  "test/kernel/restart.test.ts": 150,
  "test/kernel/serve.test.ts": 89,
  "test/kernel/forwarding.test.ts": 89,
  "test/kernel/checks.test.ts": 86,
  "test/kernel/drain.test.ts": 51,
  "test/kernel/failover.test.ts": 47,
  "test/kernel/bgp.test.ts": 45,
  "test/kernel/crash.test.ts": 38,
  "test/kernel/disk-full.test.ts": 30,
  "test/kernel/compiled-exe.test.ts": 19,
  "test/kernel/rig-smoke.test.ts": 16,
  "test/kernel/driver-traffic.test.ts": 16,
  "test/kernel/compiled-package.test.ts": 14,
  "test/kernel/driver-responsive.test.ts": 4,
};
const DEFAULT_FILE_SECONDS = 30;

/** The test files under `paths` (project-relative; a file as given, a directory's `*.test.ts` files, sorted). */
export function testFiles(paths: readonly string[]): string[] {
  const files: string[] = [];
  const visit = (rel: string): void => {
    const abs = join(PROJECT_ROOT, rel);
    if (!statSync(abs).isDirectory()) {
      files.push(rel);
      return;
    }
    for (const name of readdirSync(abs).sort()) {
      const child = rel === "." ? name : `${rel}/${name}`;
      if (statSync(join(PROJECT_ROOT, child)).isDirectory()) {
        if (name !== "node_modules" && !name.startsWith(".")) visit(child);
      } else if (name.endsWith(".test.ts")) files.push(child);
    }
  };
  for (const p of paths) visit(p);
  return [...new Set(files)];
}

/**
 * Deals `files` to at most `guests` groups by expected duration: longest first, each to the group with the least so
 * far (ties to the lower index). No group is empty; the files keep their sorted order within a group.
 */
export function shardFiles(files: readonly string[], guests: number, seconds: (file: string) => number): string[][] {
  const n = Math.max(1, Math.min(guests, files.length));
  const groups: { files: string[]; total: number }[] = Array.from({ length: n }, () => ({ files: [], total: 0 }));
  const bySize = [...files].sort((a, b) => seconds(b) - seconds(a) || a.localeCompare(b));
  for (const file of bySize) {
    let least = groups[0] as { files: string[]; total: number };
    for (const g of groups) if (g.total < least.total) least = g;
    least.files.push(file);
    least.total += seconds(file);
  }
  const order = new Map(files.map((f, i) => [f, i]));
  return groups.filter((g) => g.files.length > 0).map((g) => g.files.sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0)));
}

const expectedSeconds = (file: string): number => FILE_SECONDS[file] ?? DEFAULT_FILE_SECONDS;

/** What one guest's run came to: its bun test exit code, or the rig's failure. */
type GuestOutcome = { readonly result: GuestRunResult } | { readonly failure: string };

async function runGuest(
  files: readonly string[],
  extraFiles: readonly GuestFile[],
  timeoutMs: number,
  testTimeoutMs: number,
  onOutput: (chunk: string) => void,
  log: (line: string) => void,
): Promise<GuestOutcome> {
  const script = `exec /usr/bin/bun test --timeout ${testTimeoutMs} ${files.map(shellQuote).join(" ")}\n`;
  try {
    return { result: await runInGuest({ script, timeoutMs, extraFiles: [...extraFiles], onOutput, log }) };
  } catch (err) {
    if (err instanceof RigError) return { failure: err.message };
    return { failure: `while building or starting the rig: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}` };
  }
}

async function main(): Promise<number> {
  let shards: string[][];
  let timeoutMs: number;
  let testTimeoutMs: number;
  try {
    const files = testFiles(suitePaths(process.argv.slice(2)));
    if (files.length === 0) throw new Error("the selected paths hold no test file (*.test.ts)");
    shards = shardFiles(files, positiveIntFromEnv("GORB_RIG_GUESTS", 2), expectedSeconds);
    timeoutMs = positiveIntFromEnv("GORB_RIG_TIMEOUT_MS", 2_700_000);
    testTimeoutMs = positiveIntFromEnv("GORB_RIG_TEST_TIMEOUT_MS", 180_000);
  } catch (err) {
    console.error(`kernel-suite: ${err instanceof Error ? err.message : String(err)}`);
    return RIG_FAILURE_EXIT;
  }
  let extras: GuestFile[] = [];
  try {
    if (compiledTests(shards.flat()).length > 0) extras = [buildGuestExecutable(), ...buildGuestPackage()];
  } catch (err) {
    console.error(`kernel-suite: RIG FAILURE: cannot build the executable for the compiled tests: ${err instanceof Error ? err.message : String(err)}`);
    return RIG_FAILURE_EXIT;
  }
  const many = shards.length > 1;
  const name = (i: number): string => (many ? `guest ${i + 1} of ${shards.length}` : "the guest");
  shards.forEach((files, i) => {
    const expected = files.reduce((sum, f) => sum + expectedSeconds(f), 0);
    console.error(`kernel-suite: ${name(i)}: bun test ${files.join(" ")} (about ${expected} s; guest timeout ${seconds(timeoutMs)})`);
  });

  // The first guest's console is printed as it comes; the others' are kept and printed, whole, when they end.
  const held: string[] = shards.map(() => "");
  const outcomes = await Promise.all(
    shards.map((files, i) =>
      runGuest(
        files,
        compiledTests(files).length > 0 ? extras : [],
        timeoutMs,
        testTimeoutMs,
        i === 0 ? (chunk) => process.stdout.write(chunk) : (chunk) => void (held[i] += chunk),
        (line) => console.error(many ? `[${name(i)}] ${line}` : line),
      ),
    ),
  );

  let exit = 0;
  outcomes.forEach((outcome, i) => {
    if (i > 0) process.stdout.write(`\n--- kernel-suite: the console of ${name(i)} ---\n${held[i]}${held[i]?.endsWith("\n") ? "" : "\n"}`);
    if ("failure" in outcome) {
      console.error(`\nkernel-suite: RIG FAILURE in ${name(i)}: ${outcome.failure}`);
      exit = RIG_FAILURE_EXIT;
      return;
    }
    const { result } = outcome;
    const t = result.timings;
    console.error(
      `\nkernel-suite: ${name(i)}: build ${seconds(t.buildMs)} (base initramfs ${result.baseCached ? "cached" : "rebuilt"}), ` +
        `boot ${seconds(t.bootMs)}, first test output ${seconds(t.firstScriptOutputMs)} after qemu start, ` +
        `suite ${seconds(t.scriptMs)}, total ${seconds(t.totalMs)}; guest bun test exit ${result.exitCode}`,
    );
    if (exit === 0) exit = result.exitCode;
  });
  return exit;
}

if (import.meta.main) process.exit(await main());
