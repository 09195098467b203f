/**
 * `npm run bench:status`: builds the compiled executable, boots the rig guest once with it at /usr/bin/gorb and runs
 * bench/status-guest.ts there: `gorb status` of BENCH_STATUS_SIZE (1000x10) against `ipvsadm -Ln --stats` of the
 * same table, with the ratio. The same section runs in `npm run bench` (BENCH_SECTIONS=status). Exit: the guest's
 * status, 2 when the rig itself failed.
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

await benchInGuest("bench:status", () => ({
  script: `${passed.length > 0 ? `export ${passed.join(" ")}\n` : ""}exec bun bench/status-guest.ts\n`,
  timeoutMs: Number(process.env.GORB_RIG_TIMEOUT_MS ?? 20 * 60_000),
  memoryMb: 3072,
  extraFiles: [buildGuestExecutable()],
}));
