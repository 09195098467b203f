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
import { benchInGuest } from "./guest-main.ts";

const SAFE_VALUE = /^[A-Za-z0-9_.,x-]*$/;
const passed: string[] = [];
for (const [name, value] of Object.entries(process.env)) {
  if (!name.startsWith("BENCH_") || value === undefined) continue;
  if (!/^BENCH_[A-Z0-9_]+$/.test(name) || !SAFE_VALUE.test(value)) {
    console.error(`${name}=${JSON.stringify(value)}: only letters, digits and _ . , x - are passed into the guest`);
    process.exit(2);
  }
  passed.push(`${name}=${value}`);
}
const envPrefix = passed.length > 0 ? `export ${passed.join(" ")}\n` : "";

const sections = new Set((process.env.BENCH_SECTIONS ?? "apply,rest,latency,restore,status").split(",").map((s) => s.trim()));
const withStatus = sections.has("status");
// The executable goes into the guest for the status section and for bench/gorb-guest.ts (unless BENCH_GORB=source).
const withExecutable = withStatus || process.env.BENCH_GORB !== "source";
const script = `${envPrefix}bun bench/ipvs-apply-guest.ts; a=$?
bun bench/gorb-guest.ts; b=$?
${withStatus ? "bun bench/status-guest.ts; c=$?" : "c=0"}
echo "bench: ipvs-apply-guest exit $a, gorb-guest exit $b, status-guest exit $c"
[ "$a" = 0 ] && [ "$b" = 0 ] && [ "$c" = 0 ]
`;

await benchInGuest("bench", () => ({
  script,
  timeoutMs: Number(process.env.GORB_RIG_TIMEOUT_MS ?? 40 * 60_000),
  memoryMb: 3072,
  ...(withExecutable ? { extraFiles: [buildGuestExecutable()] } : {}),
}));
