/**
 * Runs INSIDE the rig guest (real IPVS kernel, emulated CPU): gorb's daemon-level figures for issue 14, each next
 * to an anchor measured in the same run, with the ratio. Started by bench/run.ts (`npm run bench`) after
 * bench/ipvs-apply-guest.ts. It prints; it asserts nothing (a failure of gorb is reported as a figure).
 *
 *  1. apply    `gorb apply -f` (the CLI against a running `gorb serve --state-dir`) of BENCH_APPLY_SIZE
 *              (1000x10) vs `ipvsadm -R` of the same rules, in BENCH_APPLY_ROUNDS (3) rounds: `ipvsadm -R` runs
 *              before the first and after each (kernel flushed between), a round's anchor is the mean of the runs
 *              either side of it, and the figure is the median of the rounds' ratios. Each round's apply is a
 *              fresh daemon's first, right after its first answer. If the CLI fails, the time until the kernel
 *              held everything is used. The first round's daemon applies the file once more (its JIT warm); then
 *              a fresh daemon left to settle first applies it (settledApply). Then the same file through
 *              bench/floor-client.ts and bench/floor-server.ts (read, POST, one driver batch, one transaction of
 *              rows, a printed report): the floor any apply reaches in this guest.
 *  2. rest     BENCH_REST_SIZE (200x10): one PUT per service and per backend, sequential, no Content-Type (as GORB
 *              clients send them) vs as many sequential GET /service on the same daemon; then the same requests
 *              against bench/floor-server.ts (a bare server that only writes the kernel and a durable row), the
 *              floor any PUT path reaches in this guest.
 *  3. latency  GET /service every BENCH_LATENCY_INTERVAL_MS (10) ms: p99 while a POST /apply of BENCH_APPLY_SIZE
 *              runs vs p99 of the same loop on the idle daemon for BENCH_LATENCY_IDLE_S (5) s.
 *  4. restore  `gorb serve` on a state directory holding each of BENCH_RESTORE_SIZES (1x1250,1x2500,1x5000,
 *              1x10000,1x20000,1000x10) with the kernel already holding the rules, and each of BENCH_RESTORE_EMPTY
 *              (1x20000,1000x10) with an empty kernel: time from spawn to the first answered GET /service, per
 *              backend above the start-up of an empty state, and the daemon's restore log line. Each start is capped
 *              at BENCH_RESTORE_CAP_S (90) s; a 1xN size that hits the cap skips the larger 1xM ones.
 *
 * BENCH_SECTIONS (apply,rest,latency,restore) picks sections. Every daemon runs with a fresh state directory and
 * --reconcile-interval 0 (no periodic reconcile in the middle of a measurement), as the single executable users
 * install (/usr/bin/gorb, built by bench/run.ts), the daemon and the CLI alike; BENCH_GORB=source runs the sources
 * with bun instead. Under the apply and the REST figures it prints the CPU each kind of the daemon's threads used
 * (./threads.ts).
 */
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { GUEST_EXECUTABLE } from "../test/kernel/helpers/executable.ts";
import { DaemonStartError, type BenchDaemon, logLines, startBenchDaemon } from "./guest-daemon.ts";
import { processTicks, threadCpu, threadCpuText, waitForQuiet } from "./threads.ts";
import { type Size, duration, parseSize, parseSizes, percentile, median, ratioText, sizeText, verdict } from "./stats.ts";
import { applyFile, backendBody, backendId, ipvsadmRules, routesFor, serviceBody, serviceId, writeStateDir } from "./workload.ts";

const MAIN = join(import.meta.dir, "..", "src", "main.ts");
const env = process.env;
if (env.BENCH_GORB !== undefined && env.BENCH_GORB !== "compiled" && env.BENCH_GORB !== "source") {
  throw new Error(`BENCH_GORB must be compiled or source, got ${JSON.stringify(env.BENCH_GORB)}`);
}
/** The gorb command line the daemons and the CLI run with. */
const GORB: readonly string[] = env.BENCH_GORB === "source" ? [process.execPath, MAIN] : [GUEST_EXECUTABLE];
const num = (name: string, fallback: number): number => {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return n;
};

