/** Where the rig keeps its inputs and build products. Everything lives under `.rig-cache/` (gitignored). */
import { join, resolve } from "node:path";

/** The project root (the directory holding package.json). */
export const PROJECT_ROOT = resolve(import.meta.dir, "..", "..");

/** Root of the rig's cache; override with GORB_RIG_CACHE to share one cache between work trees. */
export const RIG_CACHE = process.env.GORB_RIG_CACHE ? resolve(process.env.GORB_RIG_CACHE) : join(PROJECT_ROOT, ".rig-cache");

/** Unpacked kernels, one directory per Debian package version. */
export const KERNEL_CACHE = join(RIG_CACHE, "kernel");

/** Built initramfs archives. */
export const INITRAMFS_CACHE = join(RIG_CACHE, "initramfs");
