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
