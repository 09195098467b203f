/**
 * Human-readable output: compact rates, addresses, and the status table shared by the daemon view (`gorb status`)
 * and the kernel view (`gorb status --direct`); the table layout itself is ./table.ts.
 */
import { type Align, SplitTable } from "./table.ts";

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
  /**
   * What is wrong with the service beyond its backends, shown upper-case after their count in the state column:
   * "not in kernel", "no quorum", "sorry 10.9.0.1:80"; none when all is ordinary.
   */
  readonly markers?: readonly string[];
}

const dash = (value: number | null, show: (v: number) => string = String): string => (value === null ? "-" : show(value));

const STATUS_HEADERS = ["NAME", "ADDRESS", "MODE", "WEIGHT", "LIVE", "HEALTH", "STATE", "ACT/INACT", "CPS", "IN B/s", "OUT B/s", "CHECK"];
const STATUS_ALIGN: Align[] = ["left", "left", "left", "right", "right", "right", "left", "right", "right", "right", "right", "left"];
/** The first of the status table's columns that hold the kernel's counters (ACT/INACT). */
const STATUS_COUNTERS = 7;

/** statusTable renders services and their backends as one table (backends indented under their service). */
export function statusTable(services: readonly StatusService[]): string {
  return draftStatusTable(services).finish();
}

/**
 * The status table in two steps: drafted from what the services and backends are (names, addresses, weights,
 * health), finished once their counters are in. finish() reads `active`, `inactive` and `stats` of the same objects
 * then, so a caller may fill those in between (the daemon drafts while the kernel is read).
 */
export function draftStatusTable(services: readonly StatusService[]): { finish(): string } {
  if (services.length === 0) return { finish: () => "no services\n" };
  const rows: string[][] = [];
  for (const s of services) {
    // One pass over the backends for the service's line.
    let up = 0;
    let down = 0;
    let unchecked = 0;
    for (const b of s.backends) {
      if (b.state === "up") up++;
      else if (b.state === "down") down++;
      else if (b.state === "unknown") unchecked++;
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
          : `${s.backends.length} backend${s.backends.length === 1 ? "" : "s"}`) + (s.markers ?? []).map((m) => `, ${m.toUpperCase()}`).join(""),
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
      ]);
    });
  }
  const drafted = new SplitTable(STATUS_HEADERS, STATUS_ALIGN, STATUS_COUNTERS);
  drafted.draft(rows);
  return {
    finish() {
      const rest: string[][] = [];
      for (const s of services) {
        let active = 0;
        let inactive = 0;
        for (const b of s.backends) {
          active += b.active ?? 0;
          inactive += b.inactive ?? 0;
        }
        rest.push([`${active}/${inactive}`, dash(s.stats?.cps ?? null, compact), dash(s.stats?.in_bps ?? null, compact), dash(s.stats?.out_bps ?? null, compact), ""]);
        for (const b of s.backends) {
          rest.push([
            b.active === null ? "-" : `${b.active}/${b.inactive ?? 0}`,
            dash(b.stats?.cps ?? null, compact),
            dash(b.stats?.in_bps ?? null, compact),
            dash(b.stats?.out_bps ?? null, compact),
            b.state === "up" ? "" : b.message,
          ]);
        }
      }
      return drafted.finish(rest);
    },
  };
}
