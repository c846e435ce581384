// Time-series line charts (uPlot: small, canvas based).

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

const COLOURS = ["#2f7ed8", "#d9534f"];

/**
 * Draws a chart of `series` over `times` (seconds since the epoch) into `el`, sized to its width,
 * with the time axis spanning `span` (the range asked for, however few points there are).
 * Returns the function that removes it.
 */
export function lineChart(
  el: HTMLElement,
  title: string,
  span: [number, number],
  times: number[],
  series: { label: string; values: number[] }[],
  format: (v: number) => string,
): () => void {
  const opts: uPlot.Options = {
    title,
    width: Math.max(300, el.clientWidth),
    height: 220,
    series: [
      {},
      ...series.map((s, i) => ({
        label: s.label,
        stroke: COLOURS[i % COLOURS.length],
        width: 1.5,
        value: (_u: uPlot, v: number | null) => (v === null ? "—" : format(v)),
      })),
    ],
    axes: [{}, { values: (_u, ticks) => ticks.map(format), size: 90 }],
    scales: {
      x: { time: true, range: () => span },
      y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
    },
  };
  const plot = new uPlot(opts, [times, ...series.map((s) => s.values)], el);
  const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(300, el.clientWidth), height: 220 }));
  resize.observe(el);
  return () => {
    resize.disconnect();
    plot.destroy();
  };
}
