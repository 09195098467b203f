/**
 * The IPVS sysctls gorb sets at start, in its own network namespace (/proc/sys/net/ipv4/vs/, which exists once
 * ip_vs is loaded; every namespace has its own), as kube-proxy, kube-router and Docker do:
 *
 *   expire_nodest_conn = 1          a connection whose destination was removed is expired at its next packet
 *                                   (the client sees a reset and reconnects to another backend) instead of its
 *                                   packets being dropped until it times out; since Linux 5.9 deleting a
 *                                   destination also expires its connections at once.
 *   expire_quiescent_template = 1   a persistence template pointing at a weight-0 destination expires when it is
 *                                   used, so returning clients of a persistent service go elsewhere and a drain
 *                                   can end; without it they keep landing on the drained backend.
 *
 * `conn_reuse_mode` is left alone (its default 1 reschedules reused ports, which drains need; 0 trades that for
 * throughput) and only reported, with the two above. A sysctl that cannot be written is a warning, never fatal.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { errorCode } from "../errno.ts";

/** The sysctls gorb sets, and the value it sets. */
const IPVS_SYSCTLS = { expire_nodest_conn: 1, expire_quiescent_template: 1 } as const;

/** The sysctls gorb reports. */
const REPORTED_SYSCTLS = ["expire_nodest_conn", "expire_quiescent_template", "conn_reuse_mode"] as const;

/** What applying the sysctls did: each value as read afterwards (null: unreadable), and the warnings. */
export interface SysctlReport {
  readonly values: Readonly<Record<string, number | null>>;
  readonly warnings: readonly string[];
}

/** The default directory of the IPVS sysctls. */
const IPVS_SYSCTL_DIR = "/proc/sys/net/ipv4/vs";

function read(dir: string, name: string): number | null {
  try {
    const value = Number.parseInt(readFileSync(join(dir, name), "utf8").trim(), 10);
    return Number.isFinite(value) ? value : null;
  } catch {
    return null;
  }
}

/** Read the reported sysctls of `dir`. */
function readIpvsSysctls(dir: string = IPVS_SYSCTL_DIR): Record<string, number | null> {
  const values: Record<string, number | null> = {};
  for (const name of REPORTED_SYSCTLS) values[name] = read(dir, name);
  return values;
}

/** Set gorb's sysctls in `dir` (when `set`), then read the reported ones back. */
export function applyIpvsSysctls(set: boolean, dir: string = IPVS_SYSCTL_DIR): SysctlReport {
  const warnings: string[] = [];
  if (set) {
    for (const [name, value] of Object.entries(IPVS_SYSCTLS)) {
      if (read(dir, name) === value) continue;
      try {
        writeFileSync(join(dir, name), `${value}\n`);
      } catch (error) {
        const code = errorCode(error);
        warnings.push(`cannot set net.ipv4.vs.${name}=${value} (${code !== "" ? code : String(error)})`);
      }
    }
  }
  return { values: readIpvsSysctls(dir), warnings };
}
