/**
 * Generic-netlink family resolution through libnl (genl_ctrl_resolve), with one retry after asking the
 * kernel to load the module, as keepalived does: MODULE_ALIAS_GENL_FAMILY autoloading does not work everywhere.
 */
import { openLibnl } from "../../ffi/libnl.ts";

/** The family id, or null when the kernel does not know the family even after a modprobe attempt. */
export function resolveGenlFamily(name: string, moduleName: string): number | null {
  const libnl = openLibnl();
  const first = libnl.resolveGenlFamily(name);
  if (first !== null) return first;
  tryModprobe(moduleName);
  return libnl.resolveGenlFamily(name);
}

/**
 * Where modprobe is looked for: the system's directories only. gorb runs as root, and the caller's PATH may hold a
 * relative entry (".", "bin") that would run a `modprobe` from the working directory as root.
 */
const MODPROBE_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";

/** Asks modprobe to load `moduleName`, found in MODPROBE_PATH only and run from "/"; a failure is ignored. */
function tryModprobe(moduleName: string): void {
  try {
    // Bounded: modprobe of a present or absent module returns in milliseconds; the timeout guards a hung one.
    Bun.spawnSync(["modprobe", moduleName], { env: { PATH: MODPROBE_PATH }, cwd: "/", stdout: "ignore", stderr: "ignore", timeout: 5000 });
  } catch {
    // No modprobe on this host (a container, a minimal image): the caller reports the family as missing.
  }
}

/**
 * The family id as the kernel knows it now, or null when it does not (no modprobe: after an ENOENT the driver asks
 * whether the family moved, e.g. because the ip_vs module was reloaded).
 */
export function lookupGenlFamily(name: string): number | null {
  return openLibnl().resolveGenlFamily(name);
}
