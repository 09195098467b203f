/**
 * Quorum hooks (keepalived's `quorum_up` / `quorum_down`): when a service goes down or comes back up, gorb runs
 * the program its field names, without a shell and without arguments, with an environment describing the
 * service (src/core/failover.ts hookEnvironment: GORB_SERVICE, GORB_STATE, GORB_HEALTHY, GORB_QUORUM, ...).
 *
 * Programs run with gorb's privileges, so, like exec health checks, only programs under the hook directory
 * (--hook-dir, default /etc/gorb/hooks) run: the API refuses other paths, and the runner checks the real path
 * (symlinks resolved) again. A hook never blocks the daemon: it is started and left to run; one that outlives
 * the timeout is killed (SIGKILL) with its whole process group: it runs in a session of its own, so a shell
 * script's `curl` or `sleep` (or anything it put in the background) dies with it; killing the script alone left
 * them running past the timeout. A hook that cannot start, exits non-zero or is killed is logged, nothing more.
 * Its stdin is /dev/null and its output is discarded.
 */
import { realpathSync } from "node:fs";
import type { QuorumHookRunner } from "../core/failover.ts";
import type { Logger } from "../log.ts";

/** True when `program`'s real path lies under `dir`'s real path. */
function underDir(program: string, dir: string): boolean {
  try {
    const real = realpathSync(program);
    const root = realpathSync(dir);
    return real.startsWith(root.endsWith("/") ? root : `${root}/`);
  } catch {
    return false;
  }
}

/** A runner for Gorb's `hooks` option; see the module comment. */
export function quorumHookRunner(dir: string, timeoutMs: number, log: Logger): QuorumHookRunner {
  return (program, env) => {
    const what = `quorum hook ${program} (service ${JSON.stringify(env.GORB_SERVICE ?? "")} ${env.GORB_STATE ?? ""})`;
    if (!underDir(program, dir)) {
      log.error(`${what}: not run: not a program under ${dir}`);
      return;
    }
    let child: ReturnType<typeof Bun.spawn>;
    try {
      child = Bun.spawn([program], { env: { ...env }, stdin: "ignore", stdout: "ignore", stderr: "ignore", detached: true });
    } catch (error) {
      log.error(`${what}: cannot start: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, "SIGKILL"); // the hook leads its own process group: its children die with it
      } catch {
        child.kill("SIGKILL");
      }
    }, timeoutMs);
    child.exited.then(
      (status) => {
        clearTimeout(timer);
        if (timedOut) log.error(`${what}: killed after ${timeoutMs} ms`);
        else if (status !== 0) log.error(`${what}: exit ${status}`);
        else log.info(`${what}: done`);
      },
      (error: unknown) => {
        clearTimeout(timer);
        log.error(`${what}: ${String(error)}`);
      },
    );
  };
}
