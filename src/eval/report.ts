/** The eval's text table and its quality-vs-cost figure. */
import type { TopLevelSpec } from "vega-lite";
import { labelledPointLayers } from "./labelledPoints.js";
import { writePlot } from "./plot.js";
import type { EvalResult, StrategySummary } from "./runEval.js";
import { type Column, fixed, formatColumns } from "./textTable.js";

const ratio = (v: number) => (Number.isFinite(v) ? `${v < 10 ? v.toFixed(2) : v.toFixed(1)}×` : "–");

/**
 * One row per strategy: soft/hard coverage, mean words, mean logprob/token, mean minimum token
 * logprob, word-salad share, repeated 4-gram share, evaluated tokens and
 * wall ms (means per task), their ratios to the first strategy, and regurgitation columns when
 * the eval had an index.
 */
export function formatTable(summary: readonly StrategySummary[]): string {
  const first = summary[0]?.strategy ?? "first";
  const columns: Column<StrategySummary>[] = [
    { header: "strategy", value: (s) => s.strategy, left: true },
    { header: "soft cov", value: (s) => fixed(3)(s.softCoverage) },
    { header: "hard cov", value: (s) => fixed(3)(s.hardCoverage) },
    { header: "words", value: (s) => fixed(1)(s.meanWords) },
    { header: "logprob/tok", value: (s) => fixed(3)(s.logprobPerToken) },
    { header: "min lp", value: (s) => fixed(2)(s.fluency.meanMinLogprob) },
    { header: "salad", value: (s) => fixed(3)(s.fluency.saladShare) },
    { header: "rep4", value: (s) => fixed(3)(s.fluency.repetition) },
    { header: "eval tok/task", value: (s) => fixed(1)(s.meanEvaluatedTokens) },
    { header: "wall ms/task", value: (s) => fixed(1)(s.meanWallMs) },
    { header: `tok × ${first}`, value: (s) => ratio(s.evaluatedTokensRatio) },
    { header: `wall × ${first}`, value: (s) => ratio(s.wallMsRatio) },
  ];
  if (summary.some((s) => s.regurgitation))
    columns.push(
      { header: "8-gram share", value: (s) => fixed(3)(s.regurgitation?.share8) },
      { header: "longest span", value: (s) => fixed(1)(s.regurgitation?.meanLongestSpan) },
      { header: "max span", value: (s) => fixed(0)(s.regurgitation?.maxLongestSpan) },
    );
  return formatColumns(columns, summary);
}

/** The table with a one-line header (model, tasks, order). */
export function formatReport(result: EvalResult): string {
  const head = `${result.model}: ${result.taskIds.length} task(s) × ${result.strategies.length} strategies, ${result.order}, ${result.cache} cache; means per task`;
  return `${head}\n\n${formatTable(result.summary)}\n`;
}

/**
 * Quality vs cost, one labelled point per strategy: soft coverage against mean wall ms per task
 * (log x) beside the same against mean evaluated tokens per task (log x), and hard coverage
 * against the word-salad share (coverage bought with salad sits to the right).
 */
export function qualityVsCostSpec(
  summary: readonly StrategySummary[],
  title = "Quality vs cost",
): TopLevelSpec {
  const values = summary.map((s) => ({
    strategy: s.strategy,
    soft: s.softCoverage,
    hard: s.hardCoverage,
    wallMs: Math.max(s.meanWallMs, 0.01),
    evaluatedTokens: Math.max(s.meanEvaluatedTokens, 1),
    salad: s.fluency.saladShare,
    minLogprob: s.fluency.meanMinLogprob,
    labelWall: 0,
    labelTokens: 0,
  }));
  // Labels of points that (nearly) coincide are stacked so they stay readable.
  for (const [field, label] of [
    ["wallMs", "labelWall"],
    ["evaluatedTokens", "labelTokens"],
  ] as const) {
    values.forEach((v, i) => {
      const step = v.soft > 0.8 ? -0.05 : 0.05;
      let y = v.soft;
      const clash = () =>
        values
          .slice(0, i)
          .some((u) => Math.abs(u[label] - y) < 0.045 && Math.abs(Math.log(u[field] / v[field])) < 0.5);
      for (let tries = 0; tries < values.length && clash(); tries++) y += step;
      v[label] = y;
    });
  }
  const panel = (field: "wallMs" | "evaluatedTokens", axisTitle: string) => ({
    width: 320,
    height: 260,
    encoding: {
      x: {
        field,
        type: "quantitative" as const,
        scale: { type: "log" as const, nice: true },
        title: axisTitle,
      },
      y: {
        field: "soft",
        type: "quantitative" as const,
        scale: { domain: [0, 1] },
        title: "soft keyword coverage",
      },
    },
    layer: labelledPointLayers(
      [
        { field: "strategy", type: "nominal" },
        { field: "soft", type: "quantitative" },
        { field: "hard", type: "quantitative" },
      ],
      field === "wallMs" ? "labelWall" : "labelTokens",
    ),
  });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    data: { values },
    hconcat: [
      panel("wallMs", "mean wall ms per task (log)"),
      panel("evaluatedTokens", "mean evaluated tokens per task (log)"),
      saladPanel(),
    ],
  } as TopLevelSpec;
}

/** Hard coverage against the share of outputs holding a token below −8 nats (word salad). */
function saladPanel() {
  const axis = (field: string, title: string) => ({
    field,
    type: "quantitative" as const,
    scale: { domain: [0, 1] },
    title,
  });
  return {
    width: 260,
    height: 260,
    encoding: { x: axis("salad", "word-salad share (token < −8 nats)"), y: axis("hard", "hard coverage") },
    layer: labelledPointLayers([
      { field: "strategy", type: "nominal" },
      { field: "hard", type: "quantitative" },
      { field: "salad", type: "quantitative" },
      { field: "minLogprob", type: "quantitative" },
    ]),
  };
}

/** Writes `<outBase>.svg` and `<outBase>.png`. */
export function writeQualityVsCost(
  summary: readonly StrategySummary[],
  outBase: string,
  title?: string,
): Promise<{ svg: string; png: string }> {
  return writePlot(qualityVsCostSpec(summary, title), outBase);
}
