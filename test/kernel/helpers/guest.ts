/** Guards for tests under test/kernel, which need the rig guest's real IPVS kernel. */
import { existsSync } from "node:fs";

/**
 * Throws unless running inside the rig guest (GORB_RIG=1 and /proc/net/ip_vs present). Kernel tests call this in
 * `beforeAll`, so running them on the host fails with directions instead of misleading errors.
 */
export function assertInGuest(): void {
  if (process.env.GORB_RIG !== "1") {
    throw new Error("test/kernel runs only inside the qemu rig: use `bun run test/rig/kernel-suite.ts [paths...]`");
  }
  if (!existsSync("/proc/net/ip_vs")) {
    throw new Error("GORB_RIG=1 but /proc/net/ip_vs is missing: the rig's /init did not load ip_vs");
  }
}
