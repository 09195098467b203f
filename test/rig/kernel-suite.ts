/**
 * Runs kernel tests inside the qemu rig: `bun run test/rig/kernel-suite.ts [paths...]` (default: test/kernel).
 *
 * Builds the rig (cached), boots one guest that runs `bun test <paths>` in /gorb, streams the guest console to
 * stdout, prints where the time went, and exits with the guest's `bun test` exit code. When the guest fails to boot
 * or never reports (timeout, crash, setup failure) it prints why and exits 2.
 *
 * When the selected paths include a `compiled*.test.ts` file, dist/gorb is built first and placed at /usr/bin/gorb
 * in the guest, and the Debian package's other files are unpacked under /opt/gorb-deb (test/rig/compiled-exe.ts).
 *
 * Environment: GORB_RIG_TIMEOUT_MS bounds the whole guest run (default 1,200,000 = 20 min);
 * GORB_RIG_TEST_TIMEOUT_MS is bun test's per-test timeout inside the guest (default 180,000: the guest is emulated
 * and runs about 10x slower than the host); GORB_RIG_CPUS, GORB_RIG_VERBOSE=1 (all kernel messages).
 */
import { existsSync } from "node:fs";
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

async function main(): Promise<number> {
  let paths: string[];
  let timeoutMs: number;
  let testTimeoutMs: number;
  try {
    paths = suitePaths(process.argv.slice(2));
    timeoutMs = positiveIntFromEnv("GORB_RIG_TIMEOUT_MS", 1_200_000);
    testTimeoutMs = positiveIntFromEnv("GORB_RIG_TEST_TIMEOUT_MS", 180_000);
  } catch (err) {
    console.error(`kernel-suite: ${err instanceof Error ? err.message : String(err)}`);
    return RIG_FAILURE_EXIT;
  }
  let extraFiles: GuestFile[] = [];
  try {
    if (compiledTests(paths).length > 0) extraFiles = [buildGuestExecutable(), ...buildGuestPackage()];
  } catch (err) {
    console.error(`kernel-suite: RIG FAILURE: cannot build the executable for the compiled tests: ${err instanceof Error ? err.message : String(err)}`);
    return RIG_FAILURE_EXIT;
  }
  const script = `exec /usr/bin/bun test --timeout ${testTimeoutMs} ${paths.map(shellQuote).join(" ")}\n`;
  console.error(`kernel-suite: bun test ${paths.join(" ")} in the qemu rig (guest timeout ${seconds(timeoutMs)})`);

  let result: GuestRunResult;
  try {
    result = await runInGuest({
      script,
      timeoutMs,
      extraFiles,
      onOutput: (chunk) => process.stdout.write(chunk),
      log: (line) => console.error(line),
    });
  } catch (err) {
    if (err instanceof RigError) {
      console.error(`\nkernel-suite: RIG FAILURE: ${err.message}`);
    } else {
      console.error(`\nkernel-suite: RIG FAILURE while building or starting the rig: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
    return RIG_FAILURE_EXIT;
  }
  const t = result.timings;
  console.error(
    `\nkernel-suite: build ${seconds(t.buildMs)} (base initramfs ${result.baseCached ? "cached" : "rebuilt"}), ` +
      `boot ${seconds(t.bootMs)}, first test output ${seconds(t.firstScriptOutputMs)} after qemu start, ` +
      `suite ${seconds(t.scriptMs)}, total ${seconds(t.totalMs)}; guest bun test exit ${result.exitCode}`,
  );
  return result.exitCode;
}

process.exit(await main());
