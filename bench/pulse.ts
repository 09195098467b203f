/**
 * Pulse benchmark: many health targets against local servers, every target checked every interval.
 *
 *   bun run bench/pulse.ts                          # tcp, then http: 10,000 targets, 1s interval, 15s each
 *   bun run bench/pulse.ts --checker tcp --targets 20000 --seconds 10 --interval 500ms
 *
 * Probe sharing is off (every target is its own probe; --share turns it on, and then targets on one endpoint
 * collapse into one probe). The servers run in a child process (this script with --serve), so the CPU time and RSS reported are the
 * monitor's and the checkers' only. Targets are distinct entries spread over several loopback addresses and
 * ports (127.0.0.1-127.0.0.N x M ports), which also spreads the client's ephemeral ports over many 4-tuples.
 * The run is bounded: each phase stops itself after --seconds and the child server is killed.
 *
 * Reported: checks/s achieved (steady state, after the first interval's random first delays) vs scheduled,
 * start lag (how late each check started relative to when it was due; p50/p99/max), results ok/failed/timed out,
 * CPU time (process.cpuUsage: user+system, and as % of one core), peak RSS, TIME_WAIT sockets at the end, and
 * the file-descriptor limit.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { HealthMonitor } from "../src/health/monitor.ts";
import { parsePulseOptions } from "../src/health/options.ts";

const { values } = parseArgs({
  options: {
    checker: { type: "string", default: "both" },
    targets: { type: "string", default: "10000" },
    seconds: { type: "string", default: "15" },
    interval: { type: "string", default: "1s" },
    hosts: { type: "string", default: "8" },
    ports: { type: "string", default: "8" },
    "max-in-flight": { type: "string", default: "4096" },
    "max-fetch-in-flight": { type: "string", default: "256" },
    share: { type: "boolean", default: false },
    batch: { type: "string" },
    serve: { type: "string" },
  },
});

const HOSTS = Array.from({ length: Number(values.hosts) }, (_, i) => `127.0.0.${i + 1}`);

if (values.serve !== undefined) {
  await serve(values.serve, Number(values.ports));
} else if (values.checker === "both") {
  for (const checker of ["tcp", "http"]) {
    const args = ["--checker", checker, "--targets", values.targets, "--seconds", values.seconds, "--interval", values.interval];
    args.push("--hosts", values.hosts, "--ports", values.ports, "--max-in-flight", values["max-in-flight"]);
    args.push("--max-fetch-in-flight", values["max-fetch-in-flight"]);
    const child = Bun.spawn([process.execPath, import.meta.path, ...args], { stdout: "inherit", stderr: "inherit" });
    const code = await child.exited;
    if (code !== 0) process.exit(code);
  }
} else {
  await run(values.checker ?? "tcp");
}

/** serve is the child: listen on every host x port, print the endpoints as JSON, run until killed. */
async function serve(kind: string, portsPerHost: number): Promise<void> {
  const endpoints: { host: string; port: number }[] = [];
  for (const host of HOSTS) {
    for (let i = 0; i < portsPerHost; i++) {
      if (kind === "http") {
        const s = Bun.serve({ hostname: host, port: 0, fetch: () => new Response("ok") });
        endpoints.push({ host, port: s.port as number });
      } else {
        const l = Bun.listen({ hostname: host, port: 0, socket: { data() {}, open() {}, close() {}, error() {} } });
        endpoints.push({ host, port: l.port });
      }
    }
  }
  console.log(JSON.stringify(endpoints));
  await new Promise(() => {});
}