const APPLY_SIZE = parseSize(env.BENCH_APPLY_SIZE ?? "1000x10", "BENCH_APPLY_SIZE");
const APPLY_ROUNDS = num("BENCH_APPLY_ROUNDS", 3);
if (!Number.isInteger(APPLY_ROUNDS)) throw new Error(`BENCH_APPLY_ROUNDS must be a whole number, got ${APPLY_ROUNDS}`);
const REST_SIZE = parseSize(env.BENCH_REST_SIZE ?? "200x10", "BENCH_REST_SIZE");
const RESTORE_HELD = parseSizes(env.BENCH_RESTORE_SIZES ?? "1x1250,1x2500,1x5000,1x10000,1x20000,1000x10", "BENCH_RESTORE_SIZES");
const RESTORE_EMPTY = parseSizes(env.BENCH_RESTORE_EMPTY ?? "1x20000,1000x10", "BENCH_RESTORE_EMPTY");
const RESTORE_CAP_MS = num("BENCH_RESTORE_CAP_S", 90) * 1000;
const IDLE_MS = num("BENCH_LATENCY_IDLE_S", 5) * 1000;
const INTERVAL_MS = num("BENCH_LATENCY_INTERVAL_MS", 10);
/** How long to wait for the daemon to finish an apply the CLI gave up on. */
const WAIT_CAP_MS = num("BENCH_WAIT_CAP_S", 300) * 1000;
const SECTIONS = new Set((env.BENCH_SECTIONS ?? "apply,rest,latency,restore").split(",").map((s) => s.trim()));
const DAEMON_START_CAP_MS = 120_000;
const IPVSADM = "/usr/sbin/ipvsadm";

/** One line of the closing summary. */
interface Row {
  readonly what: string;
  readonly gorb: string;
  readonly anchor: string;
  readonly ratio: string;
  readonly verdict: string;
}
const summary: Row[] = [];
const notes: string[] = [];

function sh(cmd: readonly string[], stdin?: string): string {
  const r = Bun.spawnSync([...cmd], { stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin), stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} exited ${r.exitCode}: ${r.stderr.toString().trim()}`);
  return r.stdout.toString();
}

function timed<T>(fn: () => T): { ms: number; value: T } {
  const t0 = performance.now();
  const value = fn();
  return { ms: performance.now() - t0, value };
}

/** Services + destinations in the kernel table (/proc/net/ip_vs is cheaper to read than `ipvsadm -Ln`). */
function kernelObjects(): number {
  const text = sh(["cat", "/proc/net/ip_vs"]);
  let n = 0;
  for (const line of text.split("\n")) if (/^(TCP|UDP|SCTP|FWM) /.test(line) || /^ {2}-> [0-9A-F[]/.test(line)) n++;
  return n;
}

const objects = (s: Size): number => s.services * (1 + s.backends);

function routes(size: Size): void {
  for (const r of routesFor(size)) sh(["/usr/sbin/ip", "route", "replace", r, "dev", "lo"]);
}

function flushKernel(): void {
  sh([IPVSADM, "-C"]);
}

let reloadBroken: string | null = null;

/**
 * An empty IPVS with nothing in its destination trash, before each measured fill: the kernel keeps deleted
 * destinations in a trash list for 2-3 minutes and every add scans that list, so filling right after flushing the
 * same rules costs several times more (measured here: `ipvsadm -R` of 1,000 x 10 took 60-107 s after a flush, 12 s
 * on a fresh table). Flushes, then unloads and reloads ip_vs and its schedulers (which empties the trash), and sets
 * the sysctl init.sh sets. If the reload fails, says so once and only flushes from then on.
 */
function freshIpvs(): void {
  flushKernel();
  if (reloadBroken !== null) return;
  const loaded = sh(["cat", "/proc/modules"])
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((m) => m.startsWith("ip_vs_"));
  try {
    sh(["rmmod", ...loaded]);
    sh(["rmmod", "ip_vs"]);
    for (const m of ["ip_vs", ...loaded]) sh(["modprobe", m]);
    sh(["sysctl", "-w", "net.ipv4.vs.conntrack=1"]);
  } catch (error) {
    reloadBroken = error instanceof Error ? error.message : String(error);
    for (const m of ["ip_vs", ...loaded]) Bun.spawnSync(["modprobe", m]);
    notes.push(`could not reload ip_vs for an empty destination trash (${reloadBroken}); later fills may include the kernel's trash scans`);
  }
}

let stateDirs = 0;
function freshStateDir(): string {
  const dir = `/tmp/gorb-bench-state-${stateDirs++}`;
  rmSync(dir, { recursive: true, force: true });
  return dir;
}

function daemonFlags(stateDir: string): string[] {
  return ["--state-dir", stateDir, "--reconcile-interval", "0"];
}

function section(title: string): void {
  console.log(`\n=== ${title}`);
}

function line(label: string, value: string): void {
  console.log(`  ${label.padEnd(44)} ${value}`);
}

async function stopDaemon(d: BenchDaemon): Promise<void> {
  line("daemon stop (SIGTERM)", await d.stop());
}

