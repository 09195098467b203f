/**
 * `bun bench/status-breakdown.ts`: builds the compiled executable, boots the rig guest once and runs
 * bench/status-breakdown-guest.ts there: each part of `gorb status` of BENCH_STATUS_SIZE (1000x10) measured alone,
 * next to `ipvsadm -Ln --stats`. Exit: the guest's status, 2 when the rig itself failed.
 */
import { buildGuestExecutable } from "../test/rig/compiled-exe.ts";
import { benchInGuest } from "./guest-main.ts";

const passed = ["BENCH_STATUS_SIZE", "BENCH_STATUS_RUNS"].flatMap((name) => {
  const value = process.env[name];
  if (value === undefined) return [];
  if (!/^[0-9x]+$/.test(value)) {
    console.error(`${name}=${JSON.stringify(value)}: expected digits (and x)`);
    process.exit(2);
  }
  return [`${name}=${value}`];
});

await benchInGuest("status-breakdown", () => ({
  script: `${passed.length > 0 ? `export ${passed.join(" ")}\n` : ""}exec bun bench/status-breakdown-guest.ts\n`,
  timeoutMs: Number(process.env.GORB_RIG_TIMEOUT_MS ?? 20 * 60_000),
  memoryMb: 3072,
  extraFiles: [buildGuestExecutable()],
}));
