/**
 * Host-side process helpers for the rig builder. Every failure names the command, its exit code and its stderr,
 * so a broken rig build explains itself.
 */

/** Result of a finished host command. */
export interface HostCommandResult {
  stdout: string;
  stderr: string;
}

/** Thrown when a host command cannot be started or exits non-zero. */
export class HostCommandError extends Error {
  constructor(
    message: string,
    readonly argv: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(message);
    this.name = "HostCommandError";
  }
}

/**
 * Runs `argv` to completion and returns its output; throws {@link HostCommandError} when it cannot start or
 * exits non-zero.
 */
export function runHost(argv: readonly string[], opts: { cwd?: string; env?: Record<string, string> } = {}): HostCommandResult {
  let proc: ReturnType<typeof Bun.spawnSync>;
  try {
    proc = Bun.spawnSync([...argv], {
      cwd: opts.cwd,
      env: opts.env ? { ...process.env, ...opts.env } : process.env,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new HostCommandError(`cannot start \`${argv.join(" ")}\`: ${reason}`, argv, null, "");
  }
  const stdout = proc.stdout ? proc.stdout.toString() : "";
  const stderr = proc.stderr ? proc.stderr.toString() : "";
  if (proc.exitCode !== 0) {
    const why = proc.exitCode === null ? `was killed by ${proc.signalCode ?? "a signal"}` : `exited with ${proc.exitCode}`;
    throw new HostCommandError(
      `\`${argv.join(" ")}\` ${why}${stderr.trim() ? `: ${stderr.trim()}` : ""}`,
      argv,
      proc.exitCode,
      stderr,
    );
  }
  return { stdout, stderr };
}

/** Returns the absolute path of `name` on PATH (or the usual sbin directories), or throws naming the package. */
export function requireTool(name: string, debianPackage: string): string {
  const found = Bun.which(name, { PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin:/usr/bin:/bin` });
  if (!found) {
    throw new Error(`rig needs \`${name}\` (Debian package ${debianPackage}); run .ci/rig-deps.sh`);
  }
  return found;
}
