/**
 * `gorb serve` (from source) as the benchmarks run it inside the rig guest: its stdout and stderr go to files
 * under /tmp (a daemon that logs a line per backend must not be slowed by a pipe nobody reads), and starting it
 * measures the time from spawn to the first answered `GET /service`, with a cap after which it is killed.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

const MAIN = join(import.meta.dir, "..", "src", "main.ts");
const POLL_MS = 20;

/** A running daemon. */
export interface BenchDaemon {
  readonly url: string;
  readonly pid: number;
  /** Milliseconds from spawn to the first answer of GET /service (any status), and to the first 200. */
  readonly firstAnswerMs: number;
  readonly firstOkMs: number;
  /** Both log files, stdout then stderr. */
  log(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with how it ended. */
  stop(graceMs?: number): Promise<string>;
}

/** The daemon did not answer within the cap (it was killed), or exited first. */
export class DaemonStartError extends Error {
  override readonly name = "DaemonStartError";
  constructor(
    message: string,
    readonly elapsedMs: number,
    readonly log: string,
    /** True when it was killed at the cap, false when it exited on its own. */
    readonly capped: boolean,
  ) {
    super(message);
  }
}

let nextPort = 4800;
let nextLog = 0;

/** The lines of `log` that match `pattern`. */
export function logLines(log: string, pattern: RegExp): string[] {
  return log.split("\n").filter((l) => pattern.test(l));
}

/**
 * Spawns `bun src/main.ts serve -l 127.0.0.1:<port> <flags>` and resolves once GET /service answers 200. Rejects
 * with DaemonStartError when it exits first or `capMs` passes (it is then killed with SIGKILL). `gorb` is the
 * command that runs gorb: the sources by default, or the compiled executable (`["/usr/bin/gorb"]`).
 */
export async function startBenchDaemon(flags: readonly string[], capMs: number, gorb: readonly string[] = [process.execPath, MAIN]): Promise<BenchDaemon> {
  const port = nextPort++;
  const n = nextLog++;
  const outPath = `/tmp/gorb-bench-${n}.out`;
  const errPath = `/tmp/gorb-bench-${n}.err`;
  const url = `http://127.0.0.1:${port}`;
  const t0 = performance.now();
  const proc = Bun.spawn([...gorb, "serve", "-l", `127.0.0.1:${port}`, ...flags], {
    stdin: "ignore",
    stdout: Bun.file(outPath),
    stderr: Bun.file(errPath),
    env: { ...process.env, NO_COLOR: "1", CI: "1" },
  });
  const log = (): string => {
    const read = (p: string) => {
      try {
        return readFileSync(p, "utf8");
      } catch {
        return "";
      }
    };
    return read(outPath) + read(errPath);
  };
  let firstAnswerMs: number | undefined;
  for (;;) {
    const elapsed = performance.now() - t0;
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new DaemonStartError(`gorb serve exited (${proc.exitCode ?? proc.signalCode}) before answering`, elapsed, log(), false);
    }
    if (elapsed > capMs) {
      proc.kill("SIGKILL");
      await proc.exited;
      throw new DaemonStartError(`gorb serve did not answer within ${Math.round(capMs / 1000)} s (killed)`, elapsed, log(), true);
    }
    try {
      const response = await fetch(`${url}/service`, { signal: AbortSignal.timeout(5_000) });
      await response.arrayBuffer();
      const now = performance.now() - t0;
      firstAnswerMs ??= now;
      if (response.ok) {
        return {
          url,
          pid: proc.pid,
          firstAnswerMs,
          firstOkMs: now,
          log,
          async stop(graceMs = 30_000) {
            if (proc.exitCode !== null || proc.signalCode !== null) return `already exited (${proc.exitCode ?? proc.signalCode})`;
            const s0 = performance.now();
            proc.kill("SIGTERM");
            const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
            await proc.exited;
            clearTimeout(timer);
            const took = `${Math.round(performance.now() - s0)} ms`;
            return proc.signalCode === "SIGKILL" ? `did not stop on SIGTERM within ${graceMs} ms: killed` : `stopped in ${took}`;
          },
        };
      }
    } catch {
      // not listening yet
    }
    await Bun.sleep(POLL_MS);
  }
}
