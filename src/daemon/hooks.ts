/**
 * Quorum hooks (keepalived's `quorum_up` / `quorum_down`): when a service goes down or comes back up, gorb runs
 * the program its field names, without a shell and without arguments, with an environment describing the
 * service (src/core/failover.ts hookEnvironment: GORB_SERVICE, GORB_STATE, GORB_HEALTHY, GORB_QUORUM, ...).
 *
 * Programs run with gorb's privileges, so, like exec health checks, only programs under the hook directory
 * (--hook-dir, default /etc/gorb/hooks) run: the API refuses other paths, and the runner checks the real path
 * (symlinks resolved) again. A hook never blocks the daemon: it is started and left to run; one that outlives
 * the timeout is killed (SIGKILL) with its whole process group. It runs contained (../contained-spawn.ts): once it
 * has exited (or been killed), whatever it left running is killed too, also in a session of its own (`setsid`):
 * a `quorum_down`'s `curl ... &` could otherwise outlive the timeout and act after the `quorum_up` that followed.
 * A hook that cannot start, exits non-zero or is killed is logged, nothing more.
 * Its stdin is /dev/null, its output is discarded, and it runs in `/` (as exec checks do), not in gorb's working
 * directory.
 *
 * A service's hooks run one at a time, in order: a flapping service's slow `quorum_down` and the `quorum_up` after
 * it would otherwise run at once and could end in either order, leaving what they drive (a DNS record, a page) in
 * the older state. While one runs, only the service's latest change waits; one it supersedes is dropped and logged.
 */
import { realpathSync } from "node:fs";
import { type ContainedProgram, spawnContained } from "../contained-spawn.ts";
import type { QuorumHookRunner } from "../core/failover.ts";
import type { Logger } from "../log.ts";
import { errorMessage } from "../core/errors.ts";

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
  /** By service: the hook that waits for the running one to end (null: none waits). No entry: none runs. */
  const waiting = new Map<string, { readonly what: string; readonly start: () => void } | null>();
  const finished = (service: string): void => {
    const next = waiting.get(service);
    if (next === undefined) return;
    if (next === null) waiting.delete(service);
    else {
      waiting.set(service, null);
      next.start();
    }
  };
  return (program, env) => {
    const service = env.GORB_SERVICE ?? "";
    const what = `quorum hook ${program} (service ${JSON.stringify(service)} ${env.GORB_STATE ?? ""})`;
    const start = () => {
      if (!runHook(program, env, what, dir, timeoutMs, log, () => finished(service))) finished(service);
    };
    if (!waiting.has(service)) {
      waiting.set(service, null);
      start();
      return;
    }
    const superseded = waiting.get(service);
    if (superseded !== undefined && superseded !== null) log.warn(`${superseded.what}: not run: superseded by a later change of the service`);
    waiting.set(service, { what, start });
  };
}

/** Start one hook; `ended` is called once it has ended. False when it did not start (logged; `ended` is not called). */
function runHook(
  program: string,
  env: Readonly<Record<string, string>>,
  what: string,
  dir: string,
  timeoutMs: number,
  log: Logger,
  ended: () => void,
): boolean {
  if (!underDir(program, dir)) {
    log.error(`${what}: not run: not a program under ${dir}`);
    return false;
  }
  let child: ContainedProgram;
  try {
    child = spawnContained([program], env);
  } catch (error) {
    log.error(`${what}: cannot start: ${errorMessage(error)}`);
    return false;
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill();
  }, timeoutMs);
  child.exited.then(
    ({ status }) => {
      clearTimeout(timer);
      if (timedOut) log.error(`${what}: killed after ${timeoutMs} ms`);
      else if (status !== 0) log.error(`${what}: exit ${status}`);
      else log.info(`${what}: done`);
      ended();
    },
    (error: unknown) => {
      clearTimeout(timer);
      log.error(`${what}: ${String(error)}`);
      ended();
    },
  );
  return true;
}
