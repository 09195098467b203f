/**
 * `npm run bench:status`: builds the compiled executable, boots the rig guest once with it at /usr/bin/gorb and runs
 * bench/status-guest.ts there: `gorb status` of BENCH_STATUS_SIZE (1000x10) against `ipvsadm -Ln --stats` of the
 * same table, with the ratio. The same section runs in `npm run bench` (BENCH_SECTIONS=status). Exit: the guest's
 * status, 2 when the rig itself failed.
 */
import { buildGuestExecutable } from "../test/rig/compiled-exe.ts";
import { benchInGuest, sizeEnvLine } from "./guest-main.ts";

const env = sizeEnvLine(["BENCH_STATUS_SIZE", "BENCH_STATUS_RUNS"]);

await benchInGuest("bench:status", () => ({
  script: `${env}exec bun bench/status-guest.ts\n`,
  timeoutMs: Number(process.env.GORB_RIG_TIMEOUT_MS ?? 20 * 60_000),
  memoryMb: 3072,
  extraFiles: [buildGuestExecutable()],
}));
