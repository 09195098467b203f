/**
 * Runs INSIDE the rig guest (real IPVS kernel): keepalived (Debian's) and `gorb serve --no-state` check the same
 * 1,000 backends every second, TCP then HTTP, one after the other; prints each one's CPU over the measured window,
 * the checks the backends really saw, the CPU per check, and the ratios gorb/keepalived. Started by
 * bench/checks.ts on the host.
 *
 * Backends: 1,000 addresses on eth0 of network namespace `bk` (10.200.x.y), served by ONE Bun process in that
 * namespace (this script with --serve): a TCP listener on :81 for tcp checks (accepts, waits for the client's
 * close) and an HTTP server on :80 answering GET /health with 200. A checker's checks/s is what the backends saw,
 * not what it was asked to do: the TCP handshakes their kernel completed (PassiveOpens of the namespace; one check
 * is one connection), with the server's own count of connections or requests beside it. The server's CPU is
 * printed (a saturated server would limit both checkers) but not counted.
 *
 * Same work. gorb checks at a fixed rate (a check is due one interval after the previous one was due).
 * keepalived waits `delay_loop` after each check ENDS (check_tcp.c/check_http.c re-arm their timer in the
 * check's epilog), so its period per backend is delay_loop + the check's own duration (connect, request,
 * response; up to connect_timeout), and on a slow guest it does fewer checks than asked. So keepalived runs
 * twice: once with delay_loop = the interval (as configured by hand), and, when that fell more than 10% short of
 * N/interval checks/s, once more with delay_loop shortened by the measured per-check delay (delay_loop accepts
 * fractions since keepalived 2.0.12), which asks it for the same number of checks as gorb ("matched"). Both
 * sides: connect timeout 1 s, one failure takes a backend down (gorb fall 1, keepalived retry 0), the same path
 * and status for HTTP.
 *
 * CPU: utime+stime ticks from /proc/PID/stat of every process of the checker (keepalived: its parent and its
 * checker child; gorb: the daemon, all threads), read at the start and the end of a BENCH_SECONDS window (default
 * 30) that begins BENCH_WARMUP seconds (default 8) after the checker got its backends, and for gorb once its
 * JIT compiler threads have settled too (settleCompiler; BENCH_SETTLE_MAX, default 60 s more). Before the first phase,
 * gorb's idle CPU (daemon up, no backends) is measured for BENCH_IDLE seconds (default 5; 0 skips it).
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { threadCpu, waitForQuiet } from "./threads.ts";

const N = Number(process.env.BENCH_BACKENDS ?? 1000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
/** Seconds between checks of one backend (keepalived's delay_loop, gorb's interval). */
const INTERVAL = Number(process.env.BENCH_INTERVAL ?? 1);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 8);
const IDLE = Number(process.env.BENCH_IDLE ?? 5);
/** Run keepalived a second time with a delay_loop that asks for gorb's rate, when the first run fell short. */
const MATCH = process.env.BENCH_MATCH !== "0";
const KINDS = (process.env.BENCH_KINDS ?? "tcp,http").split(",");
const CHECKERS = (process.env.BENCH_CHECKERS ?? "keepalived,gorb").split(",");
const IP = "/usr/sbin/ip";
const NS = "bk";
const API = "http://127.0.0.1:4672";

