/**
 * `bun bench/host-core.ts [apply|rest|both]`: gorb's own JavaScript cost of the issue 14 figures on the host, with
 * the in-memory IPVS driver (bench/host-daemon.ts) and the state on tmpfs (/dev/shm): the time of `gorb apply -f`
 * (the CLI process, from source) of BENCH_APPLY_SIZE (1000x10), and of BENCH_REST_SIZE (200x10) sequential PUTs
 * against as many GET /service, as bench/gorb-guest.ts measures them in the guest, each with the CPU time the
 * daemon (and for the apply, the CLI) used: on a shared machine the CPU time moves less than the wall time.
 * BENCH_DAEMON_ARGS adds bun flags to the daemon (e.g. `--cpu-prof --cpu-prof-dir=DIR`), BENCH_CLI_ARGS to the CLI.
 * Prints; asserts nothing.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { duration, median, parseSize, ratioText, sizeText } from "./stats.ts";
import { applyFile, backendBody, backendId, serviceBody, serviceId } from "./workload.ts";

const MAIN = join(import.meta.dir, "..", "src", "main.ts");
const DAEMON = join(import.meta.dir, "host-daemon.ts");
const what = process.argv[2] ?? "both";
const APPLY_SIZE = parseSize(process.env.BENCH_APPLY_SIZE ?? "1000x10", "BENCH_APPLY_SIZE");
const REST_SIZE = parseSize(process.env.BENCH_REST_SIZE ?? "200x10", "BENCH_REST_SIZE");
const split = (s: string | undefined) => (s === undefined || s === "" ? [] : s.split(" "));
let nextPort = 4900 + Math.floor(Math.random() * 500);

/** CPU time (user + system) a process has used so far, in ms, from /proc/PID/stat (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function startDaemon(): Promise<{ url: string; cpu(): number; stop(): Promise<void> }> {
  const port = nextPort++;
  const dir = `/dev/shm/gorb-host-bench-${port}`;
  rmSync(dir, { recursive: true, force: true });
  const proc = Bun.spawn([process.execPath, ...split(process.env.BENCH_DAEMON_ARGS), DAEMON, String(port), dir], {
    stdin: "ignore",
    stdout: Bun.file(`/tmp/gorb-host-bench-${port}.log`),
    stderr: "inherit",
  });
  const url = `http://127.0.0.1:${port}`;
  for (;;) {
    try {
      if ((await fetch(`${url}/service`)).ok) break;
    } catch {
      await Bun.sleep(20);
    }
  }
  return {
    url,
    cpu: () => cpuMs(proc.pid),
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

if (what === "apply" || what === "both") {
  const file = "/tmp/gorb-host-bench-apply.json";
  writeFileSync(file, applyFile(APPLY_SIZE));
  const d = await startDaemon();
  const cpu0 = d.cpu();
  const t0 = performance.now();
  const cli = Bun.spawn([process.execPath, ...split(process.env.BENCH_CLI_ARGS), MAIN, "apply", "-f", file, "--server", d.url], {
    stdin: "ignore",
    stdout: Bun.file("/tmp/gorb-host-bench-apply.out"),
    stderr: "inherit",
    env: { ...process.env, NO_COLOR: "1" },
  });
  const exit = await cli.exited;
  const ms = performance.now() - t0;
  const usage = cli.resourceUsage();
  const cliCpu = usage === undefined ? Number.NaN : Number(usage.cpuTime.user + usage.cpuTime.system) / 1000;
  console.log(`apply -f ${sizeText(APPLY_SIZE)}: ${duration(ms)} (CLI exit ${exit}); CPU: daemon ${d.cpu() - cpu0} ms, CLI ${cliCpu.toFixed(0)} ms`);
  await d.stop();
}

if (what === "rest" || what === "both") {
  const d = await startDaemon();
  const encoder = new TextEncoder();
  const call = async (into: number[], method: string, url: string, body?: unknown) => {
    const t0 = performance.now();
    const r = await fetch(url, { method, ...(body === undefined ? {} : { body: encoder.encode(JSON.stringify(body)) }) });
    await r.arrayBuffer();
    into.push(performance.now() - t0);
    if (r.status >= 300) throw new Error(`${method} ${url}: ${r.status}`);
  };
  const puts: number[] = [];
  const gets: number[] = [];
  let putCpu = 0;
  let getCpu = 0;
  for (let i = 0; i < REST_SIZE.services; i++) {
    const service = `${d.url}/service/${serviceId(i)}`;
    const c0 = d.cpu();
    await call(puts, "PUT", service, serviceBody(i));
    for (let j = 0; j < REST_SIZE.backends; j++) await call(puts, "PUT", `${service}/${backendId(j)}`, backendBody(REST_SIZE, i, j));
    const c1 = d.cpu();
    for (let k = 0; k <= REST_SIZE.backends; k++) await call(gets, "GET", `${d.url}/service`);
    putCpu += c1 - c0;
    getCpu += d.cpu() - c1;
  }
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  console.log(`REST ${sizeText(REST_SIZE)}: ${puts.length} PUT ${duration(sum(puts))} (median ${median(puts).toFixed(3)} ms), ${gets.length} GET ${duration(sum(gets))} (median ${median(gets).toFixed(3)} ms): ${ratioText(sum(puts), sum(gets))}; daemon CPU: PUTs ${putCpu} ms, GETs ${getCpu} ms`);
  await d.stop();
}
