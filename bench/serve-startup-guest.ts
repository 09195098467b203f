/**
 * Start-up figures inside the rig guest (real IPVS kernel, emulated CPU), run by bench/serve-startup.ts:
 * median wall time of `--version`, and median time from spawning `serve -l 127.0.0.1:<port>` to its first answered
 * `GET /service`, for the compiled executable (/usr/bin/gorb; with the system libnl, then with libnl hidden so it
 * extracts its embedded copy) and for `bun src/main.ts` from source.
 *
 *   bun bench/serve-startup-guest.ts [runs]      (in the guest; default 5)
 *
 * The last line is `SERVE_STARTUP_JSON=<json>` for the host side to read.
 */
import { GUEST_EXECUTABLE, hideLibnl } from "../test/kernel/helpers/executable.ts";

const runs = Number(process.argv[2] ?? 5);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`runs must be a positive integer, got ${process.argv[2]}`);

const ENV = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", HOME: "/tmp", TMPDIR: "/tmp", NO_COLOR: "1", TERM: "dumb" };
const POLL_MS = 10;
const SERVE_TIMEOUT_MS = 120_000;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** One figure: the median and the spread of `runs` measurements, in milliseconds. */
interface Figure {
  readonly label: string;
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly runs: number;
}

function figure(label: string, times: readonly number[]): Figure {
  const f = { label, medianMs: median(times), minMs: Math.min(...times), maxMs: Math.max(...times), runs: times.length };
  console.log(`${label.padEnd(52)} median ${f.medianMs.toFixed(0).padStart(6)} ms  (min ${f.minMs.toFixed(0)}, max ${f.maxMs.toFixed(0)}, ${f.runs} runs)`);
  return f;
}

/** Wall time of one command run to completion; throws when it fails. */
async function timeCommand(argv: readonly string[]): Promise<number> {
  const t0 = performance.now();
  const proc = Bun.spawn([...argv], { env: ENV, stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  const code = await proc.exited;
  const ms = performance.now() - t0;
  if (code !== 0) throw new Error(`${argv.join(" ")} exited ${code}: ${(await new Response(proc.stderr).text()).trim()}`);
  return ms;
}

async function commandFigure(label: string, argv: readonly string[]): Promise<Figure> {
  await timeCommand(argv); // warm-up, not counted
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await timeCommand(argv));
  return figure(label, times);
}

let nextPort = 4700;

/** Spawns `<argv> serve -l 127.0.0.1:<port>` and returns the time to its first answered GET /service. */
async function serveOnce(argv: readonly string[]): Promise<number> {
  const port = nextPort++;
  const t0 = performance.now();
  const proc = Bun.spawn([...argv, "serve", "--no-state", "-l", `127.0.0.1:${port}`], { env: ENV, cwd: "/gorb", stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const output = Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  try {
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`${argv.join(" ")} serve exited ${proc.exitCode}: ${(await output).join("").trim()}`);
      try {
        const response = await fetch(`http://127.0.0.1:${port}/service`, { signal: AbortSignal.timeout(5_000) });
        await response.arrayBuffer();
        if (response.ok) return performance.now() - t0;
      } catch {
        // not listening yet
      }
      if (performance.now() - t0 > SERVE_TIMEOUT_MS) throw new Error(`${argv.join(" ")} serve did not answer within ${SERVE_TIMEOUT_MS} ms`);
      await Bun.sleep(POLL_MS);
    }
  } finally {
    if (proc.exitCode === null) proc.kill("SIGTERM");
    const code = await proc.exited;
    if (code !== 0 && code !== 143) throw new Error(`${argv.join(" ")} serve stopped with exit ${code}: ${(await output).join("").trim()}`);
  }
}

async function serveFigure(label: string, argv: readonly string[]): Promise<Figure> {
  const first = await serveOnce(argv); // warm-up, not counted in the median
  console.log(`${`${label}: first run`.padEnd(52)} ${first.toFixed(0).padStart(13)} ms  (qemu translates code on first use)`);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await serveOnce(argv));
  return figure(label, times);
}

const source = ["/usr/bin/bun", "src/main.ts"];
const figures: Figure[] = [];
console.log(`guest: ${runs} runs each after one warm-up; kernel IPVS table empty`);
figures.push(await commandFigure("gorb --version (compiled)", [GUEST_EXECUTABLE, "--version"]));
figures.push(await commandFigure("bun src/main.ts --version (source)", [...source, "--version"]));
figures.push(await serveFigure("gorb serve -> first answer (compiled, system libnl)", [GUEST_EXECUTABLE]));
const restore = hideLibnl();
try {
  figures.push(await serveFigure("gorb serve -> first answer (compiled, embedded libnl)", [GUEST_EXECUTABLE]));
} finally {
  restore();
}
figures.push(await serveFigure("bun src/main.ts serve -> first answer (source)", source));
console.log(`SERVE_STARTUP_JSON=${JSON.stringify(figures)}`);