const backend = (i: number) => `10.200.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;


/** The backends' server, run inside the namespace: counts TCP connections (:81) and HTTP requests (:80). */
async function serve(): Promise<void> {
  let tcp = 0;
  let http = 0;
  Bun.listen({ hostname: "0.0.0.0", port: 81, socket: { open() { tcp++; }, data() {}, close() {}, error() {} } });
  Bun.serve({
    hostname: "0.0.0.0",
    port: 80,
    fetch: () => {
      http++;
      return new Response("ok\n");
    },
  });
  setInterval(() => writeFileSync("/tmp/bench-server.json", JSON.stringify({ tcp, http })), 250);
  console.log("serving");
  await new Promise(() => {});
}

function sh(argv: string[], stdin?: string): string {
  const r = Bun.spawnSync(argv, { stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin), stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")} exited ${r.exitCode}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

function serverCounts(): { tcp: number; http: number } {
  return JSON.parse(readFileSync("/tmp/bench-server.json", "utf8")) as { tcp: number; http: number };
}

/** utime+stime ticks of every thread of `pid`, summed by kind of thread ("bun", "JITWorker", "HeapHelper", ...). */
function threadTicks(pid: number): Map<string, number> {
  return new Map([...threadCpu(pid)].map(([name, cpu]) => [name, (cpu.user + cpu.system) / 10]));
}

/** Sum of utime+stime ticks of these pids (a pid that is gone counts 0). */
function ticks(pids: readonly number[]): number {
  const t = userSystemTicks(pids);
  return t.user + t.system;
}

/** utime and stime ticks of these pids, summed (a pid that is gone counts 0). */
function userSystemTicks(pids: readonly number[]): { user: number; system: number } {
  let user = 0;
  let system = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      user += Number(fields[11]);
      system += Number(fields[12]);
    } catch {
      // exited
    }
  }
  return { user, system };
}

function pidsNamed(name: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/comm`, "utf8").trim() === name) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

function setup(): void {
  for (const [k, v] of [["net/ipv4/neigh/default/gc_thresh1", "4096"], ["net/ipv4/neigh/default/gc_thresh2", "8192"], ["net/ipv4/neigh/default/gc_thresh3", "16384"]] as const) {
    writeFileSync(`/proc/sys/${k}`, v);
  }
  sh([IP, "netns", "add", NS]);
  sh([IP, "link", "add", "vb0", "type", "veth", "peer", "name", "eth0", "netns", NS]);
  sh([IP, "addr", "add", "10.200.0.254/16", "dev", "vb0"]);
  sh([IP, "link", "set", "vb0", "up"]);
  const batch = ["link set lo up", "link set eth0 up"];
  for (let i = 0; i < N; i++) batch.push(`addr add ${backend(i)}/16 dev eth0`);
  sh([IP, "-n", NS, "-batch", "-"], `${batch.join("\n")}\n`);
  sh([IP, "netns", "exec", NS, "sh", "-c", `for f in /proc/sys/net/ipv4/neigh/default/gc_thresh*; do echo 16384 > $f; done; echo 4096 > /proc/sys/net/core/somaxconn`]);
}

