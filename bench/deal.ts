/**
 * `npm run bench:deal` — DeAL on the keyword dev set with the stories model, side by side in
 * one run: greedy, DeAL (tiller defaults), raw DeAL (`deal:raw`: no floor, no bridging),
 * Best-of-N at DeAL's evaluated-token budget, and on a subset the paper-faithful variant and one
 * ablation per speed-up; then, on every task, the ablation of each fluency piece (bridging,
 * patience, lookahead, k, candidate slack, and session 8's defaults) with word-salad share and worst-token logprob beside
 * coverage; last, greedy vs DeAL on the compute-bound twin (`--heavy`, first `--heavy-tasks` tasks).
 *
 *   npm run bench:deal -- [--tasks FILE] [--model GGUF] [--subset N] [--out DIR]
 *                         [--heavy GGUF] [--heavy-tasks N]
 */
import { mkdirSync } from "node:fs";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { formatTable, writeQualityVsCost } from "../src/eval/report.js";
import { type EvalRow, runEval, type StrategySummary, summarize } from "../src/eval/runEval.js";
import { readTasks } from "../src/eval/tasks.js";
import { loadModel } from "../src/lm/load.js";
import { testModelsDir } from "../test/models.js";

const { values } = parseArgs({
  options: {
    tasks: { type: "string", default: "../shared/eval/keywords-dev.jsonl" },
    model: { type: "string", default: process.env.TILLER_TEST_MODEL ?? "../shared/models/stories260K.gguf" },
    subset: { type: "string", default: "8" },
    out: { type: "string", default: "bench-out/deal" },
    heavy: { type: "string", default: join(testModelsDir(), "stories-heavy.gguf") },
    "heavy-tasks": { type: "string", default: "10" },
  },
});

const model = await loadModel(resolve(values.model), { gpu: false, threads: 1 });
const tasks = readTasks(resolve(values.tasks));
const subset = tasks.slice(0, Number(values.subset));
const out = resolve(values.out);
mkdirSync(out, { recursive: true });

const progress = (label: string) => (p: { done: number; total: number }) =>
  process.stderr.write(`\r${label}: ${p.done}/${p.total}   `);

// Wall-time ratios are only as good as the machine is quiet: the load is printed at both ends.
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(", ");
console.log(`model ${model.id}, ${model.threads} thread(s); ${tasks.length} tasks from ${values.tasks}`);
console.log(`load average at start: ${load()}\n`);

// 1. Greedy, DeAL and raw DeAL on every task.
const main = await runEval(model, tasks, ["greedy", "deal", "deal:raw"], {
  onProgress: progress("greedy, deal, deal:raw"),
});
const [greedy, dealRow] = main.summary;

// 2. Best-of-N with the same evaluated-token budget as DeAL.
const n = Math.max(1, Math.round(dealRow.meanEvaluatedTokens / Math.max(1, greedy.meanEvaluatedTokens)));
const bon = await runEval(model, tasks, [`bon:n=${n}`], { onProgress: progress(`bon:n=${n}`) });
// Each table is printed as soon as it is measured (a long run interrupted keeps what it found).
const all: EvalRow[] = [...main.rows, ...bon.rows];
const summary: StrategySummary[] = summarize(all, ["greedy", "deal", "deal:raw", `bon:n=${n}`]);
process.stderr.write("\n");
console.log(`All ${tasks.length} tasks (ratios vs greedy):`);
console.log(formatTable(summary));

// 3. On a subset: the paper-faithful variant (the prototype's settings) and one ablation per speed-up.
const paperSpec = "deal:k=5,l=8,b=2,lambda=10,paper";
const ablations = [
  paperSpec,
  "deal:paper",
  "deal:batch=false",
  "deal:commit=false",
  "deal:saturation=false",
  "deal:lexical=false",
  "deal:commitPlacing=false", // speed-up 5 off
  "deal:bridgeScreen=false", // speed-up 6 off
  "deal:reuseBridge=false", // speed-up 7 off
];
const sub = await runEval(model, subset, ["greedy", "deal", ...ablations], {
  onProgress: progress("subset"),
});
process.stderr.write("\n");
console.log(`\nFirst ${subset.length} tasks — paper-faithful variant and ablations (ratios vs greedy):`);
console.log(formatTable(sub.summary));

