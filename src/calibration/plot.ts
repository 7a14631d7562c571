import { type VegaLiteSpec, writePlot } from "../eval/plot.js";
import { analyticBoNWinRate } from "./winrate.js";
import type { WinRateReport } from "./winrateRun.js";

/**
 * Win rate against N: the empirical points with their intervals (policy Best-of-N vs one
 * reference sample, BoN vs BoN, WoN vs WoN) and the analytic N/(N+1) curve of Best-of-N of the
 * calibrated reward. Log₂ N axis.
 */
export function winRatePlotSpec(report: WinRateReport): VegaLiteSpec {
  const maxN = Math.max(...report.rows.map((r) => r.n));
  const curve: { n: number; rate: number; series: string }[] = [];
  for (let x = 1; x <= maxN; x *= 1.1)
    curve.push({
      n: x,
      rate: analyticBoNWinRate(x),
      series: "analytic N/(N+1): BoN of calibrated r vs reference",
    });
  curve.push({ n: maxN, rate: analyticBoNWinRate(maxN), series: curve[0].series });
  const points = report.rows.flatMap((row) => [
    {
      n: row.n,
      series: "policy BoN vs reference",
      rate: row.bonVsReference.estimate,
      lo: row.bonVsReference.lo,
      hi: row.bonVsReference.hi,
    },
    {
      n: row.n,
      series: "BoN(policy) vs BoN(reference)",
      rate: row.bonVsBon.estimate,
      lo: row.bonVsBon.lo,
      hi: row.bonVsBon.hi,
    },
    {
      n: row.n,
      series: "WoN(policy) vs WoN(reference)",
      rate: row.wonVsWon.estimate,
      lo: row.wonVsWon.lo,
      hi: row.wonVsWon.hi,
    },
  ]);
  const x = {
    field: "n",
    type: "quantitative",
    title: "N",
    scale: { type: "log", base: 2 },
    axis: { values: report.rows.map((r) => r.n), format: "d" },
  } as const;
  const color = {
    field: "series",
    type: "nominal",
    title: null,
    legend: { orient: "bottom", columns: 2, labelLimit: 400 },
  } as const;
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: {
      text: `Win rate vs N — ${report.policy} against the reference`,
      subtitle: `reward ${report.reward}; ${report.tasks} prompts, m = ${report.m}; bars: ${report.ci.split(",")[0]}`,
    },
    width: 520,
    height: 320,
    layer: [
      {
        data: { values: curve },
        mark: { type: "line", strokeDash: [6, 3] },
        encoding: {
          x,
          y: { field: "rate", type: "quantitative", title: "win rate", scale: { domain: [0, 1] } },
          color,
        },
      },
      {
        data: { values: points },
        mark: { type: "rule" },
        encoding: { x, y: { field: "lo", type: "quantitative" }, y2: { field: "hi" }, color },
      },
      {
        data: { values: points },
        mark: { type: "line", point: true },
        encoding: { x, y: { field: "rate", type: "quantitative" }, color },
      },
    ],
  } as VegaLiteSpec;
}

/** Writes `<dir>/winrate.svg` and `<dir>/winrate.png`. */
export function writeWinRatePlot(report: WinRateReport, dir: string): Promise<{ svg: string; png: string }> {
  return writePlot(winRatePlotSpec(report), `${dir}/winrate`);
}