/** Polls the kernel table until it holds `want` objects; the time it took, or NaN after `capMs`. */
async function waitForKernel(want: number, t0: number, capMs: number): Promise<number> {
  for (;;) {
    if (kernelObjects() >= want) return performance.now() - t0;
    if (performance.now() - t0 > capMs) return Number.NaN;
    await Bun.sleep(250);
  }
}

// ---- 1. gorb apply -f vs ipvsadm -R ----

async function benchApply(size: Size): Promise<void> {
  const total = objects(size);
  section(`1. gorb apply -f vs ipvsadm -R: ${sizeText(size)} = ${total.toLocaleString("en-US")} objects (pulse none), ${APPLY_ROUNDS} round${APPLY_ROUNDS === 1 ? "" : "s"}`);
  routes(size);
  const rules = ipvsadmRules(size);
  /** `ipvsadm -R` on a flushed kernel; run before, between and after gorb's rounds, so drifting load hits both sides alike. */
  const anchorRun = (when: string): number => {
    freshIpvs();
    const ms = timed(() => sh([IPVSADM, "-R"], rules)).ms;
    const held = kernelObjects();
    line(`ipvsadm -R (${when})`, `${duration(ms)}${held === total ? "" : `  (kernel holds ${held}, expected ${total})`}`);
    flushKernel();
    return ms;
  };
  const file = "/tmp/gorb-bench-apply.json";
  writeFileSync(file, applyFile(size));
  // Each round: a fresh daemon's first apply, then `ipvsadm -R` again; the round's anchor is the mean of the runs on
  // either side of it. The anchor alone moves by up to 2x within one boot of this emulated guest, so one pair says
  // little: the figure is the median of the rounds' ratios, as in bench/ipvs-apply-guest.ts.
  const anchors = [anchorRun("before gorb")];
  const rounds: { code: number | string; ms: number; text: string; anchor: number }[] = [];
  let warm: number | null = null;
  for (let r = 1; r <= APPLY_ROUNDS; r++) {
    freshIpvs();
    const daemon = await startBenchDaemon(daemonFlags(freshStateDir()), DAEMON_START_CAP_MS, GORB);
    const first = await cliApply(APPLY_ROUNDS === 1 ? "gorb apply -f" : `gorb apply -f (round ${r})`, daemon, file, total);
    // The first round's daemon also applies the file a second time, its JIT warm.
    if (r === 1 && first.code === 0) warm = await warmApply(daemon.url, file, total);
    await stopDaemon(daemon);
    anchors.push(anchorRun(r === APPLY_ROUNDS ? "after gorb" : `after round ${r}`));
    rounds.push({ ...first, anchor: ((anchors[r - 1] as number) + (anchors[r] as number)) / 2 });
  }
  const anchor = anchors.reduce((a, b) => a + b, 0) / anchors.length;
  const settled = await settledApply(file, total);
  const floor = await applyFloor(file, total);
  for (const [i, round] of rounds.entries()) {
    line(`round ${i + 1}: gorb / mean of the ipvsadm -R either side`, ratioText(round.ms, round.anchor));
  }
  const ratios = rounds.map((round) => round.ms / round.anchor);
  const ratio = median(ratios);
  const failed = rounds.filter((round) => round.code !== 0).length;
  if (APPLY_ROUNDS > 1) {
    line("gorb / ipvsadm -R: median of the rounds", `${ratio.toFixed(3)} (rounds ${ratios.map((x) => x.toFixed(3)).join(", ")})`);
  }
  if (warm !== null) line("the second apply (same daemon) / mean of all ipvsadm -R", ratioText(warm, anchor));
  line("the first apply on a settled daemon / mean of all ipvsadm -R", ratioText(settled.ms, anchor));
  line("floor / mean of all ipvsadm -R", floor.text === "" ? ratioText(floor.ms, anchor) : floor.text);
  const gorbMs = median(rounds.map((round) => round.ms));
  if (floor.text === "") line("gorb (median round) / the floor", ratioText(gorbMs, floor.ms));
  summary.push({
    what: `apply -f ${sizeText(size)}${APPLY_ROUNDS === 1 ? "" : `, median of ${APPLY_ROUNDS} rounds`}`,
    gorb: rounds.map((round) => round.text).join(", "),
    anchor: `ipvsadm -R ${anchors.map(duration).join(", ")}`,
    ratio: `${ratio.toFixed(3)}${APPLY_ROUNDS === 1 ? "" : ` (${ratios.map((x) => x.toFixed(3)).join(", ")})`}`,
    verdict: failed === 0 ? verdict(ratio, 1.0, 0.5) : `CLI FAILED in ${failed} of ${APPLY_ROUNDS} rounds`,
  });
  summary.push({
    what: `apply -f ${sizeText(size)}, daemon settled first`,
    gorb: settled.text,
    anchor: `ipvsadm -R ${duration(anchor)} (mean)`,
    ratio: ratioText(settled.ms, anchor),
    verdict: settled.code === 0 ? verdict(settled.ms / anchor, 1.0, 0.5) : "CLI FAILED",
  });
  summary.push({
    what: `apply floor, a bare client and server (not gorb)`,
    gorb: floor.text === "" ? duration(floor.ms) : "FAILED",
    anchor: `ipvsadm -R ${duration(anchor)} (mean)`,
    ratio: floor.text === "" ? ratioText(floor.ms, anchor) : "",
    verdict: floor.text === "" ? "no target" : floor.text,
  });
}

