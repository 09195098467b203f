/**
 * The IPVS sysctls at start, against a directory standing in for /proc/sys/net/ipv4/vs (the host has no ip_vs;
 * test/kernel/drain.test.ts checks the real files in the guest).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { applyIpvsSysctls } from "../../../src/daemon/ipvs-sysctls.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function vsDir(values: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "gorb-vs-"));
  dirs.push(dir);
  for (const [name, value] of Object.entries(values)) writeFileSync(join(dir, name), value);
  return dir;
}

describe("IPVS sysctls", () => {
  test("sets expire_nodest_conn and expire_quiescent_template to 1, leaves conn_reuse_mode, reports all three", () => {
    const dir = vsDir({ expire_nodest_conn: "0\n", expire_quiescent_template: "0\n", conn_reuse_mode: "1\n" });
    expect(applyIpvsSysctls(true, dir)).toEqual({
      values: { expire_nodest_conn: 1, expire_quiescent_template: 1, conn_reuse_mode: 1 },
      warnings: [],
    });
    expect(readFileSync(join(dir, "expire_nodest_conn"), "utf8")).toBe("1\n");
    expect(readFileSync(join(dir, "conn_reuse_mode"), "utf8")).toBe("1\n");
  });

  test("off: nothing is written, the values are still reported", () => {
    const dir = vsDir({ expire_nodest_conn: "0\n", expire_quiescent_template: "0\n", conn_reuse_mode: "0\n" });
    expect(applyIpvsSysctls(false, dir).values).toEqual({ expire_nodest_conn: 0, expire_quiescent_template: 0, conn_reuse_mode: 0 });
    expect(readFileSync(join(dir, "expire_nodest_conn"), "utf8")).toBe("0\n");
  });

  test("a sysctl that cannot be written is a warning, not a failure; a missing one reads as null", () => {
    const dir = vsDir({});
    const report = applyIpvsSysctls(true, join(dir, "missing")); // as without ip_vs: no such directory
    expect(report.values).toEqual({ expire_nodest_conn: null, expire_quiescent_template: null, conn_reuse_mode: null });
    expect(report.warnings).toHaveLength(2);
    expect(report.warnings[0]).toMatch(/^cannot set net\.ipv4\.vs\.expire_nodest_conn=1 \(ENOENT\)$/);
  });
});
