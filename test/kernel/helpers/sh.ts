/**
 * Runs commands inside the rig guest. Every failure throws with the command line, exit status and stderr.
 *
 * NB: busybox sh prefers its own applets, and busybox `ip` has no `netns`: call iproute2 as {@link IP}.
 */

/** iproute2's `ip` (full path: busybox's applet lacks netns support). */
export const IP = "/usr/sbin/ip";

/** Debian's ipvsadm. */
export const IPVSADM = "/usr/sbin/ipvsadm";

/** A command that exited non-zero or could not start. */
export class CommandError extends Error {
  constructor(
    message: string,
    readonly argv: readonly string[],
    readonly exitCode: number | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(message);
    this.name = "CommandError";
  }
}

/** Runs `argv` to completion and returns its stdout; throws {@link CommandError} on a non-zero exit. */
export function run(argv: readonly string[], opts: { stdin?: string; cwd?: string } = {}): string {
  let proc: ReturnType<typeof Bun.spawnSync>;
  try {
    proc = Bun.spawnSync([...argv], {
      cwd: opts.cwd,
      stdin: opts.stdin === undefined ? "ignore" : new TextEncoder().encode(opts.stdin),
      stdout: "pipe",
      stderr: "pipe",
    });
  } catch (err) {
    throw new CommandError(`cannot start \`${argv.join(" ")}\`: ${err instanceof Error ? err.message : String(err)}`, argv, null, "", "");
  }
  const stdout = proc.stdout ? proc.stdout.toString() : "";
  const stderr = proc.stderr ? proc.stderr.toString() : "";
  if (proc.exitCode !== 0) {
    const status = proc.exitCode === null ? `killed by ${proc.signalCode ?? "a signal"}` : `exit ${proc.exitCode}`;
    throw new CommandError(`\`${argv.join(" ")}\` failed (${status}): ${stderr.trim() || stdout.trim() || "no output"}`, argv, proc.exitCode, stdout, stderr);
  }
  return stdout;
}

/**
 * Runs `argv` to completion without blocking this thread, so several commands can run side by side on the guest's
 * CPUs; returns its stdout and throws {@link CommandError} like {@link run}.
 */
export async function runAsync(argv: readonly string[]): Promise<string> {
  let proc: ReturnType<typeof Bun.spawn<"ignore", "pipe", "pipe">>;
  try {
    proc = Bun.spawn([...argv], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  } catch (err) {
    throw new CommandError(`cannot start \`${argv.join(" ")}\`: ${err instanceof Error ? err.message : String(err)}`, argv, null, "", "");
  }
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (exitCode !== 0) {
    const status = proc.signalCode !== null ? `killed by ${proc.signalCode}` : `exit ${exitCode}`;
    throw new CommandError(`\`${argv.join(" ")}\` failed (${status}): ${stderr.trim() || stdout.trim() || "no output"}`, argv, exitCode, stdout, stderr);
  }
  return stdout;
}

/** Runs a shell snippet with `/bin/sh -c` and returns its stdout; throws {@link CommandError} on failure. */
export function sh(script: string): string {
  return run(["/bin/sh", "-c", script]);
}

/** Runs iproute2's `ip` with `args`. */
export function ip(...args: string[]): string {
  return run([IP, ...args]);
}

/** Runs `argv` inside network namespace `ns` (through `ip netns exec`). */
export function inNetns(ns: string, argv: readonly string[]): string {
  return run([IP, "netns", "exec", ns, ...argv]);
}

/** Runs ipvsadm with `args` and returns its stdout. */
export function ipvsadm(...args: string[]): string {
  return run([IPVSADM, ...args]);
}
