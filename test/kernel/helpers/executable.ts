/**
 * The compiled executable inside the rig guest: `/usr/bin/gorb`, put there by kernel-suite.ts for `compiled*.test.ts`
 * files (test/rig/compiled-exe.ts builds it). Helpers to hide the system libnl from it, to run it with a clean
 * environment, to run its daemon, and to run ipvsadm against the hidden libnl.
 */
import { existsSync, mkdirSync, readdirSync, renameSync } from "node:fs";
import { basename, join } from "node:path";
import { parseIpvsadmList, type IpvsadmListing } from "./ipvsadm.ts";
import { CommandError, IPVSADM } from "./sh.ts";

/** Where the executable lives in the guest. */
export const GUEST_EXECUTABLE = "/usr/bin/gorb";

/**
 * Where the Debian package's files are in the guest for test/kernel/compiled-package.test.ts: its tree as `dpkg -x`
 * unpacks it (the maintainer scripts under DEBIAN/), without usr/bin/gorb, which is byte for byte
 * {@link GUEST_EXECUTABLE} (test/rig/compiled-exe.ts checks that on the host).
 */
export const GUEST_PACKAGE_ROOT = "/opt/gorb-deb";

/** Directories the dynamic loader searches in the guest (it has no ld.so.cache; /lib is a link to usr/lib). */
export const GUEST_LIBRARY_DIRS = ["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"] as const;

/** Where {@link hideLibnl} keeps libnl while it is hidden: only ipvsadm is pointed there (LD_LIBRARY_PATH). */
export const HIDDEN_LIBNL_DIR = "/opt/rig-libnl";

/** libnl's file names: libnl-3.so.200, libnl-genl-3.so.200 (and unversioned links if any). */
const LIBNL_FILE = /^libnl-(genl-)?3\.so(\.|$)/;

/** The environment the executable runs with: no LD_LIBRARY_PATH, no GORB_* from the test process, no colour. */
export const EXECUTABLE_ENV: Readonly<Record<string, string>> = {
  PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
  HOME: "/tmp",
  TMPDIR: "/tmp",
  NO_COLOR: "1",
  TERM: "dumb",
};

/** Every libnl file in the guest's library directories, as absolute paths, sorted. */
export function libnlInLibraryPaths(): string[] {
  const found = new Set<string>();
  const visit = (dir: string, depth: number): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // the directory does not exist
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory() && depth < 2 && entry.name !== "modules") visit(path, depth + 1);
      else if (LIBNL_FILE.test(entry.name)) found.add(path);
    }
  };
  for (const dir of GUEST_LIBRARY_DIRS) visit(dir, 0);
  return [...found].sort();
}

/**
 * Moves libnl out of the guest's library paths into {@link HIDDEN_LIBNL_DIR}; returns a function that moves it
 * back. Only inside the rig guest, whose root file system is the initramfs in memory.
 */
export function hideLibnl(): () => void {
  if (process.env.GORB_RIG !== "1") throw new Error("hideLibnl runs only inside the rig guest (GORB_RIG=1)");
  const present = libnlInLibraryPaths();
  if (present.length === 0) throw new Error(`no libnl in ${GUEST_LIBRARY_DIRS.join(", ")}: the rig's base initramfs carries it for ipvsadm`);
  mkdirSync(HIDDEN_LIBNL_DIR, { recursive: true });
  const moved: [from: string, to: string][] = [];
  for (const path of present) {
    const to = join(HIDDEN_LIBNL_DIR, basename(path));
    if (existsSync(to)) throw new Error(`cannot hide ${path}: ${to} exists (libnl twice in the library paths, or an earlier hideLibnl not undone)`);
    renameSync(path, to);
    moved.push([path, to]);
  }
  return () => {
    for (const [from, to] of moved) if (existsSync(to)) renameSync(to, from);
  };
}

/** What one run of the executable printed and returned. */
export interface ExecutableRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `gorb <args>` (the executable) to completion with {@link EXECUTABLE_ENV}; kills it after `timeoutMs`. */
export async function gorbExe(args: readonly string[], timeoutMs = 60_000): Promise<ExecutableRun> {
  const proc = Bun.spawn([GUEST_EXECUTABLE, ...args], { env: { ...EXECUTABLE_ENV }, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  try {
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { code, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}

/** Runs ipvsadm with the hidden libnl (LD_LIBRARY_PATH) and returns its stdout; throws {@link CommandError} on failure. */
export function ipvsadmWithHiddenLibnl(...args: string[]): string {
  const argv = [IPVSADM, ...args];
  const proc = Bun.spawnSync(argv, { env: { ...EXECUTABLE_ENV, LD_LIBRARY_PATH: HIDDEN_LIBNL_DIR }, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const stdout = proc.stdout.toString();
  const stderr = proc.stderr.toString();
  if (proc.exitCode !== 0) {
    throw new CommandError(`\`LD_LIBRARY_PATH=${HIDDEN_LIBNL_DIR} ${argv.join(" ")}\` failed (exit ${proc.exitCode}): ${stderr.trim() || stdout.trim() || "no output"}`, argv, proc.exitCode, stdout, stderr);
  }
  return stdout;
}

/** `ipvsadm -Ln` through {@link ipvsadmWithHiddenLibnl}, parsed. */
export function listIpvsWithHiddenLibnl(): IpvsadmListing {
  return parseIpvsadmList(ipvsadmWithHiddenLibnl("-L", "-n"));
}

/** A running `gorb serve` of the executable. */
export interface ServeProcess {
  readonly pid: number;
  /** Everything it printed so far (stdout and stderr interleaved as read). */
  output(): string;
  /** Sends SIGTERM and resolves with the exit code (SIGKILL after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<number>;
}

/**
 * Starts `gorb serve <args>` and resolves once `GET <url>/service` answers; rejects with everything the daemon
 * printed when it exits first or does not answer within `timeoutMs`.
 */
export async function startServe(args: readonly string[], url: string, timeoutMs = 90_000): Promise<ServeProcess> {
  const proc = Bun.spawn([GUEST_EXECUTABLE, "serve", "--no-state", ...args], { env: { ...EXECUTABLE_ENV }, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let text = "";
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>): Promise<void> => {
    for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
  };
  const pumped = Promise.all([pump(proc.stdout), pump(proc.stderr)]);
  const handle: ServeProcess = {
    pid: proc.pid,
    output: () => text,
    async stop(stopTimeoutMs = 30_000) {
      if (proc.exitCode === null) proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), stopTimeoutMs);
      const code = await proc.exited;
      clearTimeout(timer);
      await pumped;
      return code;
    },
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null) {
      await pumped;
      throw new Error(`gorb serve ${args.join(" ")} exited with ${proc.exitCode} before answering:\n${text}`);
    }
    try {
      const res = await fetch(`${url}/service`, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.ok) return handle;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await handle.stop();
      throw new Error(`gorb serve ${args.join(" ")} did not answer GET ${url}/service within ${timeoutMs} ms:\n${text}`);
    }
    await Bun.sleep(100);
  }
}
