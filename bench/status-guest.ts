/**
 * Runs INSIDE the rig guest (real IPVS kernel, emulated CPU): how long `gorb status` of BENCH_STATUS_SIZE (1000x10)
 * takes with the compiled executable (/usr/bin/gorb, daemon and CLI), next to `ipvsadm -Ln --stats` of the same
 * table in the same guest, with the ratio. Started by bench/run.ts (section `status`, with the executable built on
 * the host) or `npm run bench:status` (bench/status.ts). It prints; it asserts nothing.
 *
 * The daemon restores the table from a state directory written directly (bench/workload.ts), then each command is
 * run BENCH_STATUS_RUNS (5) times after one warm-up, alternating gorb and ipvsadm so drifting load hits both, and the
 * medians are compared. Every run is a whole process (start-up included), its output going to /dev/null. For the
 * breakdown it also prints `gorb --version` (the executable's start alone) and, fetched from this (warm) process,
 * `GET /service?detail=true` as JSON and as the rendered text `gorb status` asks for (the daemon's share).
 */
import { existsSync, rmSync } from "node:fs";
import { GUEST_EXECUTABLE } from "../test/kernel/helpers/executable.ts";
import { DaemonStartError, startBenchDaemon } from "./guest-daemon.ts";
import { duration, median, parseSize, ratioText, sizeText } from "./stats.ts";
import { routesFor, writeStateDir } from "./workload.ts";

const SIZE = parseSize(process.env.BENCH_STATUS_SIZE ?? "1000x10", "BENCH_STATUS_SIZE");
const RUNS = Number(process.env.BENCH_STATUS_RUNS ?? 5);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`BENCH_STATUS_RUNS must be a positive integer, got ${process.env.BENCH_STATUS_RUNS}`);
const IPVSADM = "/usr/sbin/ipvsadm";
const ENV = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", HOME: "/tmp", TMPDIR: "/tmp", NO_COLOR: "1", TERM: "dumb" };
const START_CAP_MS = 300_000;

function line(label: string, value: string): void {
  console.log(`  ${label.padEnd(44)} ${value}`);
}

function sh(cmd: readonly string[]): string {
  const r = Bun.spawnSync([...cmd], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} exited ${r.exitCode}: ${r.stderr.toString().trim()}`);
  return r.stdout.toString();
}

const failures: string[] = [];

/** Wall time of one whole command, output to /dev/null; NaN when it fails (the failure is printed at the end). */
async function timeCommand(argv: readonly string[]): Promise<number> {
  const t0 = performance.now();
  const proc = Bun.spawn([...argv], { env: ENV, stdin: "ignore", stdout: Bun.file("/dev/null"), stderr: "pipe" });
  const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  const ms = performance.now() - t0;
  if (code === 0) return ms;
  failures.push(`${argv.join(" ")} exited ${code} after ${duration(ms)}: ${stderr.trim()}`);
  return Number.NaN;
}

/** The median of the runs that succeeded, and how many failed. */
function figure(xs: readonly number[]): string {
  const okRuns = xs.filter((x) => Number.isFinite(x));
  const failed = xs.length - okRuns.length;
  if (okRuns.length === 0) return `every run FAILED (${failed})`;
  return `${duration(median(okRuns))} (min ${duration(Math.min(...okRuns))}, max ${duration(Math.max(...okRuns))})${failed > 0 ? `, ${failed} FAILED` : ""}`;
}

const okMedian = (xs: readonly number[]): number => median(xs.filter((x) => Number.isFinite(x)));

/** Services + destinations in the kernel table. */
function kernelObjects(): number {
  let n = 0;
  for (const l of sh(["cat", "/proc/net/ip_vs"]).split("\n")) if (/^(TCP|UDP|SCTP|FWM) /.test(l) || /^ {2}-> [0-9A-F[]/.test(l)) n++;
  return n;
}

console.log(`\n=== status: gorb status (compiled) vs ipvsadm -Ln --stats, ${sizeText(SIZE)} (${RUNS} runs each, medians)`);
if (!existsSync(GUEST_EXECUTABLE)) throw new Error(`${GUEST_EXECUTABLE} is missing: bench/run.ts and bench/status.ts build it before the boot`);
for (const r of routesFor(SIZE)) sh(["/usr/sbin/ip", "route", "replace", r, "dev", "lo"]);
sh([IPVSADM, "-C"]);
const stateDir = "/tmp/gorb-bench-status-state";
rmSync(stateDir, { recursive: true, force: true });
await writeStateDir(stateDir, SIZE);

let daemon;
try {
  daemon = await startBenchDaemon(["--state-dir", stateDir, "--reconcile-interval", "0"], START_CAP_MS, [GUEST_EXECUTABLE]);
} catch (error) {
  if (!(error instanceof DaemonStartError)) throw error;
  line("gorb serve FAILED", `${error.message}\n${error.log.slice(-2000)}`);
  process.exit(1);
}
try {
  const want = SIZE.services * (1 + SIZE.backends);
  line("daemon restored the table", `${duration(daemon.firstOkMs)} to the first answer; kernel holds ${kernelObjects()} of ${want} objects`);
  const gorbArgv = [GUEST_EXECUTABLE, "status", "--server", daemon.url];
  const ipvsadmArgv = [IPVSADM, "-Ln", "--stats"];
  // Warm-up, not counted: the daemon's first answers after a restore run its code cold (and on a loaded host can
  // pass the CLI's 15 s request timeout), so they are fetched here without one.
  for (const accept of ["text/plain", "application/json"]) await (await fetch(`${daemon.url}/service?detail=true`, { headers: { accept } })).arrayBuffer();
  await timeCommand(ipvsadmArgv);
  const gorb: number[] = [];
  const ipvsadm: number[] = [];
  const version: number[] = [];
  const get: number[] = [];
  const getText: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    gorb.push(await timeCommand(gorbArgv));
    ipvsadm.push(await timeCommand(ipvsadmArgv));
    version.push(await timeCommand([GUEST_EXECUTABLE, "--version"]));
    const t0 = performance.now();
    const res = await fetch(`${daemon.url}/service?detail=true`, { headers: { accept: "application/json" } });
    await res.arrayBuffer();
    get.push(performance.now() - t0);
    const t1 = performance.now();
    await (await fetch(`${daemon.url}/service?detail=true`, { headers: { accept: "text/plain" } })).arrayBuffer();
    getText.push(performance.now() - t1);
  }
  line("gorb --version (executable start)", figure(version));
  line("GET /service?detail=true, JSON (daemon + transfer)", figure(get));
  line("GET /service, text (the table gorb status prints)", figure(getText));
  line("ipvsadm -Ln --stats (anchor)", figure(ipvsadm));
  line("gorb status", `${figure(gorb)}  ${ratioText(okMedian(gorb), okMedian(ipvsadm))} (target <= 1.0)`);
  for (const f of failures) line("failure", f);
  console.log(`BENCH_STATUS gorb_ms=${okMedian(gorb).toFixed(0)} ipvsadm_ms=${okMedian(ipvsadm).toFixed(0)} ratio=${(okMedian(gorb) / okMedian(ipvsadm)).toFixed(3)}`);
} finally {
  line("daemon stop (SIGTERM)", await daemon.stop());
  sh([IPVSADM, "-C"]);
}
