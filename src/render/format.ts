/**
 * Human-readable output: aligned tables, compact rates, addresses, and the status table shared by the daemon
 * view (`gorb status`) and the kernel view (`gorb status --direct`).
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
  const widths = headers.map((h) => h.length);
  for (const row of rows) {
    for (let i = 0; i < n; i++) {
      const len = (row[i] ?? "").length;
      if (len > (widths[i] ?? 0)) widths[i] = len;
    }
  }
  const right = widths.map((_, i) => align[i] === "right");
  let widest = 0;
  for (const w of widths) if (w > widest) widest = w;
  // Gaps are at most two cells' padding and a separator; cached by length (at most widest * 2 + 2 of them).
  const spaces = " ".repeat(2 * widest + 2);
  const gaps: string[] = [];
  const gapOf = (length: number): string => gaps[length] ?? (gaps[length] = spaces.substring(0, length));
  const parts: string[] = [];
  const line = (cells: readonly string[]): void => {
    let last = n - 1;
    while (last >= 0 && isBlank(cells[last] ?? "")) last--;
    let gap = 0; // the spaces owed before the next cell: the separator and a left-aligned cell's padding
    for (let i = 0; i <= last; i++) {
      let cell = cells[i] ?? "";
      if (i === last && endsInSpace(cell)) cell = cell.trimEnd();
      const room = (widths[i] ?? 0) - cell.length;
      const alignRight = right[i] === true;
      if (alignRight && room > 0) gap += room;
      if (gap > 0) parts.push(gapOf(gap));
      parts.push(cell);
      gap = alignRight || room <= 0 ? 2 : 2 + room;
    }
    parts.push("\n");
  };
  line(headers);
  for (const row of rows) line(row);
  return parts.join("");
}

function endsInSpace(text: string): boolean {
  return text.length > 0 && text.charCodeAt(text.length - 1) <= 32;
}

/** Empty, or only what trimEnd removes. */
function isBlank(text: string): boolean {
  return text.length === 0 || (endsInSpace(text) && text.trimEnd() === "");
}

/** keyValues renders "key  value" lines with the keys aligned. */
export function keyValues(pairs: readonly (readonly [string, string])[], indent = ""): string {
  const width = Math.max(0, ...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${indent}${k.padEnd(width)}  ${v}`.trimEnd()).join("\n") + "\n";
}

const SI_UNITS: readonly (readonly [number, string])[] = [
  [1e12, "T"],
  [1e9, "G"],
  [1e6, "M"],
  [1e3, "k"],
];

/** compact writes a count or rate with an SI suffix: 0, 950, 1.2k, 34M. */
export function compact(value: number): string {
  const abs = Math.abs(value);
  if (abs < 1e3) return Number.isInteger(value) ? String(value) : value.toFixed(1);
  for (const [size, suffix] of SI_UNITS) {
    if (abs >= size) {
      const scaled = value / size;
      return `${Math.abs(scaled) >= 100 ? scaled.toFixed(0) : scaled.toFixed(1).replace(/\.0$/, "")}${suffix}`;
    }
  }
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

/** hostPort writes an address and port, bracketing IPv6 ("[2001:db8::1]:80"). */
export function hostPort(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

/** printJson is the JSON all --json outputs use: two-space indented, one trailing newline. */
export function jsonText(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** Traffic counters and rates as shown in tables. */
export interface TrafficView {
  readonly cps: number;
  readonly in_bps: number;
  readonly out_bps: number;
  readonly conns: number;
}

/** One backend line of the status table. */
export interface StatusBackend {
  readonly name: string;
  readonly target: string;
  readonly forward: string;
  /** Configured weight; null when unknown (the kernel only knows the live one). */
  readonly weight: number | null;
  /** The weight IPVS has now. */
  readonly live: number | null;
  /** 0..1, or null when gorb does not check it (kernel view). */
  readonly health: number | null;
  /** up, down, unknown, or "-" in the kernel view. */
  readonly state: string;
  readonly active: number | null;
  readonly inactive: number | null;
  readonly stats: TrafficView | null;
  /** What the last health check said, for down backends. */
  readonly message: string;
}

/** One service block of the status table. */
export interface StatusService {
  readonly name: string;
  readonly address: string;
  readonly scheduler: string;
  readonly health: number | null;
  readonly stats: TrafficView | null;
  readonly backends: readonly StatusBackend[];
  /** Failover state when it is not the ordinary one: "no quorum", "sorry 10.9.0.1:80"; null otherwise. */
  readonly failover?: string | null;
}

const dash = (value: number | null, show: (v: number) => string = String): string => (value === null ? "-" : show(value));

/** statusTable renders services and their backends as one table (backends indented under their service). */
export function statusTable(services: readonly StatusService[]): string {
  if (services.length === 0) return "no services\n";
  const headers = ["NAME", "ADDRESS", "MODE", "WEIGHT", "LIVE", "HEALTH", "STATE", "ACT/INACT", "CPS", "IN B/s", "OUT B/s", "CHECK"];
  const align: Align[] = ["left", "left", "left", "right", "right", "right", "left", "right", "right", "right", "right", "left"];
  const rows: string[][] = [];
  for (const s of services) {
    // One pass over the backends for the service's line.
    let up = 0;
    let down = 0;
    let unchecked = 0;
    let active = 0;
    let inactive = 0;
    for (const b of s.backends) {
      if (b.state === "up") up++;
      else if (b.state === "down") down++;
      else if (b.state === "unknown") unchecked++;
      active += b.active ?? 0;
      inactive += b.inactive ?? 0;
    }
    const checked = up + down > 0;
    rows.push([
      s.name,
      s.address,
      s.scheduler,
      "",
      "",
      dash(s.health, (h) => h.toFixed(2)),
      (checked
        ? `${up}/${s.backends.length} up`
        : unchecked > 0
          ? `${unchecked} unchecked`
          : `${s.backends.length} backend${s.backends.length === 1 ? "" : "s"}`) + (s.failover != null ? `, ${s.failover.toUpperCase()}` : ""),
      `${active}/${inactive}`,
      dash(s.stats?.cps ?? null, compact),
      dash(s.stats?.in_bps ?? null, compact),
      dash(s.stats?.out_bps ?? null, compact),
      "",
    ]);
    s.backends.forEach((b, i) => {
      rows.push([
        `${i === s.backends.length - 1 ? "└" : "├"} ${b.name}`,
        b.target,
        b.forward,
        dash(b.weight),
        dash(b.live),
        dash(b.health, (h) => h.toFixed(2)),
        b.state,
        b.active === null ? "-" : `${b.active}/${b.inactive ?? 0}`,
        dash(b.stats?.cps ?? null, compact),
        dash(b.stats?.in_bps ?? null, compact),
        dash(b.stats?.out_bps ?? null, compact),
        b.state === "up" ? "" : b.message,
      ]);
    });
  }
  return table(headers, rows, align);
}
