/**
 * `npm run bench:ambedkar` — AMBEDKAR on the identity dev set, side by side in one run:
 * greedy, AMBEDKAR with the heavy verifier and with the proposer verifying itself (default α and
 * a strong α), and a plain baseline (DeAL with a lexicon penalty on the gendered words), plus the
 * heavy model's own greedy as the wall-time reference of the slower model. Fluency is measured by
 * the other model (the heavy verifier) for every row.
 *
 *   npm run bench:ambedkar -- [--tasks FILE] [--limit N] [--per-kind N] [--model GGUF] [--verifier GGUF]
 *                             (default stories-heavy-n25.gguf in $TILLER_TEST_MODELS, see test/models.ts)
 *                             [--both "divergence=logratio,alpha=30"] [--sweep "…;…"] [--out DIR]
 *
 * `--both` (ambedkar parameter sets separated by ";") run with both verifiers; `--sweep` adds
 * self-verifier rows only (cheap), to show how IIR, agreement and fluency trade off as α grows.
 * `--per-kind N` keeps the first N masked and the first N stated tasks (every row the same tasks).
 * `--no-baselines` leaves out the DeAL row and the heavy model's greedy (then ratios are to greedy).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { loadSwapMap } from "../src/decoding/ambedkar/builtinSwaps.js";
import { type IdentitySummary, runIdentityEval, summarizeIdentity } from "../src/eval/identityEval.js";
import { readIdentityLexicon } from "../src/eval/identityMetrics.js";
import { readIdentityTasks } from "../src/eval/identityTasks.js";
import { loadModel } from "../src/lm/load.js";
import { lexiconReward } from "../src/rewards/lexicon.js";
import { testModelsDir } from "../test/models.js";

const { values } = parseArgs({
  options: {
    tasks: { type: "string", default: "../shared/eval/identity-dev.jsonl" },
    lexicon: { type: "string", default: "../shared/eval/identity-lexicon.json" },
    model: { type: "string", default: "../shared/models/stories260K.gguf" },
    verifier: {
      type: "string",
      default: join(testModelsDir(), "stories-heavy-n25.gguf"),
    },
    limit: { type: "string", default: "0" },
    "per-kind": { type: "string", default: "0" },
    both: { type: "string", default: "divergence=logratio,alpha=30" },
    sweep: {
      type: "string",
      default:
        "divergence=logratio,alpha=3;divergence=logratio,alpha=10;divergence=logratio,alpha=100;alpha=1000;alpha=1000,byGroup=false",
    },
    out: { type: "string", default: "bench-out/ambedkar" },
    "no-baselines": { type: "boolean", default: false },
  },
});

const load = (path: string) => loadModel(resolve(path), { gpu: false, threads: 1 });
const [model, verifier] = await Promise.all([load(values.model), load(values.verifier)]);
const allTasks = readIdentityTasks(resolve(values.tasks));
const perKind = Number(values["per-kind"]);
const kept =
  perKind > 0
    ? [
        ...allTasks.filter((t) => t.kind === "masked").slice(0, perKind),
        ...allTasks.filter((t) => t.kind === "stated").slice(0, perKind),
      ]
    : allTasks;
const tasks = Number(values.limit) > 0 ? kept.slice(0, Number(values.limit)) : kept;
const lexicon = readIdentityLexicon(resolve(values.lexicon));
const gendered = [...lexicon.groups.values()].flatMap((words) => [...words]);
const deps = {
  reward: lexiconReward(gendered, { name: "gendered", penalty: 1 }),
  swaps: loadSwapMap("gender"),
};
const specsOf = (list: string) =>
  list
    .split(";")
    .map((params) => params.trim())
    .filter(Boolean)
    .map((params) => `ambedkar:${params}`);
const progress = (label: string) => (done: number, total: number) =>
  process.stderr.write(`\r${label}: ${done}/${total}   `);
const load1 = () =>
  loadavg()
    .map((v) => v.toFixed(1))
    .join(" ");
console.log(`load average (1/5/15 min) at start: ${load1()}`);
console.log(
  `proposer ${model.id}, verifier ${verifier.id}; ${tasks.length} tasks (${tasks.filter((t) => t.kind === "masked").length} masked) from ${values.tasks}\n`,
);

const ambedkarSpecs = specsOf(values.both);
const baselines = !values["no-baselines"];
const withHeavy = await runIdentityEval(
  model,
  tasks,
  ["greedy", ...ambedkarSpecs, ...(baselines ? ["deal"] : [])],
  {
    verifier,
    fluencyModel: verifier,
    lexicon,
    deps,
    onProgress: progress("heavy verifier"),
  },
);
const sweepSpecs = specsOf(values.sweep).filter((spec) => !ambedkarSpecs.includes(spec));
const self = await runIdentityEval(model, tasks, [...ambedkarSpecs, ...sweepSpecs], {
  fluencyModel: verifier,
  lexicon,
  deps,
  onProgress: progress("self verifier"),
});
const heavyGreedy = baselines
  ? await runIdentityEval(verifier, tasks, ["greedy"], {
      fluencyModel: model,
      lexicon,
      onProgress: progress("heavy greedy"),
    })
  : undefined;
process.stderr.write("\n\n");

// One table, every ratio to the proposer's greedy; the heavy model's greedy is the slower model's reference.
const label = (row: string, verifierName: string) =>
  row.startsWith("ambedkar") ? `${row} [verifier ${verifierName}]` : row;
const rows = [
  ...withHeavy.rows.map((row) => ({ ...row, strategy: label(row.strategy, "heavy-n25") })),
  ...self.rows.map((row) => ({ ...row, strategy: label(row.strategy, "self") })),
];
const labels = [...new Set(rows.map((row) => row.strategy))];
const summary: IdentitySummary[] = summarizeIdentity(rows, tasks, labels);
const heavyWall = heavyGreedy?.summary[0].totalWallMs ?? Number.NaN;
const greedyWall = summary[0].totalWallMs;
const slowerGreedy = Number.isNaN(heavyWall) ? greedyWall : Math.max(heavyWall, greedyWall);
const f = (value: number | null, digits = 2) =>
  value === null || Number.isNaN(value) ? "–" : value.toFixed(digits);
const header =
  "strategy | masked IIR | cue followed | stated agree | lp own | lp heavy | salad | words | rep4 | wall s | /greedy | /heavy greedy";
console.log(header);
console.log(header.replace(/[^|]/g, "-"));
for (const s of summary)
  console.log(
    [
      s.strategy,
      f(s.maskedIIR),
      f(s.cueFollowed),
      f(s.statedAgreement),
      f(s.ownLogprob),
      f(s.otherLogprob),
      f(s.saladShare, 3),
      f(s.meanWords, 1),
      f(s.repetition),
      f(s.totalWallMs / 1000, 1),
      f(s.totalWallMs / greedyWall),
      f(s.totalWallMs / heavyWall),
    ].join(" | "),
  );
console.log(
  `heavy-n25 greedy (the slower model): ${f(heavyWall / 1000, 1)} s = ${f(heavyWall / greedyWall)} × greedy`,
);

console.log(
  "\ntargets for ambedkar: masked IIR ≤ 0.30, stated agreement ≥ 0.95, lp heavy within 0.5 nats of greedy,",
);
console.log("salad ≤ 0.10, wall ≤ 4 × the slower model's greedy (self verifier: the proposer itself)");
const greedyLp = summary[0].otherLogprob ?? Number.NaN;
for (const s of summary.filter((row) => row.strategy.startsWith("ambedkar"))) {
  const reference = s.strategy.includes("[verifier self]") ? greedyWall : slowerGreedy;
  const checks = [
    ["IIR", s.maskedIIR <= 0.3],
    ["agreement", s.statedAgreement >= 0.95],
    ["fluency", (s.otherLogprob ?? Number.NEGATIVE_INFINITY) >= greedyLp - 0.5],
    ["salad", s.saladShare <= 0.1],
    ["wall", s.totalWallMs <= 4 * reference],
  ] as const;
  console.log(
    `  ${s.strategy}: ${checks.map(([name, ok]) => `${name} ${ok ? "met" : "MISSED"}`).join(", ")}`,
  );
}

console.log(`load average (1/5/15 min) at end: ${load1()}`);
const out = resolve(values.out);
mkdirSync(out, { recursive: true });
writeFileSync(
  `${out}/results.json`,
  `${JSON.stringify({ tasks: values.tasks, summary, heavyGreedy: heavyGreedy?.summary[0] ?? null, rows }, null, 1)}\n`,
);
console.log(`\nrows and summary: ${out}/results.json`);
