/**
 * Runs INSIDE the rig guest: where the time of `gorb status` of BENCH_STATUS_SIZE (1000x10) goes, next to
 * `ipvsadm -Ln --stats` of the same table, each part measured alone (medians of BENCH_STATUS_RUNS, 5, after one
 * warm-up): the processes' start (`bun -e 0`, `gorb --version`), the kernel's share of the netlink read (every
 * service's destination dump sent and received as the driver receives, nothing decoded), the decoding of those same datagrams, the
 * driver's whole snapshot() (in the calling thread, and on the daemon's dump thread), the status query and the
 * rendering of the table in this process, the two together as the daemon answers (the table drafted while the
 * counters are read) against one after the other, and
 * /proc/net/ip_vs (the kernel's text view, which has no counters) for scale. Started by bench/status-breakdown.ts.
 * It prints; it asserts nothing.
 */
import { existsSync, rmSync } from "node:fs";
import { Gorb } from "../src/core/gorb.ts";
import { HealthMonitor } from "../src/health/monitor.ts";
import { writeServiceKey } from "../src/ipvs/codec.ts";
import { IPVS_CMD, IPVS_GENL_VERSION } from "../src/ipvs/constants.ts";
import { decodeDestinationAt } from "../src/ipvs/dump-decode.ts";
import { KernelIpvsDriver } from "../src/ipvs/kernel-driver.ts";
import { ByteWriter } from "../src/netlink/attributes.ts";
import { NETLINK_GENERIC, NLM_F, NLMSG } from "../src/netlink/constants.ts";
import { MessageCursor, genlHeader, writeMessageAs } from "../src/netlink/message.ts";
import { draftStatusText, statusText } from "../src/render/status.ts";
import { SqliteStateStore } from "../src/state/sqlite-store.ts";
import { lookupGenlFamily } from "../src/transport/genl-family.ts";
import { LibnlSocket } from "../src/transport/libnl-socket.ts";
import { GUEST_EXECUTABLE } from "../test/kernel/helpers/executable.ts";
import { duration, median, parseSize, sizeText } from "./stats.ts";
import { ipvsadmRules, routesFor, writeStateDir } from "./workload.ts";

const SIZE = parseSize(process.env.BENCH_STATUS_SIZE ?? "1000x10", "BENCH_STATUS_SIZE");
const RUNS = Number(process.env.BENCH_STATUS_RUNS ?? 5);
const ENV = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", HOME: "/tmp", TMPDIR: "/tmp", NO_COLOR: "1" };

function sh(cmd: readonly string[], stdin?: string): string {
  const r = Bun.spawnSync([...cmd], { stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin), stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} exited ${r.exitCode}: ${r.stderr.toString().trim()}`);
  return r.stdout.toString();
}

async function measure(label: string, fn: () => unknown): Promise<number> {
  await fn();
  const xs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await fn();
    xs.push(performance.now() - t0);
  }
  const m = median(xs);
  console.log(`  ${label.padEnd(58)} ${duration(m).padStart(8)}  (min ${duration(Math.min(...xs))}, max ${duration(Math.max(...xs))})`);
  return m;
}

const spawn = (argv: readonly string[]) => () => {
  const r = Bun.spawnSync([...argv], { env: ENV, stdin: "ignore", stdout: Bun.file("/dev/null"), stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")} exited ${r.exitCode}: ${r.stderr.toString().trim()}`);
};

console.log(`\n=== status breakdown: ${sizeText(SIZE)}, each part alone (${RUNS} runs each after a warm-up, medians)`);
for (const r of routesFor(SIZE)) sh(["/usr/sbin/ip", "route", "replace", r, "dev", "lo"]);
sh(["/usr/sbin/ipvsadm", "-C"]);
sh(["/usr/sbin/ipvsadm", "-R"], ipvsadmRules(SIZE));

const ipvsadm = await measure("ipvsadm -Ln --stats (the anchor, a whole process)", spawn(["/usr/sbin/ipvsadm", "-Ln", "--stats"]));
await measure("cat /proc/net/ip_vs (no counters; for scale)", spawn(["cat", "/proc/net/ip_vs"]));
await measure("bun -e 0 (the runtime's start)", spawn([process.execPath, "-e", "0"]));
if (existsSync(GUEST_EXECUTABLE)) await measure("gorb --version (the executable's start)", spawn([GUEST_EXECUTABLE, "--version"]));

