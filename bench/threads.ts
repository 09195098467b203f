/**
 * Where a process's CPU time went, by kind of thread, from /proc/PID/task/TID/stat (user and system time, in clock
 * ticks of 10 ms): the JavaScript thread ("bun" or "gorb"), JavaScriptCore's compiler threads ("JITWorker"), its
 * garbage collector's helpers ("HeapHelper"), its page warm-up ("JSCWarmUp"), gorb's kernel dump thread ("Worker"),
 * and so on. On the guest's two emulated CPUs these threads compete with the JavaScript thread and the client, so
 * bench/gorb-guest.ts prints them under the apply and the REST figures, and bench/checks-guest.ts per checker.
 * Linux only; a thread that ends between two readings loses its share.
 */
import { readFileSync, readdirSync } from "node:fs";

/** CPU time by kind of thread (its name without trailing digits): user and system ms. */
export type ThreadCpu = ReadonlyMap<string, { readonly user: number; readonly system: number }>;

/** The CPU time `pid`'s threads have used so far, by kind. */
export function threadCpu(pid: number): ThreadCpu {
  const out = new Map<string, { user: number; system: number }>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    } catch {
      continue; // the thread ended
    }
    const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")).replace(/\d+$/, "");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const kind = out.get(name) ?? { user: 0, system: 0 };
    kind.user += Number(fields[11]) * 10;
    kind.system += Number(fields[12]) * 10;
    out.set(name, kind);
  }
  return out;
}

/** What each kind of thread used between two readings, largest first: "bun 2,900 ms (sys 390), JITWorker ...". */
export function threadCpuText(before: ThreadCpu, after: ThreadCpu): string {
  const used = [...after].map(([name, a]) => {
    const b = before.get(name) ?? { user: 0, system: 0 };
    return { name, user: a.user - b.user, system: a.system - b.system };
  });
  return used
    .filter((u) => u.user + u.system > 0)
    .sort((x, y) => y.user + y.system - (x.user + x.system))
    .map((u) => `${u.name} ${(u.user + u.system).toLocaleString("en-US")} ms (sys ${u.system})`)
    .join(", ");
}

/** The CPU time (user + system) `pid` has used so far, ended threads included, in clock ticks of 10 ms; 0 if it is gone. */
export function processTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

/**
 * Waits, in `stepS` steps, until `ticks()` (a CPU figure in clock ticks of 10 ms: a process's, or its compiler
 * threads') grew by at most `percent` of one CPU over the last step, or `maxS` passed. Under emulation a fresh bun
 * process goes on compiling for seconds after it first answers. The seconds waited, and the last step's percent.
 */
export async function waitForQuiet(ticks: () => number, o: { readonly stepS: number; readonly percent: number; readonly maxS: number }): Promise<{ seconds: number; lastPercent: number }> {
  let waited = 0;
  let percent = Number.POSITIVE_INFINITY;
  while (waited < o.maxS) {
    const before = ticks();
    await Bun.sleep(o.stepS * 1000);
    waited += o.stepS;
    percent = (ticks() - before) / o.stepS; // ticks of 10 ms per second = percent of one CPU
    if (percent <= o.percent) break;
  }
  return { seconds: waited, lastPercent: percent };
}