// 4. On every task: the ablation of each piece that keeps the text natural, and of the candidate
// slack. Greedy and DeAL are run again beside them (ratios side by side).
const fluencyAblations = [
  "deal:bridge=0", // floor without bridging
  "deal:patience=0.5", // the floor relaxes over the first half of the budget (session 7)
  "deal:l=4", // the lookahead of session 8
  "deal:k=5", // the k of session 8
  "deal:candidateSlack=false", // speed-up 8 off: all k plain candidates looked ahead of
  "deal:k=5,l=4,candidateSlack=3", // the defaults of session 8
];
const pieces = await runEval(model, tasks, ["greedy", "deal", ...fluencyAblations], {
  onProgress: progress("fluency ablations"),
});
process.stderr.write("\n\n");
console.log(`\nAll ${tasks.length} tasks — what each fluency piece buys (ratios vs greedy):`);
console.log(formatTable(pieces.summary));
await writeQualityVsCost(
  [...summary, ...sub.summary.slice(2), ...pieces.summary.slice(2)],
  `${out}/quality-vs-cost`,
  "DeAL on keywords-dev",
);

const d = summary[1];
const b = summary[3];
const g = summary[0];
const paper = sub.summary.find((s) => s.strategy === paperSpec) as StrategySummary;
// 5. Greedy and DeAL on the compute-bound twin (same distributions, ~100× the compute per token).
const heavyModel = await loadModel(resolve(values.heavy), { gpu: false, threads: 1 });
const heavy = await runEval(heavyModel, tasks.slice(0, Number(values["heavy-tasks"])), ["greedy", "deal"], {
  onProgress: progress("heavy twin"),
});
await heavyModel.dispose();
process.stderr.write("\n\n");
console.log(`\nCompute-bound twin ${values.heavy}, first ${heavy.taskIds.length} tasks:`);
console.log(formatTable(heavy.summary));
const h = heavy.summary[1];

const checks: [string, boolean, string][] = [
  ["DeAL hard coverage ≥ 0.85", d.hardCoverage >= 0.85, d.hardCoverage.toFixed(3)],
  ["DeAL word-salad share ≤ 0.10", d.fluency.saladShare <= 0.1, d.fluency.saladShare.toFixed(3)],
  [
    "DeAL mean min-token logprob ≥ −5.0",
    (d.fluency.meanMinLogprob ?? -99) >= -5,
    `${d.fluency.meanMinLogprob?.toFixed(2)} (greedy ${g.fluency.meanMinLogprob?.toFixed(2)})`,
  ],
  [
    "DeAL logprob/token ≥ greedy's − 0.3",
    (d.logprobPerToken ?? -99) >= (g.logprobPerToken ?? 0) - 0.3,
    `${d.logprobPerToken?.toFixed(3)} vs ${g.logprobPerToken?.toFixed(3)}`,
  ],
  [
    "DeAL repeated 4-gram share ≤ greedy's",
    d.fluency.repetition <= g.fluency.repetition,
    `${d.fluency.repetition.toFixed(3)} vs ${g.fluency.repetition.toFixed(3)}`,
  ],
  ["DeAL wall time ≤ 4× greedy", d.wallMsRatio <= 4, `${d.wallMsRatio.toFixed(2)}×`],
  ["DeAL wall time ≤ 4× greedy on the heavy twin", h.wallMsRatio <= 4, `${h.wallMsRatio.toFixed(2)}×`],
  [
    `DeAL beats bon:n=${n} at ~equal evaluated tokens`,
    d.softCoverage > b.softCoverage,
    `soft ${d.softCoverage.toFixed(3)} vs ${b.softCoverage.toFixed(3)}; evaluated ${d.meanEvaluatedTokens.toFixed(0)} vs ${b.meanEvaluatedTokens.toFixed(0)} per task`,
  ],
];
console.log("\nTargets:");
for (const [name, ok, detail] of checks) console.log(`  ${ok ? "PASS" : "FAIL"}  ${name}: ${detail}`);
console.log(
  `  info  paper-faithful (${paperSpec}) wall time ${paper.wallMsRatio.toFixed(1)}× greedy on the subset; soft ${paper.softCoverage.toFixed(3)}`,
);
console.log(`\nload average at end: ${load()}`);
console.log(`plot: ${out}/quality-vs-cost.svg / .png`);
await model.dispose();
