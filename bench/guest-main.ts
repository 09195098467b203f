/**
 * The host side of a guest benchmark: boot the rig's real-kernel guest once with `options`, stream its output,
 * print the boot and run times, and exit with the guest script's status (2 when the rig itself failed, with the
 * reason). Every `npm run bench*` entry point that runs in the guest ends here.
 */
import { type GuestRunOptions, RigError, runInGuest } from "../test/rig/qemu.ts";

export async function benchInGuest(label: string, options: () => Omit<GuestRunOptions, "onOutput">): Promise<never> {
  try {
    const r = await runInGuest({ ...options(), onOutput: (s) => process.stdout.write(s) });
    const t = r.timings;
    const s = (ms: number) => (ms / 1000).toFixed(1);
    console.log(`\n${label}: guest exit ${r.exitCode}; boot ${s(t.bootMs)} s, script ${s(t.scriptMs)} s, total ${s(t.totalMs)} s`);
    process.exit(r.exitCode);
  } catch (e) {
    if (e instanceof RigError) {
      console.error(e.message);
      process.exit(2);
    }
    throw e;
  }
}

/** `export NAME=value` for each of `names` set in the host's environment (digits and x only), for a guest script. */
export function sizeEnvLine(names: readonly string[]): string {
  const passed = names.flatMap((name) => {
    const value = process.env[name];
    if (value === undefined) return [];
    if (!/^[0-9x]+$/.test(value)) {
      console.error(`${name}=${JSON.stringify(value)}: expected digits (and x)`);
      process.exit(2);
    }
    return [`${name}=${value}`];
  });
  return passed.length > 0 ? `export ${passed.join(" ")}\n` : "";
}