async function run(kind: string): Promise<void> {
  const targets = Number(values.targets);
  const seconds = Number(values.seconds);
  const options = parsePulseOptions({ type: kind, interval: values.interval });
  const intervalMs = options.intervalMs;

  const server = Bun.spawn([process.execPath, import.meta.path, "--serve", kind, "--hosts", values.hosts, "--ports", values.ports], {
    stdout: "pipe",
    stderr: "inherit",
  });
  const reader = server.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("server child exited before listening");
    text += new TextDecoder().decode(value);
  }
  const endpoints = JSON.parse(text) as { host: string; port: number }[];

  // Lags are recorded only in the measured window (after the first interval).
  const lags = new Float64Array(Math.ceil((targets * seconds * 1_000) / intervalMs) * 2 + 1_000);
  let lagCount = 0;
  let measuring = false;
  let ok = 0;
  let failed = 0;
  const failures = new Map<string, number>();
  // NB: targets share 64 endpoints, so with probe sharing on they would collapse into 64 probes; the bench
  // measures 10,000 real checks per second unless --share is given.
  const monitor = new HealthMonitor({
    shareProbes: values.share,
    ...(values.batch === undefined ? {} : { batchMs: Number(values.batch) }),
    maxInFlight: Number(values["max-in-flight"]),
    maxFetchInFlight: Number(values["max-fetch-in-flight"]),
    onCheckStart: (_id, late) => {
      if (measuring && lagCount < lags.length) lags[lagCount++] = late;
    },
    onUpdate: (u) => {
      if (!measuring) return;
      if (u.lastCheck.ok) ok++;
      else {
        failed++;
        const key = u.lastCheck.message.replace(/\d+\.\d+\.\d+\.\d+:\d+/g, "<addr>");
        failures.set(key, (failures.get(key) ?? 0) + 1);
      }
    },
  });

  for (let i = 0; i < targets; i++) {
    const ep = endpoints[i % endpoints.length] as { host: string; port: number };
    monitor.add(`backend-${i}`, ep, options);
  }

  let peakRss = process.memoryUsage().rss;
  const rssTimer = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 250);

  // Warm-up: the first interval is spread by random first delays; measure the steady state after it.
  await Bun.sleep(intervalMs);
  measuring = true;
  const before = monitor.stats();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Bun.sleep(seconds * 1_000);
  const elapsed = (performance.now() - t0) / 1_000;
  const cpu = process.cpuUsage(cpu0);
  const after = monitor.stats();
  measuring = false;
  monitor.stop();
  clearInterval(rssTimer);
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  const timeWait = countTimeWait();
  server.kill();
  await server.exited;

  const finished = after.finished - before.finished;
  const started = after.started - before.started;
  const sorted = Array.from(lags.subarray(0, lagCount)).sort((a, b) => a - b);
  const pct = (p: number) => (sorted.length === 0 ? Number.NaN : (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number));
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;

  const lines = [
    `pulse bench: ${kind}, ${targets} targets on ${endpoints.length} endpoints (${HOSTS.length} hosts x ${values.ports} ports), interval ${options.interval.text}, ${seconds}s measured`,
    `  checks/s     scheduled ${(targets / (intervalMs / 1_000)).toFixed(0)}, started ${(started / elapsed).toFixed(0)}, finished ${(finished / elapsed).toFixed(0)}`,
    `  results      ok ${ok}, failed ${failed} (timed out ${after.timedOut - before.timedOut})`,
    `  start lag    p50 ${pct(0.5).toFixed(2)}ms, p99 ${pct(0.99).toFixed(2)}ms, max ${(sorted.at(-1) ?? Number.NaN).toFixed(2)}ms (${sorted.length} samples)`,
    `  in flight    at end ${after.inFlight}, queued ${after.queued}`,
    `  cpu          ${cpuSeconds.toFixed(2)}s (user ${(cpu.user / 1e6).toFixed(2)}s, system ${(cpu.system / 1e6).toFixed(2)}s) = ${((cpuSeconds / elapsed) * 100).toFixed(0)}% of one core`,
    `  memory       peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB`,
    `  sockets      TIME_WAIT at end ${timeWait}; fd limit ${fdLimit()}`,
  ];
  for (const [message, count] of [...failures].sort((a, b) => b[1] - a[1]).slice(0, 3)) lines.push(`  failure      ${count} x ${message}`);
  console.log(lines.join("\n"));
}

/** countTimeWait counts TCP sockets in TIME_WAIT (state 06) in this network namespace. */
function countTimeWait(): number {
  let n = 0;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    try {
      const text = readFileSync(file, "utf8");
      for (const line of text.split("\n").slice(1)) if (line.trim().split(/\s+/)[3] === "06") n++;
    } catch {
      // Not Linux, or no IPv6: count what can be counted.
    }
  }
  return n;
}

/** fdLimit reads this process's soft open-files limit. */
function fdLimit(): string {
  try {
    const limits = readFileSync("/proc/self/limits", "utf8");
    const line = limits.split("\n").find((l) => l.startsWith("Max open files"));
    return line?.split(/\s{2,}/)[1] ?? "unknown";
  } catch {
    return "unknown";
  }
}
