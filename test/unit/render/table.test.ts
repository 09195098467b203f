/**
 * table(): the layout every table of gorb prints (the status table of 10,000s of rows among them), as literal
 * expected text: columns two spaces apart, right-aligned columns padded before the cell, left-aligned after it
 * (never the last one), a line ending at its last cell with text, no trailing spaces. SplitTable, which lays the
 * same table out in two steps (the daemon's `gorb status` drafts the columns it knows while the kernel is read),
 * gives table()'s text at every split: on these cases, and on random tables.
 */
import { describe, expect, test } from "bun:test";
import { type Align, SplitTable, table } from "../../../src/render/table.ts";

const cases: readonly { name: string; headers: string[]; rows: string[][]; align?: Align[]; want: string }[] = [
  {
    name: "left-aligned columns: padded after the cell, the last column not at all",
    headers: ["A", "BB", "C"],
    rows: [
      ["xxx", "y", "z"],
      ["", "yyyy", "zz"],
    ],
    want: "A    BB    C\nxxx  y     z\n     yyyy  zz\n",
  },
  {
    name: "a right-aligned column after a padded left-aligned one: both paddings and the separator in one gap",
    headers: ["NAME", "N", "X"],
    rows: [
      ["a", "1", "p"],
      ["bbbbbb", "12345", "q"],
    ],
    align: ["left", "right", "left"],
    want: "NAME        N  X\na           1  p\nbbbbbb  12345  q\n",
  },
  {
    name: "trailing blank cells (empty or spaces) and the padding before them are not written",
    headers: ["A", "B", "C"],
    rows: [
      ["a", "", ""],
      ["a", "b", "  "],
      ["aaaa", "bbbb", "c"],
    ],
    want: "A     B     C\na\na     b\naaaa  bbbb  c\n",
  },
  {
    name: "the last cell's own trailing spaces are trimmed; a right-aligned last cell is padded before",
    headers: ["A", "NUM"],
    rows: [
      ["a", "7"],
      ["b", "1000"],
    ],
    align: ["left", "right"],
    want: "A   NUM\na     7\nb  1000\n",
  },
  {
    name: "a trimmed last left-aligned cell",
    headers: ["A", "B"],
    rows: [["a", "text  "]],
    want: "A  B\na  text\n",
  },
  {
    name: "characters outside Latin-1 (the tree of the status table) count one each",
    headers: ["NAME", "W"],
    rows: [
      ["web", "1"],
      ["├ b1", "100"],
      ["└ b2", "5"],
    ],
    align: ["left", "right"],
    want: "NAME    W\nweb     1\n├ b1  100\n└ b2    5\n",
  },
  {
    name: "no rows: the header line alone",
    headers: ["A", "B"],
    rows: [],
    want: "A  B\n",
  },
];

describe("table", () => {
  for (const c of cases) {
    test(c.name, () => {
      expect(table(c.headers, c.rows, c.align)).toBe(c.want);
    });
  }
});

/** table()'s text made by a SplitTable split before column `split`. */
function splitText(headers: readonly string[], rows: readonly (readonly string[])[], align: readonly Align[], split: number): string {
  const t = new SplitTable(headers, align, split);
  t.draft(rows);
  return t.finish(rows.map((r) => r.slice(split)));
}

describe("SplitTable", () => {
  for (const c of cases) {
    test(`${c.name}: the same text split before any column`, () => {
      for (let split = 0; split <= c.headers.length; split++) expect(splitText(c.headers, c.rows, c.align ?? [], split)).toBe(c.want);
    });
  }

  test("random tables (blank, spaced, wide and tree cells; either alignment) come out as table() has them", () => {
    let seed = 12345;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const words = ["", "", " ", "a", "bb", "1/0", "12345", "├ b1", "└ b22", "text  ", "a much longer cell than the rest", "-"];
    for (let round = 0; round < 300; round++) {
      const n = 1 + random(7);
      const headers = Array.from({ length: n }, (_, i) => `H${i}`.repeat(1 + random(2)));
      const align: Align[] = headers.map(() => (random(2) === 0 ? "left" : "right"));
      const rows = Array.from({ length: random(8) }, () => Array.from({ length: n }, () => words[random(words.length)] as string));
      const want = table(headers, rows, align);
      for (let split = 0; split <= n; split++) expect(splitText(headers, rows, align, split)).toBe(want);
    }
  });

  test("drafted before the last columns are known: what was drafted stays, the rest is laid out at finish", () => {
    const t = new SplitTable(["NAME", "STATE", "CONNS"], ["left", "left", "right"], 2);
    const rows = [
      ["web", "up"],
      ["├ b1", "down"],
    ];
    t.draft(rows);
    // The counters arrive after the draft: their widths still set the layout of their column.
    expect(t.finish([["1000000"], ["7"]])).toBe("NAME  STATE    CONNS\nweb   up     1000000\n├ b1  down         7\n");
  });
});
