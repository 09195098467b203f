/**
 * The `exec` checker (keepalived's MISC_CHECK): run an operator's program; exit status 0 is a pass, any other
 * status (or a kill by signal) a fail. The monitor's timeout kills it (SIGKILL). No shell unless `args.shell` is
 * true; the program's output is discarded (never shown: it is not the API's to reveal); stdin is /dev/null.
 *
 * The program runs contained (../../contained-spawn.ts): its process group is killed at the timeout, and once it
 * has exited whatever it left running is killed, also in a session of its own (`setsid`) or a daemon forked twice:
 * a shell script's `curl` or `sleep` (or anything it put in the background) does not outlive its check. Killing
 * the program alone, or its group, left them running, one more per check.
 *
 * Environment (nothing of gorb's own environment leaks in): PATH=/usr/sbin:/usr/bin:/sbin:/bin,
 * GORB_HOST and GORB_PORT (the probed address), GORB_TIMEOUT_MS (the check's timeout). The working directory is
 * `/`, not gorb's: a relative path in a check (`./lib.sh`, a shell command) never reaches the directory gorb was
 * started from.
 *
 * Programs run with gorb's privileges (root on a load balancer), so they must live under an allowed directory
 * (DEFAULT_EXEC_DIRS, or the monitor's `execDirs`): an API client can only pick among the programs an operator
 * installed there, not run arbitrary commands. A program outside them, or one that cannot be started, is a
 * check error (local), which never changes the backend's state; so is a shell command that exits 126 or 127, the
 * shell's word for a program it could not execute or find.
 */
import { realpathSync } from "node:fs";
import { errorCode } from "../../errno.ts";
import { type CancelProbe, type CheckResult, type Checker, checkerOf, elapsedSince, formatHostPort } from "../checker.ts";
import { type ContainedProgram, spawnContained } from "../../contained-spawn.ts";
import type { ExecProbe, ProbeTarget } from "../options.ts";

/** DEFAULT_EXEC_DIRS: where exec checks may run programs from unless the monitor says otherwise. */
export const DEFAULT_EXEC_DIRS: readonly string[] = ["/etc/gorb/checks"];

const PATH = "/usr/sbin:/usr/bin:/sbin:/bin";

/** allowedProgram resolves argv[0] (symlinks too) and says whether it lies under one of `dirs`. */
function allowedProgram(exe: string, dirs: readonly string[]): boolean {
  let real: string;
  try {
    real = realpathSync(exe);
  } catch {
    return true; // let the spawn report ENOENT/EACCES as a check error
  }
  return dirs.some((d) => {
    let dir: string;
    try {
      dir = realpathSync(d);
    } catch {
      return false;
    }
    return real.startsWith(dir.endsWith("/") ? dir : `${dir}/`);
  });
}

/**
 * The exit statuses a POSIX shell keeps for a command it could not run (126: found but not executable, 127: not
 * found). A shell command's program is not checked before it runs (the shell finds it), so these are what a missing
 * or non-executable program gives there: a check error, as it is when the program is run without a shell.
 */
const SHELL_CANNOT_RUN: Readonly<Record<number, string>> = { 126: "the shell cannot execute the command", 127: "the shell cannot find the command" };

/** execChecker builds a checker for one ExecProbe; `timeoutMs` goes into the environment. */
export function execChecker(probe: ExecProbe, timeoutMs: number, dirs: readonly string[] = DEFAULT_EXEC_DIRS): Checker {
  const program = probe.shell ? (probe.argv[2] ?? "") : (probe.argv[0] as string);
  const name = probe.shell ? "shell command" : program;
  const run = (target: ProbeTarget, done: (r: CheckResult) => void, released: () => void): CancelProbe => {
    const start = performance.now();
    const where = formatHostPort(target);
    const local = (code: string, why: string) => {
      done({ ok: false, durationMs: elapsedSince(start), message: `check error: exec ${name} for ${where}: ${why}`, kind: "local-error", code });
      released();
      return () => {};
    };
    if (!probe.shell && !allowedProgram(program, dirs)) return local("EPERM", `not under an allowed directory (${dirs.join(", ")})`);
    if (probe.shell && !dirs.includes("/")) {
      // A shell command can run anything: it is allowed only when "/" is an allowed directory.
      return local("EPERM", `shell commands need "/" among the allowed directories`);
    }
    let child: ContainedProgram;
    try {
      child = spawnContained(probe.argv, { PATH, GORB_HOST: target.host, GORB_PORT: String(target.port), GORB_TIMEOUT_MS: String(timeoutMs) });
    } catch (err) {
      const code = errorCode(err) || "ESPAWN";
      return local(code, `cannot start: ${code}`);
    }
    let cancelled = false;
    child.exited.then(
      ({ status, signal }) => {
        released();
        if (cancelled) return;
        const code = signal !== null ? signal : `exit ${status}`;
        const cannotRun = probe.shell && signal === null ? SHELL_CANNOT_RUN[status] : undefined;
        if (cannotRun !== undefined) done({ ok: false, durationMs: elapsedSince(start), message: `check error: exec ${name} for ${where}: ${code} (${cannotRun})`, kind: "local-error", code });
        else if (status === 0) done({ ok: true, durationMs: elapsedSince(start), message: `exec ${name} for ${where}: exit 0`, kind: "pass", code });
        else done({ ok: false, durationMs: elapsedSince(start), message: `exec ${name} for ${where}: ${code}`, kind: "fail", code });
      },
      () => released(),
    );
    return () => {
      if (cancelled) return;
      cancelled = true;
      child.kill();
    };
  };
  return checkerOf(run, (t, when, why) => `${why} ${when} exec ${name} for ${formatHostPort(t)}`);
}
