/**
 * Processes seen from /proc, for tests that check a child (and what it started) was killed.
 */
import { existsSync, readFileSync } from "node:fs";

/** Whether `pid` is gone or a zombie (killed, not yet reaped by its new parent) within 2 s. */
export async function dead(pid: number): Promise<boolean> {
  for (const until = performance.now() + 2_000; performance.now() < until; await Bun.sleep(5)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      return true;
    }
    if (stat.split(") ")[1]?.startsWith("Z")) return true;
  }
  return false;
}

/** The pid a script wrote to `file`, once it is there. */
export async function pidIn(file: string): Promise<number> {
  while (!existsSync(file) || !readFileSync(file, "utf8").endsWith("\n")) await Bun.sleep(5);
  return Number(readFileSync(file, "utf8"));
}

/** Whether `pid` is gone, reaped too (no zombie left in /proc), within 2 s. */
export async function gone(pid: number): Promise<boolean> {
  for (const until = performance.now() + 2_000; performance.now() < until; await Bun.sleep(5)) if (!existsSync(`/proc/${pid}`)) return true;
  return false;
}