/**
 * `gorb apply -f file` against `daemon` (the caller freshens ip_vs), timed from the CLI's spawn to its exit, with the CPU the
 * daemon's threads and the CLI used printed under it. If the CLI fails, the time until the kernel held everything
 * (NaN if it never did). `text` is the figure for the summary.
 */
async function cliApply(label: string, daemon: BenchDaemon, file: string, total: number): Promise<{ code: number | string; ms: number; text: string }> {
  const cpu0 = threadCpu(daemon.pid);
  const t0 = performance.now();
  const cli = Bun.spawn([...GORB, "apply", "-f", file, "--server", daemon.url], {
    stdin: "ignore",
    stdout: Bun.file("/tmp/gorb-bench-apply.out"),
    stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1" },
  });
  const killer = setTimeout(() => cli.kill("SIGKILL"), WAIT_CAP_MS);
  const stderr = await new Response(cli.stderr).text();
  const exit = await cli.exited;
  clearTimeout(killer);
  const code = cli.signalCode === null ? exit : `${cli.signalCode} (killed at the ${duration(WAIT_CAP_MS)} cap)`;
  const cliMs = performance.now() - t0;
  const cpuText = threadCpuText(cpu0, threadCpu(daemon.pid));
  const usage = cli.resourceUsage();
  const stderrLines = stderr.trim().split("\n").filter((l) => l !== "");
  const lastLine = stderrLines[stderrLines.length - 1] ?? "(nothing on stderr)";
  if (code === 0) {
    const inKernel = kernelObjects();
    line(`${label} (CLI exit 0)`, `${duration(cliMs)}${inKernel === total ? "" : `  (kernel holds ${inKernel}, expected ${total})`}`);
    if (stderrLines.length > 0) line(`  CLI stderr (${stderrLines.length} progress lines), last`, lastLine);
    // Two emulated CPUs: the daemon's compiler and collector threads compete with its JavaScript thread and the CLI.
    line("  CPU: the daemon's threads", cpuText);
    if (usage !== undefined) line("  CPU: the CLI", `${Math.round(Number(usage.cpuTime.user + usage.cpuTime.system) / 1000).toLocaleString("en-US")} ms`);
    return { code, ms: cliMs, text: duration(cliMs) };
  }
  line(`${label} FAILED (CLI exit ${code})`, `after ${duration(cliMs)}: ${lastLine}`);
  const ms = await waitForKernel(total, t0, WAIT_CAP_MS);
  const daemonText = Number.isFinite(ms)
    ? `kernel held all ${total} objects ${duration(ms)} after the CLI started`
    : `kernel held ${kernelObjects()} of ${total} objects after ${duration(WAIT_CAP_MS)} (gave up waiting)`;
  line("  the daemon went on", daemonText);
  notes.push(`${label}: the CLI exited ${code} after ${duration(cliMs)} ("${lastLine}"); ${daemonText}; the ratio uses that time.`);
  return { code, ms, text: `CLI FAILED (exit ${code}) at ${duration(cliMs)}; kernel complete at ${duration(ms)}` };
}

/** How quiet a fresh daemon must be before settledApply's apply: at most this % of a CPU over a step of that many s. */
const QUIET = { stepS: 2, percent: 2, maxS: 60 };

/**
 * The first apply of a fresh daemon that was first left to finish starting: its threads together at most
 * QUIET.percent of a CPU over QUIET.stepS s (under emulation a fresh daemon goes on compiling for seconds after
 * its first answer). The apply right after the first answer pays for the end of the start-up too; a daemon
 * started at boot and given a file later does not. Both are printed.
 */
async function settledApply(file: string, total: number): Promise<{ code: number | string; ms: number; text: string }> {
  freshIpvs();
  const daemon = await startBenchDaemon(daemonFlags(freshStateDir()), DAEMON_START_CAP_MS, GORB);
  try {
    const quiet = await waitForQuiet(() => processTicks(daemon.pid), QUIET);
    line(
      "a second fresh daemon, left to settle",
      `${quiet.seconds} s after its first answer, at ${quiet.lastPercent.toFixed(1)}% of a CPU${quiet.lastPercent > QUIET.percent ? " (still busy: stopped waiting)" : ""}`,
    );
    return await cliApply("its first apply", daemon, file, total);
  } finally {
    await stopDaemon(daemon);
  }
}

