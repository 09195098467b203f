/**
 * `npm run bench`: ONE boot of the rig's real-kernel guest (qemu TCG, Debian cloud kernel) that runs
 *   1. bench/ipvs-apply-guest.ts: gorb's kernel driver vs `ipvsadm -R` / `-Ln` (BENCH_SERVICES, BENCH_DESTS,
 *      BENCH_ROUNDS), and
 *   2. bench/gorb-guest.ts: the daemon-level figures of issue 14 (`gorb apply -f` vs `ipvsadm -R`, REST PUTs vs
 *      GETs, API p99 during an apply, restore at start), sizes from BENCH_* (see that file's comment),
 *   3. bench/status-guest.ts (section `status`, with the compiled executable built here first): `gorb status` of
 *      1,000 x 10 vs `ipvsadm -Ln --stats` (BENCH_STATUS_SIZE, BENCH_STATUS_RUNS),
 * and prints each figure with its anchor and the ratio. It prints; it asserts nothing. Every BENCH_* variable of
 * the host's environment is passed into the guest. Exit: the guest's status (non-zero when a script crashed), 2
 * when the rig itself failed.
 */
import { buildGuestExecutable } from "../test/rig/compiled-exe.ts";
import { benchScript } from "./bench-script.ts";
import { benchInGuest } from "./guest-main.ts";

let bench: ReturnType<typeof benchScript>;
try {
  bench = benchScript(process.env);
} catch (e) {
  console.error((e as Error).message);
  process.exit(2);
}

await benchInGuest("bench", () => ({
  script: bench.script,
  timeoutMs: Number(process.env.GORB_RIG_TIMEOUT_MS ?? 40 * 60_000),
  memoryMb: 3072,
  ...(bench.withExecutable ? { extraFiles: [buildGuestExecutable()] } : {}),
}));
