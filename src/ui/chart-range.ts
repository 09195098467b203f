/**
 * The time span a chart (./charts.tsx) shows, from its samples' times: the data, at least a minute and at most the
 * last five, so a recent drain is not a sliver. Taken from the samples themselves, not from the range uPlot passes:
 * for a single sample uPlot widens its x range to a whole day ahead, and the chart then showed five minutes of
 * tomorrow with the sample pinned at its left edge (every chart for its first 3 s, and each new backend's).
 */

const SHOWN_S = 5 * 60;
const MIN_SHOWN_S = 60;

/** [from, to] in seconds for samples at `times` (ascending, seconds); null when there are none. */
export function shownRange(times: readonly number[]): [number, number] | null {
  const first = times[0];
  const last = times[times.length - 1];
  if (first === undefined || last === undefined) return null;
  const from = Math.max(first, last - SHOWN_S);
  return [from, Math.max(last, from + MIN_SHOWN_S)];
}
