/**
 * Small pure helpers the benchmarks share: order statistics of latency samples, and how a figure and a ratio
 * against its anchor are printed. No I/O here, so they are unit-tested on the host (test/unit/bench/).
 */

/** The p-th percentile (0 < p <= 100) by nearest rank: the smallest sample with at least p% of samples at or below it. */
export function percentile(samples: readonly number[], p: number): number {
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile: p must be in (0, 100], got ${p}`);
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[rank - 1] ?? Number.NaN;
}

/** The median (mean of the middle two for an even count); NaN for no samples. */
export function median(samples: readonly number[]): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** A duration for people: "850 ms", "12.34 s", "4 min 05 s". */
export function duration(ms: number): string {
  if (!Number.isFinite(ms)) return "n/a";
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 2 : 0)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(2)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}

/** How a ratio compares with its target and goal (lower is better): "met goal", "met target", "MISSED target". */
export function verdict(ratio: number, target: number, goal: number): string {
  if (!Number.isFinite(ratio)) return "no figure";
  if (ratio <= goal) return `within goal ${goal}`;
  if (ratio <= target) return `within target ${target} (goal ${goal})`;
  return `ABOVE target ${target} (goal ${goal})`;
}

/** "ratio 3.812 (gorb / anchor)"; "ratio n/a" when either side is missing or the anchor is zero. */
export function ratioText(gorbMs: number, anchorMs: number): string {
  if (!Number.isFinite(gorbMs) || !Number.isFinite(anchorMs) || anchorMs <= 0) return "ratio n/a";
  return `ratio ${(gorbMs / anchorMs).toFixed(3)}`;
}

/** A size like "1x20000" (services x backends per service); throws naming `what` when malformed. */
export interface Size {
  readonly services: number;
  readonly backends: number;
}

export function parseSize(text: string, what: string): Size {
  const m = /^(\d+)x(\d+)$/.exec(text.trim());
  const services = Number(m?.[1]);
  const backends = Number(m?.[2]);
  if (m === null || services < 1 || backends < 0) throw new Error(`${what}: expected SERVICESxBACKENDS like 1x20000, got ${JSON.stringify(text)}`);
  return { services, backends };
}

/** A comma-separated list of sizes ("1x5000,1x10000"); an empty string is an empty list. */
export function parseSizes(text: string, what: string): Size[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map((s) => parseSize(s, what));
}

/** "1 x 20,000" for printing. */
export function sizeText(size: Size): string {
  return `${size.services.toLocaleString("en-US")} x ${size.backends.toLocaleString("en-US")}`;
}