/**
 * The same apply once more on the same daemon, its JIT warm: the set deleted through gorb (an empty set applied),
 * ip_vs reloaded (an empty destination trash, as for the first), then the file applied again. A fresh daemon's
 * first apply compiles its code while it runs; this one shows what an apply costs a daemon that has run one.
 * Printed beside the first, which is the figure. NaN when a step failed.
 */
async function warmApply(url: string, file: string, total: number): Promise<number> {
  const empty = "/tmp/gorb-bench-empty.json";
  writeFileSync(empty, JSON.stringify({ services: {} }));
  const run = async (f: string): Promise<{ code: number; ms: number }> => {
    const t0 = performance.now();
    const cli = Bun.spawn([...GORB, "apply", "-f", f, "--server", url], { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
    const killer = setTimeout(() => cli.kill("SIGKILL"), WAIT_CAP_MS);
    const code = await cli.exited;
    clearTimeout(killer);
    return { code, ms: performance.now() - t0 };
  };
  const deleted = await run(empty);
  line("  the set deleted through gorb (an empty set applied)", `${duration(deleted.ms)} (CLI exit ${deleted.code})`);
  freshIpvs();
  const again = await run(file);
  const held = kernelObjects();
  const ok = deleted.code === 0 && again.code === 0 && held === total;
  line("the second apply on the same daemon", `${duration(again.ms)} (CLI exit ${again.code}${held === total ? "" : `; kernel holds ${held}, expected ${total}`})`);
  return ok ? again.ms : Number.NaN;
}

/**
 * The apply file through bench/floor-client.ts against bench/floor-server.ts: the least an apply must do (read the
 * file, send it, one driver batch, one durable transaction of rows, a report printed) with no checks and no plan.
 * Its time from the client's spawn to its exit, and text saying why when it failed (else "").
 */
async function applyFloor(file: string, total: number): Promise<{ ms: number; text: string }> {
  freshIpvs();
  const floor = await startFloor();
  try {
    const t0 = performance.now();
    const client = Bun.spawn([process.execPath, join(import.meta.dir, "floor-client.ts"), file, floor.url], {
      stdin: "ignore",
      stdout: Bun.file("/tmp/gorb-bench-floor-apply.out"),
      stderr: "pipe",
    });
    const stderr = await new Response(client.stderr).text();
    const exit = await client.exited;
    const ms = performance.now() - t0;
    const held = kernelObjects();
    line(`floor: bare client and server (exit ${exit})`, `${duration(ms)}${held === total ? "" : `  (kernel holds ${held}, expected ${total})`}`);
    if (exit !== 0 || held !== total) return { ms, text: `FAILED: exit ${exit}, kernel holds ${held} of ${total}; ${stderr.trim().split("\n").at(-1) ?? ""}` };
    return { ms, text: "" };
  } finally {
    await floor.stop();
  }
}

// ---- 2. REST PUTs vs GETs ----

const encoder = new TextEncoder();

/** One request, body as bytes so fetch adds no Content-Type (Go's http.NewRequest sends none either). */
async function call(method: string, url: string, body?: unknown): Promise<number> {
  const response = await fetch(url, { method, ...(body === undefined ? {} : { body: encoder.encode(JSON.stringify(body)) }) });
  await response.arrayBuffer();
  return response.status;
}

/** The PUTs and GETs of section 2 against `url`, interleaved per service; each round trip's time. */
async function restRequests(url: string, size: Size): Promise<{ puts: number[]; gets: number[]; failed: number; firstFailure: string }> {
  const out = { puts: [] as number[], gets: [] as number[], failed: 0, firstFailure: "" };
  const timedCall = async (into: number[], method: string, target: string, body?: unknown): Promise<void> => {
    const t0 = performance.now();
    const status = await call(method, target, body);
    into.push(performance.now() - t0);
    if (status >= 300 && out.failed++ === 0) out.firstFailure = `${method} ${target}: HTTP ${status}`;
  };
  // Interleaved per service (its PUTs, then as many GETs), so both see the same load on a shared machine.
  for (let i = 0; i < size.services; i++) {
    const service = `${url}/service/${serviceId(i)}`;
    await timedCall(out.puts, "PUT", service, serviceBody(i));
    for (let j = 0; j < size.backends; j++) await timedCall(out.puts, "PUT", `${service}/${backendId(j)}`, backendBody(size, i, j));
    for (let k = 0; k <= size.backends; k++) await timedCall(out.gets, "GET", `${url}/service`);
  }
  return out;
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

/** bench/floor-server.ts on a fresh state directory, once it listens; stop() kills it and flushes the kernel. */
async function startFloor(): Promise<{ url: string; stop(): Promise<void> }> {
  const port = 4790;
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, "floor-server.ts"), String(port), freshStateDir()], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: Bun.file("/tmp/gorb-bench-floor.err"),
  });
  const reader = proc.stdout.getReader();
  const first = await reader.read();
  reader.releaseLock();
  const stop = async (): Promise<void> => {
    proc.kill();
    await proc.exited;
    flushKernel();
  };
  if (first.done === true) {
    await stop();
    throw new Error(`the floor server exited (${proc.exitCode}) before listening`);
  }
  return { url: `http://127.0.0.1:${port}`, stop };
}

