/**
 * Programs gorb runs for its operator (exec health checks, quorum hooks), contained: nothing a program starts
 * outlives it. A program runs without a shell, in a session (and process group) of its own, in `/`, with stdin
 * /dev/null and its output discarded. `kill` (its timeout) kills its process group.
 *
 * Killing the group is not enough: a process the program put in a session of its own (`setsid`), or a daemon
 * that forked twice, is in another group, and once its parent exits it is re-parented away from the program. So
 * gorb makes itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER): such a process becomes gorb's child, not
 * init's, and every child of gorb that is not a program started here and still running is an orphan of one. Each
 * time a program has exited (by itself or killed), the orphans are swept: each with all its descendants is stopped
 * (SIGSTOP: it forks no more), then killed (SIGKILL), then reaped (Bun reaps only what it spawned). A process
 * forked in the instant between a stop and the kill is re-parented to gorb in turn: the sweep is repeated while
 * it finds live orphans. An orphan is any program's, also one of a program still running (a daemon it started):
 * it is killed at the next sweep.
 *
 * A child in gorb's own session is not an orphan: a program started here runs in a session of its own, and no
 * process can join a session but its creator's descendants, so nothing a program starts is ever in gorb's. So a
 * child gorb starts otherwise (Bun.spawn without `detached`, as a test starts etcd beside exec checks) is left
 * alone; one that leaves gorb's session (a daemon's setsid) is taken for an orphan.
 */
import { readdirSync, readFileSync } from "node:fs";
import { becomeChildSubreaper, reapIfEnded } from "../ffi/process.ts";

/** A program started by spawnContained. */
export interface ContainedProgram {
  readonly pid: number;
  /**
   * Settles once the program has exited (and its orphans have been swept): its exit status, and the signal that
   * killed it (null when it exited).
   */
  readonly exited: Promise<{ readonly status: number; readonly signal: string | null }>;
  /** SIGKILL to the program's process group (the timeout); what it left elsewhere is swept once it has exited. */
  kill(): void;
}

/** The pids of the programs started here and still running: gorb's only children that are not orphans. */
const running = new Set<number>();

let subreaper = false;
let resweep: ReturnType<typeof setTimeout> | null = null;

/** How long after a sweep that killed something the next one looks again (to reap the dead, catch a late fork). */
const RESWEEP_MS = 50;

/** spawnContained starts `argv` with exactly `env`; throws as Bun.spawn does when it cannot start. See the module comment. */
export function spawnContained(argv: readonly string[], env: Readonly<Record<string, string>>): ContainedProgram {
  if (!subreaper) {
    becomeChildSubreaper();
    subreaper = true;
  }
  const child = Bun.spawn([...argv], { env: { ...env }, cwd: "/", stdin: "ignore", stdout: "ignore", stderr: "ignore", detached: true });
  const pid = child.pid;
  running.add(pid);
  const ended = () => {
    running.delete(pid);
    sweepOrphans();
  };
  const exited = child.exited.then(
    (status) => {
      ended();
      const sig = child.signalCode;
      return { status, signal: sig === null || sig === undefined ? null : String(sig) };
    },
    (err: unknown) => {
      ended();
      throw err;
    },
  );
  return {
    pid,
    exited,
    kill: () => {
      if (!signal(-pid, "SIGKILL")) child.kill("SIGKILL");
    },
  };
}

/** Send `sig` to `pid` (a negative one: a process group); false when there is none (ESRCH) or it cannot be signalled. */
function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** The children of `pid`, of all its threads (/proc/PID/task/TID/children); none when it is gone. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8");
    } catch {
      continue;
    }
    for (const c of text.split(" ")) if (c.trim() !== "") out.push(Number(c));
  }
  return out;
}

/** Stop `root` and all its descendants (so none forks again), then kill them all. */
function killTree(root: number): void {
  const stopped = new Set<number>();
  const stack = [root];
  for (let pid = stack.pop(); pid !== undefined; pid = stack.pop()) {
    if (stopped.has(pid) || !signal(pid, "SIGSTOP")) continue;
    stopped.add(pid);
    stack.push(...childrenOf(pid));
  }
  for (const pid of stopped) signal(pid, "SIGKILL");
}

/** The session id of `pid` (/proc/PID/stat, the field after the state, ppid, pgrp); null when it is gone. */
function sessionOf(pid: number | "self"): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // After "PID (COMM) ": state ppid pgrp session ... (COMM may hold spaces and parentheses: the last ")" ends it).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[3]);
  } catch {
    return null;
  }
}

/** gorb's own session, read at the first sweep (gorb never leaves it). */
let ownSession: number | null = null;

/** Reap the dead orphans and kill the live ones with their descendants; again a little later while some lived. */
function sweepOrphans(): void {
  let killed = false;
  ownSession ??= sessionOf("self");
  const own = ownSession;
  for (const pid of childrenOf(process.pid)) {
    // Started by gorb itself, not by a program (see the module comment): neither killed nor reaped (Bun reaps it).
    if (running.has(pid) || (own !== null && sessionOf(pid) === own) || reapIfEnded(pid)) continue;
    killTree(pid);
    killed = true;
  }
  if (killed && resweep === null) {
    resweep = setTimeout(() => {
      resweep = null;
      sweepOrphans();
    }, RESWEEP_MS);
    resweep.unref();
  }
}