async function waitFor(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if (await ok()) return;
    await Bun.sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function keepalivedConfig(kind: string, delayLoop: number): string {
  const lines = ["global_defs {", "  router_id bench", "}", "virtual_server 10.100.0.1 80 {", `  delay_loop ${formatSeconds(delayLoop)}`, "  lb_algo rr", "  lb_kind NAT", "  protocol TCP"];
  for (let i = 0; i < N; i++) {
    lines.push(`  real_server ${backend(i)} ${kind === "tcp" ? 81 : 80} {`, "    weight 1");
    if (kind === "tcp") lines.push("    TCP_CHECK {", "      connect_timeout 1", "      retry 0", "    }");
    else lines.push("    HTTP_GET {", "      url {", "        path /health", "        status_code 200", "      }", "      connect_timeout 1", "      retry 0", "    }");
    lines.push("  }");
  }
  lines.push("}");
  return `${lines.join("\n")}\n`;
}

/** Seconds with up to 3 decimals, no trailing zeros ("1", "0.415"). */
function formatSeconds(s: number): string {
  return String(Math.round(s * 1000) / 1000);
}

interface Measure {
  readonly checker: string;
  /** "keepalived", "keepalived matched" or "gorb". */
  readonly label: string;
  readonly kind: string;
  /** keepalived's delay_loop, or gorb's interval, in seconds. */
  readonly delaySeconds: number;
  readonly ticks: number;
  readonly seconds: number;
  /** Connections (tcp) or requests (http) the backends' server saw in the window. */
  readonly served: number;
  /** CPU ticks of the backends' server in the window. */
  readonly serverTicks: number;
  /** TCP connects the checker started (root namespace ActiveOpens), and those the backends' kernel completed. */
  readonly attempted: number;
  readonly established: number;
  /** Handshakes the backends' kernel dropped because the server's accept queue was full. */
  readonly listenDrops: number;
  /** The checker's ticks by thread name in the window (gorb: the main thread "bun", JIT and GC helper threads). */
  readonly threads: Record<string, number>;
  /** Of `ticks`, those spent in the kernel (stime: system calls, the TCP stack on their behalf). */
  readonly systemTicks: number;
}

/** Reads named counters of a /proc/net/{snmp,netstat} table ("Tcp", "TcpExt"), in the root namespace or `ns`. */
function netCounters(file: "snmp" | "netstat", table: string, ns: string | null): Record<string, number> {
  const text = ns === null ? readFileSync(`/proc/net/${file}`, "utf8") : sh([IP, "netns", "exec", ns, "cat", `/proc/net/${file}`]);
  const lines = text.split("\n").filter((l) => l.startsWith(`${table}:`));
  const names = (lines[0] ?? "").split(/\s+/).slice(1);
  const values = (lines[1] ?? "").split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(names.map((n, i) => [n, values[i] ?? 0]));
}

function tcpCounters(): { attempted: number; established: number; listenDrops: number } {
  return {
    attempted: netCounters("snmp", "Tcp", null).ActiveOpens ?? 0,
    established: netCounters("snmp", "Tcp", NS).PassiveOpens ?? 0,
    listenDrops: netCounters("netstat", "TcpExt", NS).ListenDrops ?? 0,
  };
}

let serverPid = 0;

/**
 * After the warm-up, a checker with a JIT compiler (gorb: one process whose "JITWorker" threads compile hot code)
 * is given more time, in SETTLE_STEP_S steps, until its compiler threads used at most SETTLE_PERCENT of a CPU over
 * the last step, or SETTLE_MAX_S passed: under emulation, compiling the check path to its top tier takes tens of
 * seconds, and a window that starts before it ends measures the warm-up (slower tiers, the compiler's own CPU), not
 * the daemon that runs for months. Returns the seconds added. keepalived, compiled ahead of time, gets none.
 */
const SETTLE_STEP_S = 5;
const SETTLE_PERCENT = 2;
const SETTLE_MAX_S = Number(process.env.BENCH_SETTLE_MAX ?? 60);

async function settleCompiler(pid: number): Promise<{ seconds: number; lastPercent: number }> {
  // JavaScriptCore starts compiler threads on demand and ends them when idle, taking their ticks out of the threads'
  // sum; the process's own figure keeps an ended thread's. So the compiler's share is the process's ticks less those
  // of every other live thread.
  const compiler = (): number => {
    let others = 0;
    for (const [name, t] of threadTicks(pid)) if (name !== "JITWorker") others += t;
    return ticks([pid]) - others;
  };
  return waitForQuiet(compiler, { stepS: SETTLE_STEP_S, percent: SETTLE_PERCENT, maxS: SETTLE_MAX_S });
}

async function window(checker: string, label: string, kind: string, delaySeconds: number, pids: () => number[]): Promise<Measure> {
  await Bun.sleep(WARMUP * 1000);
  if (checker === "gorb" && pids().length === 1) {
    const settled = await settleCompiler(pids()[0] as number);
    console.log(
      `  ${label} ${kind}: compiler threads at ${settled.lastPercent.toFixed(1)}% of a CPU after ${WARMUP + settled.seconds} s of warm-up` +
        `${settled.lastPercent > SETTLE_PERCENT ? ` (still compiling: stopped waiting at ${SETTLE_MAX_S} s more)` : ""}`,
    );
  }
  const p = pids();
  const c0 = serverCounts();
  const k0 = tcpCounters();
  const s0 = ticks([serverPid]);
  const th0 = p.length === 1 ? threadTicks(p[0] as number) : new Map<string, number>();
  const t0 = userSystemTicks(p);
  const w0 = performance.now();
  await Bun.sleep(SECONDS * 1000);
  const t1 = userSystemTicks(p);
  const th1 = p.length === 1 ? threadTicks(p[0] as number) : new Map<string, number>();
  const seconds = (performance.now() - w0) / 1000;
  const s1 = ticks([serverPid]);
  const k1 = tcpCounters();
  const c1 = serverCounts();
  const served = kind === "tcp" ? c1.tcp - c0.tcp : c1.http - c0.http;
  const m: Measure = {
    checker,
    label,
    kind,
    delaySeconds,
    ticks: t1.user + t1.system - t0.user - t0.system,
    systemTicks: t1.system - t0.system,
    seconds,
    served,
    serverTicks: s1 - s0,
    attempted: k1.attempted - k0.attempted,
    established: k1.established - k0.established,
    listenDrops: k1.listenDrops - k0.listenDrops,
    threads: Object.fromEntries([...th1].map(([name, t]) => [name, t - (th0.get(name) ?? 0)]).filter(([, t]) => (t as number) > 0)),
  };
  printMeasure(m);
  return m;
}

/**
 * A check is one connection: its rate is the handshakes the backends' kernel completed (PassiveOpens in their
 * namespace), which counts both checkers alike. (The server's own request count can differ: it once counted
 * more HTTP requests than connections for keepalived.)
 */
const rate = (m: Measure) => m.established / m.seconds;
const cpuPercent = (m: Measure) => m.ticks / m.seconds;
/** CPU ticks (1/100 s) per 1,000 checks the backends saw. */
const perThousand = (m: Measure) => (m.ticks * 1000) / Math.max(1, m.established);
const asked = N / INTERVAL;

function printMeasure(m: Measure): void {
  const per = (x: number) => (x / m.seconds).toFixed(0);
  const what = m.checker === "gorb" ? `interval ${formatSeconds(m.delaySeconds)}s` : `delay_loop ${formatSeconds(m.delaySeconds)}`;
  console.log(
    `checks bench: ${`${m.label} ${m.kind}`.padEnd(23)} (${what}): ${rate(m).toFixed(0)} checks/s at the backends ` +
      `(${((rate(m) / asked) * 100).toFixed(0)}% of ${asked.toFixed(0)}/s asked); CPU ${m.ticks} ticks in ${m.seconds.toFixed(1)} s = ` +
      `${cpuPercent(m).toFixed(1)}% of one CPU (${((m.systemTicks / Math.max(1, m.ticks)) * 100).toFixed(0)}% of it in the kernel), ${perThousand(m).toFixed(1)} ticks per 1,000 checks; ` +
      `connects started ${per(m.attempted)}/s, dropped by a full accept queue ${per(m.listenDrops)}/s; ` +
      `the server saw ${per(m.served)} ${m.kind === "tcp" ? "connections" : "requests"}/s and used ${(m.serverTicks / m.seconds).toFixed(0)}% CPU`,
  );
  const threads = Object.entries(m.threads).sort((a, b) => b[1] - a[1]);
  if (threads.length > 1) console.log(`  ${m.label} ${m.kind}: ticks by thread: ${threads.map(([n, t]) => `${n} ${t}`).join(", ")}`);
}

async function runKeepalived(kind: string, delayLoop: number, label: string): Promise<Measure> {
  writeFileSync("/tmp/keepalived.conf", keepalivedConfig(kind, delayLoop));
  const test = Bun.spawnSync(["/usr/sbin/keepalived", "-t", "-l", "-D", "-f", "/tmp/keepalived.conf"], { stdout: "pipe", stderr: "pipe" });
  const complaints = `${test.stdout.toString()}${test.stderr.toString()}`.trim();
  if (complaints !== "") console.log(`  keepalived -t said: ${complaints.split("\n").slice(0, 5).join(" | ")}`);
  const proc = Bun.spawn(
    ["/usr/sbin/keepalived", "--dont-fork", "--check", "-f", "/tmp/keepalived.conf", "-p", "/tmp/keepalived.pid", "-c", "/tmp/keepalived-checkers.pid"],
    { stdout: Bun.file("/tmp/keepalived.log"), stderr: Bun.file("/tmp/keepalived.err") },
  );
  try {
    await waitFor("keepalived's checker process", () => pidsNamed("keepalived").length >= 2);
    const m = await window("keepalived", label, kind, delayLoop, () => pidsNamed("keepalived"));
    const listing = sh(["/usr/sbin/ipvsadm", "-Ln"]);
    const alive = listing.split("\n").filter((l) => l.includes("->") && /\s1\s+\d+\s+\d+\s*$/.test(l)).length;
    console.log(`  keepalived ${kind}: ${alive} of ${N} real servers in the IPVS table with weight 1 at the end`);
    return m;
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
    // The checker child can outlive the parent for a moment; its checks must not count for the next checker.
    await waitFor("keepalived's processes to exit", () => pidsNamed("keepalived").length === 0, 30_000);
    sh(["/usr/sbin/ipvsadm", "-C"]);
  }
}

async function runGorb(kind: string, idleSeconds: number): Promise<{ m: Measure; idle: number | null }> {
  const proc = Bun.spawn(["/usr/bin/bun", "src/main.ts", "serve", "-l", "127.0.0.1:4672", "--no-state", "--reconcile-interval", "0"], {
    stdout: Bun.file("/tmp/gorb.log"),
    stderr: Bun.file("/tmp/gorb.err"),
  });
  try {
    try {
      await waitFor("gorb's API", async () => {
        if (proc.exitCode !== null) throw new Error(`gorb serve exited ${proc.exitCode}`);
        try {
          return (await fetch(`${API}/service`)).ok;
        } catch {
          return false;
        }
      });
    } catch (error) {
      for (const f of ["/tmp/gorb.log", "/tmp/gorb.err"]) console.log(`--- ${f}\n${readFileSync(f, "utf8").slice(-3000)}`);
      throw error;
    }
    const put = async (path: string, body: unknown) => {
      const r = await fetch(`${API}${path}`, { method: "PUT", body: JSON.stringify(body), headers: { "content-type": "application/json" } });
      if (!r.ok) throw new Error(`PUT ${path}: ${r.status} ${await r.text()}`);
    };
    let idle: number | null = null;
    if (idleSeconds > 0) {
      await Bun.sleep(idleSeconds * 1000); // let start-up work (JIT, GC) settle first
      const i0 = ticks([proc.pid]);
      const w0 = performance.now();
      await Bun.sleep(idleSeconds * 1000);
      idle = (ticks([proc.pid]) - i0) / ((performance.now() - w0) / 1000);
      console.log(`checks bench: gorb idle (daemon up ${idleSeconds} s, no backends, next ${idleSeconds} s): ${idle.toFixed(1)}% of one CPU`);
    }
    await put("/service/bench", { host: "10.100.0.2", port: 80, protocol: "tcp", method: "rr" });
    const interval = `${INTERVAL}s`;
    const pulse = kind === "tcp" ? { type: "tcp", interval, args: { timeout: "1s" } } : { type: "http", interval, args: { path: "/health", expect: 200, timeout: "1s" } };
    const port = kind === "tcp" ? 81 : 80;
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < N) {
          const i = next++;
          await put(`/service/bench/b${i}`, { host: backend(i), port, method: "nat", weight: 1, pulse });
        }
      }),
    );
    const m = await window("gorb", "gorb", kind, INTERVAL, () => [proc.pid]);
    // What the checks said at the end: states and messages (addresses folded), most common first.
    // A daemon saturated by its checks may shed this connection (ECONNRESET): the figures are taken already, so a
    // failed read is printed and the bench goes on; it is tried three times.
    let text = "";
    for (let attempt = 1; attempt <= 3 && text === ""; attempt++) {
      try {
        text = await (await fetch(`${API}/service?detail=true`)).text();
      } catch (error) {
        console.log(`  gorb ${kind}: GET /service?detail=true, attempt ${attempt} of 3: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    const counts = new Map<string, number>();
    for (const match of text.matchAll(/"state":\s*"(\w+)"[^}]*?"message":\s*"([^"]*)"/g)) {
      const key = `${match[1]}: ${(match[2] ?? "").replace(/10\.200\.\d+\.\d+/g, "<backend>")}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    for (const [key, n] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, 4)) console.log(`  gorb ${kind}: ${n} x ${key}`);
    if (counts.size === 0) console.log(`  gorb ${kind}: GET /service?detail=true said ${text.slice(0, 400)}`);
    return { m, idle };
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
    sh(["/usr/sbin/ipvsadm", "-C"]);
  }
}