/**
 * The same requests against bench/floor-server.ts: the least a PUT must do (the body read, one kernel write through
 * gorb's driver, one durable SQLite row) with no framework and no checks, against its own GET.
 */
async function restFloor(size: Size): Promise<{ putMs: number; getMs: number; failed: number }> {
  freshIpvs();
  const floor = await startFloor();
  try {
    const r = await restRequests(floor.url, size);
    return { putMs: sum(r.puts), getMs: sum(r.gets), failed: r.failed };
  } finally {
    await floor.stop();
  }
}

async function benchRest(size: Size): Promise<void> {
  const requests = size.services * (1 + size.backends);
  section(`2. REST: ${requests.toLocaleString("en-US")} sequential PUTs (${sizeText(size)}, one object each, no Content-Type) vs as many GET /service`);
  routes(size);
  freshIpvs();
  const daemon = await startBenchDaemon(daemonFlags(freshStateDir()), DAEMON_START_CAP_MS, GORB);
  const cpu0 = threadCpu(daemon.pid);
  const { puts, gets, failed, firstFailure } = await restRequests(daemon.url, size);
  const cpuText = threadCpuText(cpu0, threadCpu(daemon.pid));
  const putMs = sum(puts);
  const getMs = sum(gets);
  line(`${requests} x GET /service`, `${duration(getMs)}  (median ${duration(median(gets))}, p99 ${duration(percentile(gets, 99))})`);
  line(`${requests} x PUT`, `${duration(putMs)}  (median ${duration(median(puts))}, p99 ${duration(percentile(puts, 99))})  ${ratioText(putMs, getMs)}`);
  line("median PUT / median GET", ratioText(median(puts), median(gets)));
  // The daemon's JIT compiles the PUT path all through a fresh daemon's first requests under emulation: the second
  // half of the requests shows the cost with more of it compiled (printed; the ratio above is the figure).
  const half = (xs: readonly number[]) => xs.slice(Math.floor(xs.length / 2));
  line("second half of the requests, PUT / GET", `${duration(sum(half(puts)))} / ${duration(sum(half(gets)))}  ${ratioText(sum(half(puts)), sum(half(gets)))}`);
  line("CPU: the daemon's threads, PUTs and GETs", cpuText);
  if (failed > 0) line("FAILED requests", `${failed}, first: ${firstFailure}`);
  const inKernel = kernelObjects();
  if (inKernel !== requests) line("kernel objects after the PUTs", `${inKernel} (expected ${requests})`);
  summary.push({
    what: `REST ${requests} PUT`,
    gorb: duration(putMs),
    anchor: `${requests} GET ${duration(getMs)}`,
    ratio: ratioText(putMs, getMs),
    verdict: failed > 0 ? `${failed} FAILED` : verdict(putMs / getMs, 2.0, 1.5),
  });
  await stopDaemon(daemon);
  flushKernel();
  // What the target leaves to gorb: the floor's PUTs against gorb's GETs is the best any PUT that writes the kernel
  // and a durable row could reach in this guest.
  const floor = await restFloor(size);
  line("floor server: PUT / its own GET", `${duration(floor.putMs)} / ${duration(floor.getMs)}  ${ratioText(floor.putMs, floor.getMs)}${floor.failed > 0 ? `  (${floor.failed} FAILED)` : ""}`);
  line("floor server's PUTs / gorb's GETs", ratioText(floor.putMs, getMs));
  line("gorb's PUTs / the floor server's PUTs", ratioText(putMs, floor.putMs));
  summary.push({
    what: `REST floor, a bare server (not gorb): ${requests} PUT`,
    gorb: duration(floor.putMs),
    anchor: `gorb's ${requests} GET ${duration(getMs)}`,
    ratio: ratioText(floor.putMs, getMs),
    verdict: floor.failed > 0 ? `${floor.failed} FAILED` : `no target; its own GETs ${duration(floor.getMs)}`,
  });
}

