// CPU and memory of a server over the last hour, day or week (MetricService.ListMetrics).

import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { api } from "../api";
import { lineChart } from "../chart";
import { fill, fmtBytes, h } from "../dom";
import { panel, showError } from "./common";

const RANGES: [string, number][] = [
  ["1 h", 3600],
  ["24 h", 86400],
  ["7 d", 7 * 86400],
];

export function metricsPanel(serverId: bigint): { section: HTMLElement; stop: () => void } {
  let range = RANGES[0][1];
  const buttons = RANGES.map(([label, seconds]) =>
    h("button", { type: "button", "aria-pressed": String(seconds === range), "data-seconds": seconds }, label),
  );
  const { section, body } = panel("metrics", "Resources", h("div", { role: "group", "aria-label": "Time range", class: "segmented" }, buttons));
  let destroy: (() => void)[] = [];

  async function load(): Promise<void> {
    const end = new Date();
    try {
      const r = await api.metrics.listMetrics({
        serverId,
        startTime: timestampFromDate(new Date(end.getTime() - range * 1000)),
        endTime: timestampFromDate(end),
      });
      for (const d of destroy) d();
      destroy = [];
      if (r.points.length === 0) {
        fill(body, h("p", { class: "muted" }, "No samples in this range."));
        return;
      }
      const times = r.points.map((p) => (p.time ? timestampDate(p.time).getTime() / 1000 : 0));
      const cpu = h("div", { class: "chart", "aria-label": "CPU chart" });
      const mem = h("div", { class: "chart", "aria-label": "Memory chart" });
      fill(body, cpu, mem);
      const pct = (v: number) => `${v.toFixed(v < 10 ? 1 : 0)} %`;
      const span: [number, number] = [end.getTime() / 1000 - range, end.getTime() / 1000];
      destroy.push(
        lineChart(cpu, "CPU (% of one core)", span, times, [
          { label: "average", values: r.points.map((p) => p.cpuPercentAvg) },
          { label: "maximum", values: r.points.map((p) => p.cpuPercentMax) },
        ], pct),
        lineChart(mem, "Memory (resident)", span, times, [
          { label: "average", values: r.points.map((p) => p.memoryBytesAvg) },
          { label: "maximum", values: r.points.map((p) => p.memoryBytesMax) },
        ], fmtBytes),
      );
    } catch (e) {
      for (const d of destroy) d();
      destroy = [];
      showError(body, "Resource history", e);
    }
  }

  for (const b of buttons)
    b.addEventListener("click", () => {
      range = Number(b.dataset.seconds);
      for (const o of buttons) o.setAttribute("aria-pressed", String(o === b));
      void load();
    });
  const timer = setInterval(() => void load(), 60_000);
  void load();
  return {
    section,
    stop() {
      clearInterval(timer);
      for (const d of destroy) d();
    },
  };
}
