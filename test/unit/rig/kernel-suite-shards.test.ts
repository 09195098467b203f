// How the kernel suite deals its files to the guests booted side by side (test/rig/kernel-suite.ts).
import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { shardFiles, testFiles } from "../../rig/kernel-suite.ts";
import { PROJECT_ROOT } from "../../rig/paths.ts";

const seconds = (table: Record<string, number>) => (f: string) => table[f] ?? 30;

describe("shardFiles", () => {
  test("longest first, each to the guest with the least so far: the totals end close together", () => {
    const table = { a: 300, b: 150, c: 110, d: 90, e: 90, f: 80, g: 60 };
    const groups = shardFiles(Object.keys(table), 2, seconds(table));
    const totals = groups.map((g) => g.reduce((sum, f) => sum + (table[f as keyof typeof table] ?? 0), 0));
    expect(groups).toEqual([
      ["a", "e", "g"],
      ["b", "c", "d", "f"],
    ]);
    expect(totals).toEqual([450, 430]);
  });

  test("every file in exactly one guest, in the order given; no empty guest when there are fewer files than guests", () => {
    const files = ["z.test.ts", "m.test.ts", "a.test.ts"];
    const groups = shardFiles(files, 5, () => 10);
    expect(groups.length).toBe(3);
    expect(groups.flat().sort()).toEqual([...files].sort());
    const four = ["w", "x", "y", "z"];
    const two = shardFiles(four, 2, () => 10);
    for (const g of two) expect(g).toEqual(four.filter((f) => g.includes(f)));
    expect(shardFiles(four, 1, () => 10)).toEqual([four]);
  });
});

describe("testFiles", () => {
  test("a directory is its *.test.ts files, helpers left out; a file is itself, once", () => {
    const dir = join(PROJECT_ROOT, "test", "kernel");
    const expected = readdirSync(dir)
      .filter((n) => n.endsWith(".test.ts"))
      .sort()
      .map((n) => `test/kernel/${n}`);
    const files = testFiles(["test/kernel"]);
    expect(files).toEqual(expected);
    expect(files.some((f) => f.includes("/helpers/"))).toBe(false);
    expect(testFiles(["test/kernel/rig-smoke.test.ts", "test/kernel"]).filter((f) => f.endsWith("rig-smoke.test.ts")).length).toBe(1);
  });
});