async function main(): Promise<void> {
  setup();
  const server = Bun.spawn([IP, "netns", "exec", NS, "/usr/bin/bun", import.meta.path, "--serve"], { stdout: "inherit", stderr: "inherit" });
  await waitFor("the backends' server", () => {
    try {
      serverCounts();
      return true;
    } catch {
      return false;
    }
  });
  // `ip netns exec` execs the command, so the server normally runs under the spawned pid; look it up to be sure.
  serverPid =
    pidsNamed("bun").find((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("--serve");
      } catch {
        return false;
      }
    }) ?? server.pid;
  console.log(`checks bench: ${N} backends, every ${formatSeconds(INTERVAL)} s (${asked.toFixed(0)} checks/s asked), ${SECONDS} s windows after ${WARMUP} s warm-up; guest CPUs ${navigator.hardwareConcurrency}`);
  const results: Measure[] = [];
  let idle: number | null = null;
  const summary: string[] = [];
  for (const kind of KINDS) {
    let k: Measure | undefined;
    let matched: Measure | undefined;
    let g: Measure | undefined;
    for (const checker of CHECKERS) {
      if (checker === "keepalived") {
        k = await runKeepalived(kind, INTERVAL, "keepalived");
        results.push(k);
        // keepalived's period per backend is delay_loop + the check's duration: ask for gorb's rate.
        if (MATCH && rate(k) < 0.9 * asked && rate(k) > 0) {
          const extra = N / rate(k) - INTERVAL;
          const delay = Math.max(0.1 * INTERVAL, INTERVAL - extra);
          console.log(`  keepalived ${kind}: ${extra.toFixed(3)} s per check beyond delay_loop; again with delay_loop ${formatSeconds(delay)}`);
          matched = await runKeepalived(kind, delay, "keepalived matched");
          results.push(matched);
        }
      } else {
        const r = await runGorb(kind, idle === null ? IDLE : 0);
        idle ??= r.idle;
        g = r.m;
        results.push(g);
      }
    }
    if (g === undefined) continue;
    for (const ref of [k, matched]) {
      if (ref === undefined) continue;
      summary.push(
        `checks bench: ${kind} gorb/${ref.label}: total CPU ${(cpuPercent(g) / Math.max(0.01, cpuPercent(ref))).toFixed(2)} ` +
          `(gorb ${cpuPercent(g).toFixed(1)}% for ${rate(g).toFixed(0)} checks/s, ${ref.label} ${cpuPercent(ref).toFixed(1)}% for ${rate(ref).toFixed(0)} checks/s); ` +
          `per check ${(perThousand(g) / Math.max(0.01, perThousand(ref))).toFixed(2)} (${perThousand(g).toFixed(1)} vs ${perThousand(ref).toFixed(1)} ticks per 1,000)`,
      );
    }
  }
  server.kill();
  console.log(summary.join("\n"));
  console.log(`CHECKS_BENCH_JSON=${JSON.stringify({ backends: N, interval: INTERVAL, idleGorbPercent: idle, results })}`);
}

// Last, so every module-level binding above is initialised before it runs.
if (process.argv[2] === "--serve") {
  await serve();
} else {
  await main();
}
