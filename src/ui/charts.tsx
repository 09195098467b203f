/**
 * The pictures, drawn with uPlot: a backend's timeline (effective weight as a stepped line over the configured
 * weight, and its health state as a coloured band under the plot: green up, red down, grey unknown) and a
 * service's connections and packets per second.
 */
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import { shownRange } from "./chart-range.ts";
import type { Series } from "./store.ts";

const STATE_COLOURS: readonly [number, string][] = [
  [1, "#2e9d5b"],
  [0.5, "#9aa3ad"],
  [0, "#d64545"],
];

/** Draws the health band: one rectangle per stretch of equal state, 6 px high under the plot area. */
function stateBand(series: number): uPlot.Plugin {
  return {
    hooks: {
      draw: (u) => {
        const xs = u.data[0];
        const levels = u.data[series];
        if (xs === undefined || levels === undefined) return;
        const { ctx } = u;
        const top = u.bbox.top + u.bbox.height - 6 * uPlot.pxRatio;
        for (let i = 0; i < xs.length; i++) {
          const level = levels[i];
          const x0 = Math.max(u.valToPos(xs[i] ?? 0, "x", true), u.bbox.left);
          // The last stretch ends at the newest sample (the axis may reach further: it spans at least a minute).
          const x1 = i + 1 < xs.length ? u.valToPos(xs[i + 1] ?? 0, "x", true) : x0 + 3 * uPlot.pxRatio;
          ctx.fillStyle = STATE_COLOURS.find(([l]) => l === level)?.[1] ?? "#9aa3ad";
          ctx.fillRect(x0, top, Math.max(x1 - x0, 1), 6 * uPlot.pxRatio);
        }
      },
    },
  };
}

interface ChartProps {
  readonly series: Series;
  readonly kind: "timeline" | "rates";
  readonly label: string;
}

/** The x axis spans the samples (./chart-range.ts), whatever range uPlot made of them. */
const xRange: uPlot.Range.Function = (u, min, max) => shownRange((u.data[0] ?? []) as readonly number[]) ?? [min, max];

function options(kind: ChartProps["kind"], width: number): uPlot.Options {
  const stepped = uPlot.paths.stepped?.({ align: 1 });
  const common = { width, height: kind === "timeline" ? 90 : 120, legend: { show: kind === "rates" }, cursor: { drag: { x: false, y: false } } };
  const points = { show: false };
  if (kind === "timeline") {
    return {
      ...common,
      axes: [{ size: 24, font: "10px sans-serif" }, { size: 36, font: "10px sans-serif" }],
      scales: { x: { time: true, range: xRange }, y: { range: (_u, _min, max) => [0, Math.max(max, 1) * 1.1] }, state: { range: [0, 1] } },
      series: [
        {},
        { label: "effective weight", stroke: "#2563eb", width: 2, points, ...(stepped ? { paths: stepped } : {}), fill: "rgba(37,99,235,0.08)" },
        { label: "configured weight", stroke: "#64748b", width: 1, dash: [4, 4], points, ...(stepped ? { paths: stepped } : {}) },
        { label: "state", scale: "state", show: false },
      ],
      plugins: [stateBand(3)],
    };
  }
  return {
    ...common,
    axes: [{ size: 24, font: "10px sans-serif" }, { size: 40, font: "10px sans-serif" }],
    scales: { x: { time: true, range: xRange }, y: { range: (_u, _min, max) => [0, Math.max(max, 1) * 1.1] } },
    series: [
      {},
      { label: "conn/s", stroke: "#2563eb", width: 2, points },
      { label: "in pkt/s", stroke: "#16a34a", width: 1.5, points },
      { label: "out pkt/s", stroke: "#ea580c", width: 1.5, points },
    ],
  };
}

function data(kind: ChartProps["kind"], s: Series): uPlot.AlignedData {
  const names = kind === "timeline" ? ["weight", "configured", "state"] : ["cps", "in_pps", "out_pps"];
  return [s.t, ...names.map((n) => s.lines[n] ?? s.t.map(() => null))];
}

/** A uPlot chart that follows its container's width and is redrawn when the series change. */
export function Chart({ series, kind, label }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    const el = box.current;
    if (el === null) return;
    const u = new uPlot(options(kind, Math.max(el.clientWidth, 200)), data(kind, series), el);
    plot.current = u;
    const observer = new ResizeObserver(() => u.setSize({ width: Math.max(el.clientWidth, 200), height: u.height }));
    observer.observe(el);
    return () => {
      observer.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [kind]);
  useEffect(() => {
    plot.current?.setData(data(kind, series));
  });
  return <div class={`chart chart-${kind}`} ref={box} role="img" aria-label={label} />;
}
