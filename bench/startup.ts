/**
 * Startup figures of the compiled executable: its size, the median wall time of `gorb --version` (and a few
 * other one-shot commands) on this machine; then, since `gorb serve` needs a kernel with IPVS (this one has none:
 * serve exits 8), the median time from spawning `gorb serve -l 127.0.0.1:<port>` to its first answered HTTP
 * request INSIDE the rig guest, and the sandbox's time from command to first answered API request
 * (bench/serve-startup.ts).
 *
 *   bun run bench/startup.ts [runs] [--host-only]     (default 10 runs each on the host, 5 in the guest, 3 sandboxes)
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildExecutable } from "../scripts/build.ts";
import { figureLine, sandboxFirstAnswer, serveStartupInGuest } from "./serve-startup.ts";

const args = process.argv.slice(2);
const hostOnly = args.includes("--host-only");
const runs = Number(args.find((a) => !a.startsWith("--")) ?? 10);
const root = new URL("..", import.meta.url).pathname;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

function ms(value: number): string {
  return `${value.toFixed(1)} ms`;
}

async function timeCommand(cmd: string[], env: Record<string, string> = {}): Promise<{ ms: number; code: number }> {
  const t0 = performance.now();
  const proc = Bun.spawn(cmd, { stdout: "ignore", stderr: "ignore", env: { ...process.env, ...env } });
  const code = await proc.exited;
  return { ms: performance.now() - t0, code };
}

async function medianOf(label: string, cmd: string[], env: Record<string, string> = {}): Promise<void> {
  const times: number[] = [];
  let code = 0;
  await timeCommand(cmd, env); // warm the page cache
  for (let i = 0; i < runs; i++) {
    const r = await timeCommand(cmd, env);
    times.push(r.ms);
    code = r.code;
  }
  console.log(`${label.padEnd(44)} median ${ms(median(times)).padStart(9)}  (min ${ms(Math.min(...times))}, exit ${code})`);
}

function freePort(): number {
  const probe = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
  const port = probe.port ?? 0;
  probe.stop(true);
  return port;
}

/** Spawn `gorb serve` and poll until it answers GET /service; the time, or why it never answered. */
async function serveOnce(exe: string): Promise<{ ms: number } | { failedAfterMs: number; code: number; reason: string }> {
  const port = freePort();
  const t0 = performance.now();
  const proc = Bun.spawn([exe, "serve", "-l", `127.0.0.1:${port}`], { stdout: "ignore", stderr: "pipe" });
  let exited: number | null = null;
  void proc.exited.then((code) => {
    exited = code;
  });
  try {
    for (;;) {
      if (exited !== null) {
        const stderr = await new Response(proc.stderr).text();
        const reason = stderr.trim().split("\n").find((l) => l.trim() !== "") ?? "(no output)";
        return { failedAfterMs: performance.now() - t0, code: exited, reason };
      }
      try {
        const response = await fetch(`http://127.0.0.1:${port}/service`, { signal: AbortSignal.timeout(1000) });
        await response.arrayBuffer();
        return { ms: performance.now() - t0 };
      } catch {
        await Bun.sleep(2);
      }
      if (performance.now() - t0 > 15_000) return { failedAfterMs: performance.now() - t0, code: -1, reason: "no answer within 15 s" };
    }
  } finally {
    if (exited === null) {
      proc.kill("SIGTERM");
      await proc.exited;
    }
  }
}

const dir = mkdtempSync(join(tmpdir(), "gorb-bench-"));
try {
  const exe = join(dir, "gorb");
  const t0 = performance.now();
  buildExecutable(exe);
  const buildMs = performance.now() - t0;
  const size = statSync(exe).size;
  console.log(`bun ${Bun.version}, ${runs} runs each`);
  console.log(`${"build (scripts/build.ts, --bytecode)".padEnd(44)} ${ms(buildMs)}`);
  console.log(`${"executable size".padEnd(44)} ${(size / 1024 / 1024).toFixed(1)} MiB (${size} bytes)`);
  await medianOf("gorb --version", [exe, "--version"]);
  await medianOf("gorb --help", [exe, "--help"]);
  await medianOf("gorb status (daemon unreachable, exit 3)", [exe, "status"], { GORB_SERVER: `http://127.0.0.1:${freePort()}` });
  await medianOf("gorb status --direct (libnl + genl resolve)", [exe, "status", "--direct"]);
  await medianOf("bun src/main.ts --version (from source)", [process.execPath, join(root, "src/main.ts"), "--version"]);

  const answered: number[] = [];
  let failure: { failedAfterMs: number; code: number; reason: string } | null = null;
  for (let i = 0; i < runs; i++) {
    const r = await serveOnce(exe);
    if ("ms" in r) answered.push(r.ms);
    else {
      failure = r;
      break;
    }
  }
  if (failure === null) {
    console.log(`${"gorb serve: spawn -> first HTTP answer".padEnd(44)} median ${ms(median(answered)).padStart(9)}  (min ${ms(Math.min(...answered))})`);
  } else {
    console.log(
      `${"gorb serve: spawn -> first HTTP answer".padEnd(44)} not on this host: serve exited with ${failure.code} after ${ms(failure.failedAfterMs)}: ${failure.reason}`,
    );
  }
  if (!hostOnly) {
    console.log("\nin the rig guest (real IPVS kernel, emulated CPU about 10x slower); guest console on stderr:");
    const guest = await serveStartupInGuest(Math.min(runs, 5), (s) => process.stderr.write(s));
    const sandbox = [await sandboxFirstAnswer(3, false), await sandboxFirstAnswer(3, true)];
    for (const f of [...guest, ...sandbox]) console.log(figureLine(f));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