// ---- 3. API latency during an apply ----

interface Samples {
  readonly ms: number[];
  errors: number;
}

/** GET /service every INTERVAL_MS (back to back when one takes longer) until `done()`; each round trip's time. */
async function latencyLoop(url: string, done: () => boolean): Promise<Samples> {
  const out: Samples = { ms: [], errors: 0 };
  let next = performance.now();
  while (!done()) {
    const t0 = performance.now();
    try {
      const response = await fetch(`${url}/service`);
      await response.arrayBuffer();
      if (!response.ok) out.errors++;
    } catch {
      out.errors++;
    }
    out.ms.push(performance.now() - t0);
    next += INTERVAL_MS;
    const wait = next - performance.now();
    if (wait > 0) await Bun.sleep(wait);
    else next = performance.now();
  }
  return out;
}

function latencyText(s: Samples): string {
  const errors = s.errors > 0 ? `, ${s.errors} errors` : "";
  return `p50 ${duration(median(s.ms))}  p99 ${duration(percentile(s.ms, 99))}  max ${duration(Math.max(...s.ms))}  (${s.ms.length} requests${errors})`;
}

async function benchLatency(size: Size): Promise<void> {
  section(`3. API latency: GET /service every ${INTERVAL_MS} ms, idle for ${duration(IDLE_MS)} vs during POST /apply of ${sizeText(size)}`);
  routes(size);
  freshIpvs();
  const daemon = await startBenchDaemon(daemonFlags(freshStateDir()), DAEMON_START_CAP_MS, GORB);
  const i0 = performance.now();
  const idle = await latencyLoop(daemon.url, () => performance.now() - i0 >= IDLE_MS);
  line("idle daemon", latencyText(idle));

  let settled = false;
  const a0 = performance.now();
  const apply = fetch(`${daemon.url}/apply`, { method: "POST", headers: { "content-type": "application/json" }, body: applyFile(size), timeout: false })
    .then(async (r) => `HTTP ${r.status} (${(await r.text()).length} bytes)`)
    .catch((e: unknown) => `request failed: ${e instanceof Error ? e.message : String(e)}`)
    .finally(() => {
      settled = true;
    });
  const busy = await latencyLoop(daemon.url, () => settled);
  const applyMs = performance.now() - a0;
  line("during the apply", latencyText(busy));
  line("the apply (POST /apply, no client timeout)", `${await apply} in ${duration(applyMs)}`);
  const p99Idle = percentile(idle.ms, 99);
  const p99Busy = percentile(busy.ms, 99);
  line("p99 during apply / p99 idle", ratioText(p99Busy, p99Idle));
  summary.push({
    what: `GET p99 during apply ${sizeText(size)}`,
    gorb: duration(p99Busy),
    anchor: `idle p99 ${duration(p99Idle)}`,
    ratio: ratioText(p99Busy, p99Idle),
    verdict: `max ${duration(Math.max(...busy.ms))}; apply ${duration(applyMs)}`,
  });
  await stopDaemon(daemon);
  flushKernel();
}

// ---- 4. restore at start ----

interface RestoreCase {
  readonly size: Size;
  readonly held: boolean;
}

async function restoreOnce(c: RestoreCase | null): Promise<{ ms: number; text: string; capped: boolean }> {
  freshIpvs();
  const dir = freshStateDir();
  if (c !== null) {
    routes(c.size);
    if (c.held) sh([IPVSADM, "-R"], ipvsadmRules(c.size));
  }
  await writeStateDir(dir, c?.size ?? { services: 0, backends: 0 });
  try {
    const daemon = await startBenchDaemon(daemonFlags(dir), c === null ? DAEMON_START_CAP_MS : RESTORE_CAP_MS, GORB);
    const restored = logLines(daemon.log(), /restored \d+ service/);
    const stop = await daemon.stop();
    return { ms: daemon.firstOkMs, text: `${restored[0]?.replace(/^.*?(restored)/, "$1") ?? "(no restore line)"}; stop: ${stop}`, capped: false };
  } catch (error) {
    if (!(error instanceof DaemonStartError)) throw error;
    const state = logLines(error.log, /state: /)[0]?.replace(/^.*?(state: )/, "$1") ?? "";
    const tail = error.capped ? "" : `\n${error.log.trim().split("\n").slice(-8).join("\n")}`;
    return { ms: Number.NaN, text: `${error.message}${state ? `; last said: ${state}` : ""}${tail}`, capped: error.capped };
  } finally {
    flushKernel();
  }
}

