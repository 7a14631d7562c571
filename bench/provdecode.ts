/**
 * Prov-Decode figures (issue 5), part of `npm run bench:index` (also runnable alone:
 * `tsx bench/provdecode.ts [indexDir]`).
 *
 * With the stories model on ../shared/eval/keywords-dev.jsonl (all 40 tasks), through `runEval`
 * (so the numbers match `tiller eval`: cold cache per run, regurgitation on the lowercased,
 * re-tokenized output): greedy, DeAL, DeAL + Prov-Decode (hard) and DeAL + Prov-Decode (soft),
 * with the recommended settings (PROV_DECODE_RECOMMENDED: normalised lookup, n = 12, minLength = 8,
 * τ = 20, γ = 10). DeAL and the two Prov-Decode runs are interleaved over `rounds` rounds (default
 * 2) and their wall times averaged, so a slow moment of the machine does not land on one of them.
 * Targets: the 8-gram share falls by ≥ 50% vs DeAL, wall time ≤ 1.15× DeAL's, soft keyword
 * coverage within 0.05 of DeAL's.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { type EvalRow, runEval, summarize } from "../src/eval/runEval.js";
import { readTasks } from "../src/eval/tasks.js";
import { loadModel } from "../src/lm/load.js";
import { buildIndex } from "../src/provenance/build-index.js";
import { PROV_DECODE_RECOMMENDED, ProvDecodeVeto } from "../src/provenance/prov-decode.js";
import { TraceIndex } from "../src/provenance/trace-index.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const shared = path.resolve(here, "../../shared");
const modelPath = path.join(shared, "models/stories260K.gguf");
const tasksPath = path.join(shared, "eval/keywords-dev.jsonl");
const corpusPath = path.join(shared, "corpora/tinystories-4m.txt");

export async function provDecodeFigures(indexDir: string, rounds = 2): Promise<void> {
  const model = await loadModel(modelPath, { gpu: false, threads: 1 });
  try {
    if (!fs.existsSync(path.join(indexDir, "header.json")))
      await buildIndex(model, [corpusPath], indexDir, { lowercase: true, modelSpec: modelPath });
    const index = TraceIndex.open(indexDir);
    const tasks = readTasks(tasksPath);
    const settings = { ...PROV_DECODE_RECOMMENDED, normalize: { model } };
    console.log(
      `\nProv-Decode on ${path.basename(tasksPath)} (${tasks.length} tasks), ${model.id}, index ${indexDir}: ` +
        `n=${settings.n} minLength=${settings.minLength} tau=${settings.tau} gamma(soft)=${settings.gamma}, normalised lookup; ` +
        `deal/prov runs interleaved over ${rounds} rounds`,
    );
    const rows: EvalRow[] = [];
    const vetoStats = new Map<string, { assessed: number; vetoed: number; ms: number }>();
    const labels = ["greedy", "deal", "deal+prov(hard)", "deal+prov(soft)"];
    rows.push(...(await runEval(model, tasks, ["greedy"], { index })).rows);
    for (let round = 0; round < rounds; round++) {
      rows.push(...(await runEval(model, tasks, ["deal"], { index })).rows);
      for (const mode of ["hard", "soft"] as const) {
        const veto = new ProvDecodeVeto(index, { ...settings, mode });
        const r = await runEval(model, tasks, ["deal"], { index, vetoes: [veto] });
        const label = `deal+prov(${mode})`;
        for (const row of r.rows) rows.push({ ...row, strategy: label });
        const s = vetoStats.get(label) ?? { assessed: 0, vetoed: 0, ms: 0 };
        vetoStats.set(label, {
          assessed: s.assessed + veto.stats.assessed,
          vetoed: s.vetoed + veto.stats.vetoed,
          ms: s.ms + veto.stats.ms,
        });
      }
    }
    const summary = summarize(rows, labels);
    const deal = summary[1];
    const head = [
      "strategy",
      "soft cov",
      "8-gram share",
      "longest span mean/max",
      "wall ms/task",
      "× deal",
      "eval tok/task",
      "vetoed/assessed",
      "veto ms/task",
    ];
    const table = summary.map((s) => {
      const v = vetoStats.get(s.strategy);
      return [
        s.strategy,
        s.softCoverage.toFixed(3),
        (s.regurgitation?.share8 ?? Number.NaN).toFixed(3),
        `${(s.regurgitation?.meanLongestSpan ?? Number.NaN).toFixed(1)}/${s.regurgitation?.maxLongestSpan ?? "-"}`,
        s.meanWallMs.toFixed(1),
        (s.meanWallMs / deal.meanWallMs).toFixed(3),
        s.meanEvaluatedTokens.toFixed(0),
        v ? `${v.vetoed}/${v.assessed}` : "-",
        v ? (v.ms / s.tasks).toFixed(1) : "-",
      ];
    });
    const widths = head.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
    const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
    console.log(line(head));
    console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
    for (const row of table) console.log(line(row));
    console.log(
      "8-gram share: mean over tasks of the share of the output's 8-grams (lowercased, re-tokenized) found verbatim in the index; " +
        "longest span in index tokens. Wall and evaluated tokens: mean per task (deal and prov rows over all rounds).",
    );
    const dealShare = deal.regurgitation?.share8 ?? Number.NaN;
    for (const s of summary.slice(2)) {
      const share = s.regurgitation?.share8 ?? Number.NaN;
      const cut = 1 - share / dealShare;
      const ratio = s.meanWallMs / deal.meanWallMs;
      const dcov = s.softCoverage - deal.softCoverage;
      const verdict = (ok: boolean) => (ok ? "PASS" : "FAIL");
      console.log(
        `${verdict(cut >= 0.5)} ${s.strategy}: 8-gram share cut by ${(100 * cut).toFixed(1)}% (${dealShare.toFixed(3)} → ${share.toFixed(3)}; target ≥ 50%)`,
      );
      console.log(
        `${verdict(ratio <= 1.15)} ${s.strategy}: wall time ${ratio.toFixed(3)}× deal (${deal.meanWallMs.toFixed(1)} → ${s.meanWallMs.toFixed(1)} ms/task; target ≤ 1.15×)`,
      );
      console.log(
        `${verdict(Math.abs(dcov) <= 0.05)} ${s.strategy}: soft keyword coverage ${s.softCoverage.toFixed(3)} vs deal ${deal.softCoverage.toFixed(3)} (Δ ${dcov >= 0 ? "+" : ""}${dcov.toFixed(3)}; target |Δ| ≤ 0.05)`,
      );
    }
  } finally {
    await model.dispose();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url))
  await provDecodeFigures(path.resolve(process.argv[2] ?? path.join(here, "../bench-out/index-small")));
