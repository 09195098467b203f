/**
 * Aligned tables: table() lays a table out in one go; SplitTable in two steps, its first columns before the rest
 * are known (the daemon's `gorb status`, drafted while the kernel is read). Both give the same text.
 */

/** Column alignment. */
export type Align = "left" | "right";

/**
 * table renders rows under headers, columns separated by two spaces, no trailing spaces. Plain loops: it renders
 * `gorb status` of 10,000s of rows (no spread of every row into Math.max, which also has an argument limit). A line
 * ends at its last cell with text (trailing blank cells and the padding before them are never written). The spaces
 * between two cells (the separator, the left cell's padding, the right-aligned cell's) are one piece, a slice of
 * one string of spaces cached by its length, and every piece goes into one array joined once at the end: in the
 * emulated guest this loop was the daemon's hottest code of `gorb status` (its own profile, 1,000 x 10).
 */
export function table(headers: readonly string[], rows: readonly (readonly string[])[], align: readonly Align[] = []): string {
  const n = headers.length;
  const widths = columnWidths(headers, rows, 0, n);
  const layout = new Layout(widths, align);
  layout.line(headers, 0, 0);
  for (const row of rows) layout.line(row, 0, 0);
  return layout.text();
}

/** The widest cell of each of the columns [from, to) among the headers and `rows` (whose cell 0 is column `from`). */
function columnWidths(headers: readonly string[], rows: readonly (readonly string[])[], from: number, to: number): number[] {
  const widths: number[] = [];
  for (let i = from; i < to; i++) widths.push((headers[i] ?? "").length);
  const count = to - from;
  for (const row of rows) {
    for (let i = 0; i < count; i++) {
      const len = (row[i] ?? "").length;
      if (len > (widths[i] ?? 0)) widths[i] = len;
    }
  }
  return widths;
}

/**
 * Lays lines out into pieces joined once. Its cells are columns [first, first + widths.length) of the table: a line
 * given to it ends at its last cell with text, the padding owed before its first cell given by the caller.
 */
class Layout {
  readonly parts: string[] = [];
  readonly #widths: readonly number[];
  readonly #right: readonly boolean[];
  readonly #spaces: string;
  readonly #gaps: string[] = [];

  /** `owedAtMost`: the most spaces a caller owes before a line's first cell. */
  constructor(widths: readonly number[], align: readonly Align[], first = 0, owedAtMost = 0) {
    this.#widths = widths;
    this.#right = widths.map((_, i) => align[first + i] === "right");
    let widest = 0;
    for (const w of widths) if (w > widest) widest = w;
    // A gap is at most two cells' padding and a separator, or what was owed and the first cell's padding.
    this.#spaces = " ".repeat(Math.max(2 * widest + 2, owedAtMost + widest));
  }

  #gap(length: number): string {
    return this.#gaps[length] ?? (this.#gaps[length] = this.#spaces.substring(0, length));
  }

  /**
   * The cells of `cells` from index `at` on (column 0 of this layout) laid out, `owed` spaces before the first;
   * with `open`, the line goes on after them: nothing is trimmed and the spaces owed after the last cell are
   * returned (none written); otherwise it ends at its last cell with text and a newline.
   */
  line(cells: readonly string[], at: number, owed: number, open = false): number {
    const n = this.#widths.length;
    let last = n - 1;
    if (!open) while (last >= 0 && isBlank(cells[at + last] ?? "")) last--;
    let gap = owed;
    for (let i = 0; i <= last; i++) {
      let cell = cells[at + i] ?? "";
      if (!open && i === last && endsInSpace(cell)) cell = cell.trimEnd();
      const room = (this.#widths[i] ?? 0) - cell.length;
      const alignRight = this.#right[i] === true;
      if (alignRight && room > 0) gap += room;
      if (gap > 0) this.parts.push(this.#gap(gap));
      this.parts.push(cell);
      gap = alignRight || room <= 0 ? 2 : 2 + room;
    }
    if (!open) this.parts.push("\n");
    return gap;
  }

  /** Everything laid out, as one string; the layout starts empty again. */
  text(): string {
    const out = this.parts.join("");
    this.parts.length = 0;
    return out;
  }
}

/**
 * A table laid out in two steps, with table()'s output: the columns before `split` when they are known (draft), the
 * others once they are (finish). The daemon drafts `gorb status`'s table (names, addresses, weights, health) while
 * the kernel's counters are still being read, so only the counter columns are left to lay out after the read.
 */
export class SplitTable {
  readonly #headers: readonly string[];
  readonly #align: readonly Align[];
  readonly #split: number;
  /** Each drafted row's first columns as laid out, with the spaces owed before its next cell, and its cells. */
  #drafted: { readonly text: string; readonly owed: number; readonly cells: readonly string[] }[] = [];
  #widths: number[] = [];

  constructor(headers: readonly string[], align: readonly Align[], split: number) {
    this.#headers = headers;
    this.#align = align;
    this.#split = split;
  }

  /** Lay out the first columns of the header and of every row (cells [0, split) of each; more are ignored). */
  draft(rows: readonly (readonly string[])[]): void {
    this.#widths = columnWidths(this.#headers, rows, 0, this.#split);
    const layout = new Layout(this.#widths, this.#align);
    this.#drafted = [this.#headers, ...rows].map((cells) => {
      const owed = layout.line(cells, 0, 0, true);
      return { text: layout.text(), owed, cells };
    });
  }

  /** The whole table: `rest[i]` holds the columns from `split` on of the i-th drafted row (the header's are known). */
  finish(rest: readonly (readonly string[])[]): string {
    const n = this.#headers.length;
    const restWidths = columnWidths(this.#headers, rest, this.#split, n);
    let owedAtMost = 0;
    for (const row of this.#drafted) if (row.owed > owedAtMost) owedAtMost = row.owed;
    const layout = new Layout(restWidths, this.#align, this.#split, owedAtMost);
    let whole: Layout | null = null;
    this.#drafted.forEach((row, i) => {
      const cells = i === 0 ? this.#headers.slice(this.#split) : (rest[i - 1] ?? []);
      let blank = true;
      for (let c = 0; c < n - this.#split && blank; c++) blank = isBlank(cells[c] ?? "");
      if (blank) {
        // Nothing after the first columns: the line ends within them, laid out whole.
        whole ??= new Layout([...this.#widths, ...restWidths], this.#align);
        whole.line([...row.cells.slice(0, this.#split), ...cells], 0, 0);
        layout.parts.push(whole.text());
        return;
      }
      layout.parts.push(row.text);
      layout.line(cells, 0, row.owed);
    });
    return layout.text();
  }
}

function endsInSpace(text: string): boolean {
  return text.length > 0 && text.charCodeAt(text.length - 1) <= 32;
}

/** Empty, or only what trimEnd removes. */
function isBlank(text: string): boolean {
  return text.length === 0 || (endsInSpace(text) && text.trimEnd() === "");
}
