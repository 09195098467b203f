/**
 * `bun bench/status-breakdown.ts`: builds the compiled executable, boots the rig guest once and runs
 * bench/status-breakdown-guest.ts there: each part of `gorb status` of BENCH_STATUS_SIZE (1000x10) measured alone,
 * next to `ipvsadm -Ln --stats`. Exit: the guest's status, 2 when the rig itself failed.
 */
import { buildGuestExecutable } from "../test/rig/compiled-exe.ts";
import { benchInGuest, sizeEnvLine } from "./guest-main.ts";

const env = sizeEnvLine(["BENCH_STATUS_SIZE", "BENCH_STATUS_RUNS"]);

await benchInGuest("status-breakdown", () => ({
  script: `${env}exec bun bench/status-breakdown-guest.ts\n`,
  timeoutMs: Number(process.env.GORB_RIG_TIMEOUT_MS ?? 20 * 60_000),
  memoryMb: 3072,
  extraFiles: [buildGuestExecutable()],
}));
