/**
 * `bun bench/host-status.ts`: the daemon's JavaScript share of `gorb status` (issue 12) on the host, in CPU time
 * (process.cpuUsage: on a shared machine it moves less than the wall time), of BENCH_STATUS_SIZE (1000x10):
 *
 *   core    the status table of a Gorb restored on the in-memory driver (its table reads through the kernel
 *           driver and the stand-in below): the JSON views (listServicesDetail) rendered by statusText, against
 *           the status query (listServicesStatus) the daemon's text answer uses
 *   parse   KernelIpvsDriver.snapshot() against a stand-in kernel (test/helpers/ipvs-dump-kernel.ts) that
 *           answers the dumps with the bytes IPVS sends, stats nests included: the netlink receive and decode
 *
 * Every figure is the median of BENCH_HOST_RUNS (15) runs after warm-up runs, the variants interleaved so that
 * drifting load hits both. Prints; asserts nothing.
 */
import { rmSync } from "node:fs";
import { Gorb } from "../src/core/gorb.ts";
import { HealthMonitor } from "../src/health/monitor.ts";
import { KernelIpvsDriver } from "../src/ipvs/kernel-driver.ts";
import { MemoryIpvsDriver } from "../src/ipvs/memory-driver.ts";
import { NO_FLAGS, ZERO_STATS, type Destination, type Service, type ServiceWithDestinations } from "../src/ipvs/types.ts";
import { statusText } from "../src/render/status.ts";
import { SqliteStateStore } from "../src/state/sqlite-store.ts";
import { IpvsDumpKernel } from "../test/helpers/ipvs-dump-kernel.ts";
import { median, parseSize, sizeText } from "./stats.ts";
import { BACKEND_PORT, rip, vip, writeStateDir } from "./workload.ts";

const SIZE = parseSize(process.env.BENCH_STATUS_SIZE ?? "1000x10", "BENCH_STATUS_SIZE");
const RUNS = Number(process.env.BENCH_HOST_RUNS ?? 15);
const what = process.argv[2] ?? "both";

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Runs each variant `RUNS` times (after 3 warm-ups each), interleaved; prints the median CPU ms of each. */
async function compare(title: string, variants: Record<string, () => Promise<unknown>>): Promise<void> {
  const names = Object.keys(variants);
  const samples = new Map<string, number[]>(names.map((n) => [n, []]));
  for (let i = 0; i < 3; i++) for (const n of names) await variants[n]?.();
  for (let i = 0; i < RUNS; i++) {
    for (const n of names) {
      Bun.gc(true);
      const c0 = cpuMs();
      await variants[n]?.();
      samples.get(n)?.push(cpuMs() - c0);
    }
  }
  console.log(`\n=== ${title}, ${sizeText(SIZE)} (CPU ms, median of ${RUNS}, min..max)`);
  for (const n of names) {
    const xs = samples.get(n) ?? [];
    console.log(`  ${n.padEnd(46)} ${median(xs).toFixed(1).padStart(8)}  (${Math.min(...xs).toFixed(1)}..${Math.max(...xs).toFixed(1)})`);
  }
}

/**
 * The in-memory driver for the writes of the restore, whose table reads then go through KernelIpvsDriver and the
 * stand-in dump kernel serving what it holds: the reads cost what they cost on the kernel (less the syscalls).
 */
class DumpReadDriver extends MemoryIpvsDriver {
  #reader: KernelIpvsDriver | null = null;
  readFromDumps(): void {
    const family = 0x24;
    const table = { services: this.peek() };
    this.#reader = new KernelIpvsDriver({ familyId: family, openSocket: () => new IpvsDumpKernel(family, table), resolveFamily: () => family });
  }
  override snapshot(): Promise<ServiceWithDestinations[]> {
    return this.#reader === null ? super.snapshot() : this.#reader.snapshot();
  }
}

if (what === "core" || what === "both") {
  const dir = `/dev/shm/gorb-host-status-${process.pid}`;
  rmSync(dir, { recursive: true, force: true });
  await writeStateDir(dir, SIZE);
  const store = SqliteStateStore.open(dir);
  const driver = new DumpReadDriver({ isRoutable: () => true });
  const gorb = new Gorb({ driver, health: (onUpdate) => new HealthMonitor({ onUpdate }), store });
  await gorb.restore(store.load());
  driver.readFromDumps();
  let a = "";
  const variants: Record<string, () => Promise<unknown>> = {
    "JSON views (listServicesDetail)": async () => gorb.listServicesDetail(),
    "JSON views + statusText": async () => {
      a = statusText(await gorb.listServicesDetail());
    },
  };
  // Absent before the status query existed (the same script measures the code before it, checked out elsewhere).
  const status = (gorb as Partial<Pick<Gorb, "listServicesStatus">>).listServicesStatus?.bind(gorb);
  if (status !== undefined) {
    variants["status views (listServicesStatus)"] = async () => status();
    variants["status views + statusText (GET as text)"] = async () => {
      a = statusText(await status());
    };
  }
  await compare("status table in the daemon", variants);
  console.log(`  (table: ${a.length} characters)`);
  await gorb.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
}

if (what === "parse" || what === "both") {
  const stats = { ...ZERO_STATS, conns: 123456, inPkts: 7890123, outPkts: 6543210, inBytes: 9876543210, outBytes: 1234567890, cps: 12, inPps: 345, outPps: 300, inBps: 456789, outBps: 398765 };
  const services: { service: Service; destinations: Destination[] }[] = [];
  for (let i = 0; i < SIZE.services; i++) {
    const destinations: Destination[] = [];
    for (let j = 0; j < SIZE.backends; j++) {
      destinations.push({
        family: "inet",
        address: rip(SIZE, i, j),
        port: BACKEND_PORT,
        forward: "nat",
        weight: (j % 100) + 1,
        upperThreshold: 0,
        lowerThreshold: 0,
        tunnel: null,
        activeConns: j,
        inactiveConns: 2 * j,
        persistentConns: 0,
        stats,
      });
    }
    services.push({
      service: { key: { family: "inet", protocol: "tcp", address: vip(i), port: 80 }, scheduler: "wrr", flags: NO_FLAGS, timeout: 0, netmask: 32, pe: null, stats },
      destinations,
    });
  }
  const family = 0x24;
  const driver = new KernelIpvsDriver({ familyId: family, openSocket: () => new IpvsDumpKernel(family, { services }), resolveFamily: () => family });
  const n = (await driver.snapshot()).reduce((sum, e) => sum + e.destinations.length, 0);
  await compare(`netlink read of the table (${SIZE.services} service dumps, ${n} destinations)`, {
    "KernelIpvsDriver.snapshot()": () => driver.snapshot(),
  });
  driver.close();
}