async function benchRestore(): Promise<void> {
  section(`4. restore at start: spawn -> first answered GET /service, state directory prepared, cap ${duration(RESTORE_CAP_MS)} each`);
  // The start-up of an empty state directory, best of two (the first start after a while may be slower).
  const bases = [await restoreOnce(null), await restoreOnce(null)];
  const base = bases.reduce((a, b) => (Number.isFinite(b.ms) && !(b.ms >= a.ms) ? b : a));
  line("empty state, empty kernel (baseline)", Number.isFinite(base.ms) ? duration(base.ms) : `FAILED: ${base.text}`);
  const cases: RestoreCase[] = [...RESTORE_HELD.map((size) => ({ size, held: true })), ...RESTORE_EMPTY.map((size) => ({ size, held: false }))];
  /** Smallest backends-per-service of a one-service size that hit the cap. */
  let cappedAt = Number.POSITIVE_INFINITY;
  const perBackend: string[] = [];
  for (const c of cases) {
    const label = `${sizeText(c.size)}, ${c.held ? "kernel holds them" : "empty kernel"}`;
    if (c.size.services === 1 && c.size.backends >= cappedAt) {
      line(label, `skipped: 1 x ${cappedAt} already hit the cap`);
      summary.push({ what: `restore ${label}`, gorb: "skipped", anchor: "", ratio: "", verdict: `1 x ${cappedAt} hit the cap` });
      continue;
    }
    const r = await restoreOnce(c);
    if (!Number.isFinite(r.ms) && !r.capped) {
      line(label, `FAILED: ${r.text}`);
      summary.push({ what: `restore ${label}`, gorb: "FAILED", anchor: "", ratio: "", verdict: r.text.split("\n")[0] ?? "" });
      continue;
    }
    if (r.capped) {
      if (c.size.services === 1) cappedAt = Math.min(cappedAt, c.size.backends);
      line(label, r.text);
      summary.push({ what: `restore ${label}`, gorb: `> ${duration(RESTORE_CAP_MS)}`, anchor: `baseline ${duration(base.ms)}`, ratio: "", verdict: "CAPPED" });
      continue;
    }
    const backends = c.size.services * c.size.backends;
    const per = (r.ms - base.ms) / backends;
    line(label, `${duration(r.ms)}  (${per.toFixed(3)} ms per backend above the baseline)`);
    line("  log", r.text);
    if (c.held && c.size.services === 1) perBackend.push(`1 x ${backends}: ${per.toFixed(3)} ms`);
    summary.push({ what: `restore ${label}`, gorb: duration(r.ms), anchor: `baseline ${duration(base.ms)}`, ratio: `${per.toFixed(3)} ms/backend`, verdict: "" });
  }
  if (perBackend.length > 1) line("linear check (per backend, kernel holds them)", `${perBackend.join(", ")} (flat = linear)`);
}

// ---- main ----

console.log(
  `\ngorb benchmarks (issue 14) in the rig guest, gorb ${GORB.join(" ")}; sections ${[...SECTIONS].join(",")}; apply ${sizeText(APPLY_SIZE)}, REST ${sizeText(REST_SIZE)}, ` +
    `restore held [${RESTORE_HELD.map(sizeText).join("; ")}] empty [${RESTORE_EMPTY.map(sizeText).join("; ")}]`,
);
const started = performance.now();
const run = async (name: string, fn: () => Promise<void>): Promise<void> => {
  if (!SECTIONS.has(name)) return;
  const t0 = performance.now();
  try {
    await fn();
  } catch (error) {
    const text = error instanceof DaemonStartError ? `${error.message}\n${error.log.split("\n").slice(-15).join("\n")}` : error instanceof Error ? (error.stack ?? error.message) : String(error);
    console.log(`  SECTION ${name} FAILED: ${text}`);
    summary.push({ what: name, gorb: "section failed", anchor: "", ratio: "", verdict: text.split("\n")[0] ?? "" });
  }
  console.log(`  (section ${name}: ${duration(performance.now() - t0)} of guest time)`);
};
await run("apply", () => benchApply(APPLY_SIZE));
await run("latency", () => benchLatency(APPLY_SIZE));
await run("rest", () => benchRest(REST_SIZE));
await run("restore", () => benchRestore());

const widths = [0, 0, 0, 0].map((_, k) => Math.max(...summary.map((r) => [r.what, r.gorb, r.anchor, r.ratio][k]?.length ?? 0)));
console.log(`\nSUMMARY (gorb | anchor measured in this run | ratio | against the issue's target) - ${duration(performance.now() - started)} of guest time`);
for (const r of summary) {
  const cells = [r.what, r.gorb, r.anchor, r.ratio].map((c, k) => c.padEnd(widths[k] ?? 0));
  console.log(`  ${cells.join("  |  ")}  |  ${r.verdict}`);
}
for (const n of notes) console.log(`  note: ${n}`);
