/**
 * The libc calls that keep what gorb's programs start (exec health checks, quorum hooks) under gorb: prctl to make
 * gorb a child subreaper, so that a process whose parent exits is re-parented to gorb instead of init, and
 * waitpid to reap such a process once it is dead (Bun reaps only the children it spawned). Loaded on first use.
 */
import { FFIType } from "bun:ffi";
import { errno, lazyLibc } from "./libc.ts";

const lib = lazyLibc({
  prctl: { args: [FFIType.i32, FFIType.u64, FFIType.u64, FFIType.u64, FFIType.u64], returns: FFIType.i32 },
  waitpid: { args: [FFIType.i32, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
});

const PR_SET_CHILD_SUBREAPER = 36;
const WNOHANG = 1;

/** Make the calling process a child subreaper (prctl(2) PR_SET_CHILD_SUBREAPER): 0, or -errno. */
export function becomeChildSubreaper(): number {
  return lib().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) === 0 ? 0 : -errno();
}

/** Reap the child `pid` if it has ended (waitpid(2) with WNOHANG): true when it was reaped. */
export function reapIfEnded(pid: number): boolean {
  return lib().waitpid(pid, new Int32Array(1), WNOHANG) === pid;
}