// The kernel's share: every destination dump sent and read until NLMSG_DONE, on a socket of our own, no decoding.
const driver = new KernelIpvsDriver({ timeoutMs: 10_000 });
const services = await driver.listServices();
const family = lookupGenlFamily("IPVS");
if (family === null) throw new Error("no IPVS generic netlink family");
const sock = new LibnlSocket({ protocol: NETLINK_GENERIC, timeoutMs: 10_000 });
const requests = services.map((s) => {
  const w = new ByteWriter(128);
  writeMessageAs(w, { type: family, header: genlHeader(IPVS_CMD.GET_DEST, IPVS_GENL_VERSION), attrs: (a) => writeServiceKey(a, s.key) }, NLM_F.REQUEST | NLM_F.DUMP, 0);
  return w.toBytes();
});
let seq = 1;
const captured: Uint8Array[] = [];
const dumpAll = (keep: boolean) => {
  for (const request of requests) {
    new DataView(request.buffer, request.byteOffset).setUint32(8, seq++, true);
    sock.send(request);
    // As the driver reads: every datagram already queued per call (the last part and NLMSG_DONE together).
    for (let done = false; !done; ) {
      for (const datagram of sock.receive()) {
        const type = new DataView(datagram.buffer, datagram.byteOffset).getUint16(4, true);
        if (type === NLMSG.DONE || type === NLMSG.ERROR) done = true;
        else if (keep) captured.push(datagram.slice());
      }
    }
  }
};
dumpAll(true);
const kernel = await measure(`${services.length} destination dumps sent and read, not decoded`, () => dumpAll(false));
const cursor = new MessageCursor();
const decode = await measure(`the same datagrams decoded (${captured.length})`, () => {
  for (const d of captured) {
    cursor.reset(d);
    while (cursor.next()) decodeDestinationAt(cursor.view, cursor.start, cursor.end, "inet");
  }
});
sock.close();
const snapshot = await measure("driver.snapshot() (service dump, then every destination dump)", () => driver.snapshot());
// As the daemon reads: the destination dumps on the dump thread, decoded here.
const threaded = new KernelIpvsDriver({ timeoutMs: 10_000, dumpThread: true });
const threadedSnapshot = await measure("the same with the daemon's dump thread", () => threaded.snapshot());

const dir = "/tmp/gorb-status-breakdown-state";
rmSync(dir, { recursive: true, force: true });
await writeStateDir(dir, SIZE);
const store = SqliteStateStore.open(dir);
const gorb = new Gorb({ driver: threaded, health: (onUpdate) => new HealthMonitor({ onUpdate }), store });
await gorb.restore(store.load());
const query = await measure("the status query (listServicesStatus, snapshot on the dump thread)", () => gorb.listServicesStatus());
const views = await gorb.listServicesStatus();
const render = await measure("rendering the table (statusText)", () => statusText(views));
// The daemon's text answer as GET /service does it: the table drafted while the counters are read, finished after;
// against the query and the rendering one after the other. Interleaved, so drifting load hits both.
const sequential: number[] = [];
const drafted: number[] = [];
for (let i = 0; i <= RUNS; i++) {
  let t0 = performance.now();
  statusText(await gorb.listServicesStatus());
  if (i > 0) sequential.push(performance.now() - t0);
  t0 = performance.now();
  const read = await gorb.readServicesStatus();
  const draft = draftStatusText(read.views);
  await read.counters;
  draft.finish();
  if (i > 0) drafted.push(performance.now() - t0);
}
const line = (label: string, xs: number[]) =>
  console.log(`  ${label.padEnd(58)} ${duration(median(xs)).padStart(8)}  (min ${duration(Math.min(...xs))}, max ${duration(Math.max(...xs))})`);
line("the query, then statusText", sequential);
line("the daemon's text answer (drafted during the read)", drafted);
console.log(
  `  kernel ${duration(kernel)} + decode ${duration(decode)} of a snapshot's ${duration(snapshot)} (${duration(threadedSnapshot)} with the dump thread); ` +
    `query beyond the threaded snapshot ${duration(query - threadedSnapshot)}; rendering ${duration(render)}; ipvsadm ${duration(ipvsadm)}`,
);
await gorb.close();
store.close();
driver.close();
threaded.close();
sh(["/usr/sbin/ipvsadm", "-C"]);
