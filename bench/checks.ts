/**
 * `npm run bench:checks`: boots the rig's real-kernel guest once and runs bench/checks-guest.ts there:
 * keepalived (Debian's, copied in with its libraries) and `gorb serve` checking the same 1,000 backends every
 * second, TCP then HTTP: the checks the backends really saw, each one's CPU, CPU per check and the ratios
 * gorb/keepalived (total and per check; keepalived also with a delay_loop matched to gorb's rate, see
 * bench/checks-guest.ts). Printed, not asserted.
 * Knobs (passed into the guest): BENCH_BACKENDS (1000), BENCH_SECONDS (30), BENCH_WARMUP (8),
 * BENCH_KINDS (tcp,http), BENCH_CHECKERS (keepalived,gorb), BENCH_INTERVAL (1: seconds between checks of one
 * backend; a larger one gives a load both checkers can sustain on a slow guest), BENCH_IDLE (5: seconds of gorb
 * idle measured first; 0 skips), BENCH_MATCH (1: 0 skips the matched keepalived run), BENCH_SETTLE_MAX (60: most
 * seconds added to gorb's warm-up while its JIT compiler threads still work, see bench/checks-guest.ts).
 */
import { hostToolFiles } from "../test/rig/initramfs.ts";
import { benchInGuest } from "./guest-main.ts";

const env = ["BENCH_BACKENDS", "BENCH_SECONDS", "BENCH_WARMUP", "BENCH_KINDS", "BENCH_CHECKERS", "BENCH_INTERVAL", "BENCH_IDLE", "BENCH_MATCH", "BENCH_SETTLE_MAX"]
  .filter((k) => process.env[k] !== undefined)
  .map((k) => `${k}=${JSON.stringify(process.env[k])}`)
  .join(" ");

await benchInGuest("bench", () => ({
  script: `${env} bun bench/checks-guest.ts`,
  timeoutMs: 30 * 60_000,
  memoryMb: 3072,
  extraFiles: hostToolFiles("/usr/sbin/keepalived", "keepalived"),
}));
