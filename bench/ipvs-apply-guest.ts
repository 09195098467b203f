/**
 * Runs INSIDE the rig guest (real IPVS kernel): applies N services x M destinations through gorb's kernel
 * driver and the same rules through `ipvsadm -R`, lists them both ways, and prints each time and the ratio
 * gorb/ipvsadm. Started by bench/ipvs-apply.ts on the host.
 */
import { KernelIpvsDriver } from "../src/ipvs/kernel-driver.ts";
import type { IpvsOp } from "../src/ipvs/types.ts";
import { NO_FLAGS } from "../src/ipvs/types.ts";

const SERVICES = Number(process.env.BENCH_SERVICES ?? 1000);
const DESTS = Number(process.env.BENCH_DESTS ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

function sh(cmd: string[], stdin?: string): string {
  const r = Bun.spawnSync(cmd, { stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin), stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} exited ${r.exitCode}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

const vip = (i: number) => `10.${100 + (i >> 16)}.${(i >> 8) & 0xff}.${i & 0xff}`;
const rip = (i: number, j: number) => `10.77.${(i * DESTS + j) >> 8 & 0xff}.${((i * DESTS + j) & 0xff) || 1}`;

function gorbOps(): IpvsOp[] {
  const ops: IpvsOp[] = [];
  for (let i = 0; i < SERVICES; i++) {
    const key = { family: "inet" as const, protocol: "tcp" as const, address: vip(i), port: 80 };
    ops.push({ op: "add-service", service: { key, scheduler: "wrr", flags: NO_FLAGS, timeout: 0, netmask: 32, pe: null } });
    for (let j = 0; j < DESTS; j++) {
      ops.push({
        op: "add-destination",
        service: key,
        destination: { family: "inet", address: rip(i, j), port: 8000 + j, forward: "nat", weight: j + 1, upperThreshold: 0, lowerThreshold: 0, tunnel: null },
      });
    }
  }
  return ops;
}

function ipvsadmRules(): string {
  const lines: string[] = [];
  for (let i = 0; i < SERVICES; i++) {
    lines.push(`-A -t ${vip(i)}:80 -s wrr`);
    for (let j = 0; j < DESTS; j++) lines.push(`-a -t ${vip(i)}:80 -r ${rip(i, j)}:${8000 + j} -m -w ${j + 1}`);
  }
  return `${lines.join("\n")}\n`;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const time = async (fn: () => unknown | Promise<unknown>) => {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
};

sh(["/usr/sbin/ip", "route", "replace", "10.77.0.0/16", "dev", "lo"]);
const driver = new KernelIpvsDriver({ timeoutMs: 10000 });
const rules = ipvsadmRules();
const total = SERVICES * (DESTS + 1);
const r = { gorbApply: [] as number[], ipvsadmApply: [] as number[], gorbList: [] as number[], ipvsadmList: [] as number[] };

for (let round = 0; round < ROUNDS; round++) {
  await driver.flush();
  const ops = gorbOps();
  r.gorbApply.push(
    await time(async () => {
      const results = await driver.apply(ops);
      const failed = results.filter((x) => x !== null);
      if (failed.length) throw new Error(`${failed.length} ops failed, first: ${failed[0]?.message}`);
    }),
  );
  r.gorbList.push(
    await time(async () => {
      const snap = await driver.snapshot();
      const n = snap.reduce((acc, s) => acc + 1 + s.destinations.length, 0);
      if (n !== total) throw new Error(`gorb listed ${n} objects, expected ${total}`);
    }),
  );
  r.ipvsadmList.push(
    await time(() => {
      const out = sh(["ipvsadm", "-Ln"]);
      const n = out.split("\n").filter((l) => /^(TCP|  ->) /.test(l) && !l.includes("RemoteAddress")).length;
      if (n !== total) throw new Error(`ipvsadm listed ${n} objects, expected ${total}`);
    }),
  );
  sh(["ipvsadm", "-C"]);
  r.ipvsadmApply.push(await time(() => sh(["ipvsadm", "-R"], rules)));
  sh(["ipvsadm", "-C"]);
}
driver.close();

const fmt = (ms: number) => `${(ms / 1000).toFixed(3)} s`;
const gA = median(r.gorbApply), iA = median(r.ipvsadmApply), gL = median(r.gorbList), iL = median(r.ipvsadmList);
// Each round measures both tools back to back, so the per-round ratio is robust to load that drifts between rounds.
const ratio = (a: number[], b: number[]) => median(a.map((x, i) => x / (b[i] ?? NaN)));
console.log(`\nIPVS bulk benchmark (real kernel in the rig guest): ${SERVICES} services x ${DESTS} destinations = ${total} objects, median of ${ROUNDS} rounds (ratio: median of the per-round ratios)`);
console.log(`  apply  gorb ${fmt(gA)}   ipvsadm -R ${fmt(iA)}   ratio gorb/ipvsadm ${ratio(r.gorbApply, r.ipvsadmApply).toFixed(3)}`);
console.log(`  list   gorb ${fmt(gL)}   ipvsadm -Ln ${fmt(iL)}   ratio gorb/ipvsadm ${ratio(r.gorbList, r.ipvsadmList).toFixed(3)}`);
console.log(`  raw ms: ${JSON.stringify(r)}`);
