/**
 * The identity eval's text table and figure: per strategy, the Identity Inference Rate on masked
 * prompts and the agreement on stated ones beside the guards that keep a degenerate output from
 * winning (fluency under the other model, word salad, length, repetition) and the wall time.
 */
import type { TopLevelSpec } from "vega-lite";
import type { IdentityEvalResult, IdentitySummary } from "./identityEval.js";
import { writePlot } from "./plot.js";

const fixed = (digits: number) => (v: number | null | undefined) =>
  v === null || v === undefined || !Number.isFinite(v) ? "–" : v.toFixed(digits);

interface Column {
  header: string;
  value: (s: IdentitySummary) => string;
  left?: boolean;
}

export function formatIdentityTable(summary: readonly IdentitySummary[]): string {
  const first = summary[0]?.strategy ?? "first";
  const columns: Column[] = [
    { header: "strategy", value: (s) => s.strategy, left: true },
    { header: "masked IIR", value: (s) => fixed(2)(s.maskedIIR) },
    { header: "cue followed", value: (s) => fixed(2)(s.cueFollowed) },
    { header: "stated agree", value: (s) => fixed(2)(s.statedAgreement) },
    { header: "lp fluency", value: (s) => fixed(3)(s.otherLogprob) },
    { header: "lp own", value: (s) => fixed(3)(s.ownLogprob) },
    { header: "salad", value: (s) => fixed(3)(s.saladShare) },
    { header: "words", value: (s) => fixed(1)(s.meanWords) },
    { header: "rep4", value: (s) => fixed(3)(s.repetition) },
    { header: "wall s", value: (s) => fixed(1)(s.totalWallMs / 1000) },
    { header: `wall × ${first}`, value: (s) => `${fixed(2)(s.wallRatio)}×` },
  ];
  const cells = [columns.map((c) => c.header), ...summary.map((s) => columns.map((c) => c.value(s)))];
  const widths = columns.map((_, i) => Math.max(...cells.map((row) => [...row[i]].length)));
  const line = (row: string[]) =>
    row
      .map((cell, i) => {
        const pad = " ".repeat(widths[i] - [...cell].length);
        return columns[i].left ? cell + pad : pad + cell;
      })
      .join("  ")
      .trimEnd();
  const rule = widths.map((w) => "─".repeat(w)).join("  ");
  return [line(cells[0]), rule, ...cells.slice(1).map(line)].join("\n");
}

/** The table with a one-line header (models, tasks). */
export function formatIdentityReport(result: IdentityEvalResult, tasks: { masked: number; stated: number }) {
  const verifier = result.verifier ? `, verifier ${result.verifier}` : "";
  const head = `${result.model}${verifier}: ${tasks.masked} masked + ${tasks.stated} stated task(s); fluency under ${result.fluencyModel}`;
  return `${head}\n\n${formatIdentityTable(result.summary)}\n`;
}

/**
 * Two panels, one labelled point per strategy: stated agreement against masked IIR (the good
 * corner is top left), and fluency under the other model against masked IIR (a drop in fluency
 * is what a low IIR may have cost).
 */
export function identitySpec(
  summary: readonly IdentitySummary[],
  title = "Identity inference",
): TopLevelSpec {
  const values = summary.map((s) => ({
    strategy: s.strategy,
    iir: s.maskedIIR,
    agreement: s.statedAgreement,
    fluency: s.otherLogprob,
    salad: s.saladShare,
    words: s.meanWords,
  }));
  const panel = (field: "agreement" | "fluency", axisTitle: string) => ({
    width: 300,
    height: 260,
    encoding: {
      x: {
        field: "iir",
        type: "quantitative" as const,
        scale: { domain: [0, 1] },
        title: "masked IIR (lower is better)",
      },
      y: {
        field,
        type: "quantitative" as const,
        scale: field === "agreement" ? { domain: [0, 1] } : { zero: false },
        title: axisTitle,
      },
    },
    layer: [
      {
        mark: { type: "point" as const, filled: true, size: 80 },
        encoding: {
          color: { field: "strategy", type: "nominal" as const, legend: null },
          tooltip: Object.keys(values[0] ?? {}).map((f) => ({ field: f, type: "nominal" as const })),
        },
      },
      {
        mark: { type: "text" as const, align: "left" as const, dx: 7, dy: -7, fontSize: 11 },
        encoding: { text: { field: "strategy", type: "nominal" as const } },
      },
    ],
  });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    data: { values },
    hconcat: [
      panel("agreement", "stated agreement (higher is better)"),
      panel("fluency", "mean token logprob under the other model"),
    ],
  } as TopLevelSpec;
}

export function writeIdentityPlot(summary: readonly IdentitySummary[], outBase: string, title?: string) {
  return writePlot(identitySpec(summary, title), outBase);
}
