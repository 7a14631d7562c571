/**
 * The identity eval's text table and figure: per strategy, the Identity Inference Rate on masked
 * prompts and the agreement on stated ones beside the guards that keep a degenerate output from
 * winning (fluency under the other model, word salad, length, repetition) and the wall time.
 */
import type { TopLevelSpec } from "vega-lite";
import type { IdentityEvalResult, IdentitySummary } from "./identityEval.js";
import { labelledPointLayers } from "./labelledPoints.js";
import { writePlot } from "./plot.js";
import { type Column, fixed, formatColumns } from "./textTable.js";

export function formatIdentityTable(summary: readonly IdentitySummary[]): string {
  const first = summary[0]?.strategy ?? "first";
  const columns: Column<IdentitySummary>[] = [
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
  return formatColumns(columns, summary);
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
    layer: labelledPointLayers(
      Object.keys(values[0] ?? {}).map((f) => ({ field: f, type: "nominal" as const })),
    ),
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
