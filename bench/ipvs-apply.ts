/**
 * `npm run bench`: boots the rig's real-kernel guest once and runs bench/ipvs-apply-guest.ts there:
 * 1,000 services x 10 destinations applied through gorb's kernel driver and through `ipvsadm -R`,
 * then listed both ways; prints each time and the ratio gorb/ipvsadm.
 * Sizes: BENCH_SERVICES, BENCH_DESTS, BENCH_ROUNDS (passed into the guest).
 */
import { RigError, runInGuest } from "../test/rig/qemu.ts";

const env = ["BENCH_SERVICES", "BENCH_DESTS", "BENCH_ROUNDS"]
  .filter((k) => process.env[k] !== undefined)
  .map((k) => `${k}=${Number(process.env[k])}`)
  .join(" ");

try {
  const r = await runInGuest({
    script: `${env} bun bench/ipvs-apply-guest.ts`,
    timeoutMs: 20 * 60_000,
    memoryMb: 3072,
    onOutput: (s) => process.stdout.write(s),
  });
  console.log(`\nbench: guest exit ${r.exitCode}, boot ${(r.timings.bootMs / 1000).toFixed(1)} s, total ${(r.timings.totalMs / 1000).toFixed(1)} s`);
  process.exit(r.exitCode);
} catch (e) {
  if (e instanceof RigError) {
    console.error(e.message);
    process.exit(2);
  }
  throw e;
}
