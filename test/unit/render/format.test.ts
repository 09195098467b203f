/**
 * table(): the layout every table of gorb prints (the status table of 10,000s of rows among them), as literal
 * expected text: columns two spaces apart, right-aligned columns padded before the cell, left-aligned after it
 * (never the last one), a line ending at its last cell with text, no trailing spaces.
 */
import { describe, expect, test } from "bun:test";
import { type Align, table } from "../../../src/render/format.ts";

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
