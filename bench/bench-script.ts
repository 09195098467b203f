/**
 * The script `npm run bench` runs inside a guest (the rig's qemu guest, or the user-mode Linux of bench/uml.ts):
 * bench/ipvs-apply-guest.ts, bench/gorb-guest.ts and, with section `status`, bench/status-guest.ts, each in turn,
 * with every BENCH_* variable of the host's environment exported into it, and every BUN_JSC_* one (the JavaScript
 * engine's options, read by the daemon and the CLI at their start: `BUN_JSC_useFTLJIT=0`, for one). The guest starts it in the project's
 * directory with `bun` on its PATH.
 */

/** Characters a BENCH_* value may hold to be passed into the guest's shell unquoted. */
const SAFE_VALUE = /^[A-Za-z0-9_.,x-]*$/;

export interface BenchScript {
  readonly script: string;
  /** The compiled executable (/usr/bin/gorb in the guest) is needed: section `status`, or BENCH_GORB not `source`. */
  readonly withExecutable: boolean;
}

/** benchScript builds the guest's script from `env`; a BENCH_* value it cannot pass is an error naming it. */
export function benchScript(env: Record<string, string | undefined>): BenchScript {
  const passed: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (!(name.startsWith("BENCH_") || name.startsWith("BUN_JSC_")) || value === undefined) continue;
    if (!/^(BENCH_[A-Z0-9_]+|BUN_JSC_[A-Za-z0-9_]+)$/.test(name) || !SAFE_VALUE.test(value)) {
      throw new Error(`${name}=${JSON.stringify(value)}: only letters, digits and _ . , x - are passed into the guest`);
    }
    passed.push(`${name}=${value}`);
  }
  const envPrefix = passed.length > 0 ? `export ${passed.join(" ")}\n` : "";
  const sections = new Set((env.BENCH_SECTIONS ?? "apply,rest,latency,restore,status").split(",").map((s) => s.trim()));
  const withStatus = sections.has("status");
  const script = `${envPrefix}bun bench/ipvs-apply-guest.ts; a=$?
bun bench/gorb-guest.ts; b=$?
${withStatus ? "bun bench/status-guest.ts; c=$?" : "c=0"}
echo "bench: ipvs-apply-guest exit $a, gorb-guest exit $b, status-guest exit $c"
[ "$a" = 0 ] && [ "$b" = 0 ] && [ "$c" = 0 ]
`;
  return { script, withExecutable: withStatus || env.BENCH_GORB !== "source" };
}
