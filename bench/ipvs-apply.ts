/**
 * `npm run bench`: boots the rig's real-kernel guest once and runs bench/ipvs-apply-guest.ts there:
 * 1,000 services x 10 destinations applied through gorb's kernel driver and through `ipvsadm -R`,
 * then listed both ways; prints each time and the ratio gorb/ipvsadm.
 * Sizes: BENCH_SERVICES, BENCH_DESTS, BENCH_ROUNDS (passed into the guest).
 */
import { benchInGuest } from "./guest-main.ts";

const env = ["BENCH_SERVICES", "BENCH_DESTS", "BENCH_ROUNDS"]
  .filter((k) => process.env[k] !== undefined)
  .map((k) => `${k}=${Number(process.env[k])}`)
  .join(" ");

await benchInGuest("bench", () => ({
  script: `${env} bun bench/ipvs-apply-guest.ts`,
  timeoutMs: 20 * 60_000,
  memoryMb: 3072,
}));
