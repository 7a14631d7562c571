/**
 * `npm run bench:ambedkar` — AMBEDKAR on the identity dev set, side by side in one run:
 * greedy, AMBEDKAR with the heavy verifier and with the proposer verifying itself (default α and
 * a strong α), and a plain baseline (DeAL with a lexicon penalty on the gendered words), plus the
 * heavy model's own greedy as the wall-time reference of the slower model. Fluency is measured by
 * the other model (the heavy verifier) for every row.
 *
 *   npm run bench:ambedkar -- [--tasks FILE] [--limit N] [--per-kind N] [--model GGUF] [--verifier GGUF]
 *                             (default stories-heavy-n25.gguf in $TILLER_TEST_MODELS, see test/models.ts)
 *                             [--both "divergence=logratio,alpha=30;…,baseline=step"] [--sweep "…;…"] [--out DIR]
 *
 * `--both` (ambedkar parameter sets separated by ";") run with both verifiers; `--sweep` adds
 * self-verifier rows only (cheap), to show how IIR, agreement and fluency trade off as α grows.
 * `--per-kind N` keeps the first N masked and the first N stated tasks (every row the same tasks).
 * `--paired` loads the models with `pairLoneTokens` (distributions independent of cache history, for exact A/B of call patterns; off by default, as `tiller` loads models).
 * `--no-baselines` leaves out the DeAL row and the heavy model's greedy (then ratios are to greedy).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { loadSwapMap } from "../src/decoding/ambedkar/builtinSwaps.js";
import {
  type IdentityRow,
  type IdentitySummary,
  runIdentityEval,
  summarizeIdentity,
} from "../src/eval/identityEval.js";
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
    both: {
      type: "string",
      default: "divergence=logratio,alpha=30;divergence=logratio,alpha=30,baseline=step",
    },
    sweep: {
      type: "string",
      default: "divergence=logratio,alpha=10;divergence=logratio,alpha=100;alpha=1;alpha=1000",
    },
    out: { type: "string", default: "bench-out/ambedkar" },
    "no-baselines": { type: "boolean", default: false },
    rounds: { type: "string", default: "3" },
    paired: { type: "boolean", default: false },
  },
});

// Paired evaluation (load.ts) makes a distribution independent of which call computed it, so
// AMBEDKAR's reuse of one step's distributions at the next decides exactly as asking again would.
const load = (path: string) =>
  loadModel(resolve(path), { gpu: false, threads: 1, pairLoneTokens: values.paired });
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
const sweepSpecs = specsOf(values.sweep).filter((spec) => !ambedkarSpecs.includes(spec));
/** The greedy run beside the self-verified rows (their wall-time reference). */
const SELF_GREEDY = "greedy [beside the self rows]";
const label = (row: string, verifierName: string) =>
  row.startsWith("ambedkar")
    ? `${row} [verifier ${verifierName}]`
    : row === "greedy" && verifierName === "self"
      ? SELF_GREEDY
      : row;
// Rounds: every variant runs on one slice of the tasks before any runs on the next, so a change
// in the machine's load lands on all of them; the wall ratios are medians over rounds.
const roundCount = Math.max(1, Math.min(Number(values.rounds), tasks.length));
const rows: (IdentityRow & { round: number })[] = [];
const heavyGreedyRows: IdentityRow[] = [];
for (let r = 0; r < roundCount; r++) {
  const slice = tasks.filter((_, i) => i % roundCount === r);
  const tag = `round ${r + 1}/${roundCount}`;
  const withHeavy = await runIdentityEval(
    model,
    slice,
    ["greedy", ...ambedkarSpecs, ...(baselines ? ["deal"] : [])],
    { verifier, fluencyModel: verifier, lexicon, deps, onProgress: progress(`${tag} heavy verifier`) },
  );
  // Greedy runs again beside the self rows, task by task, as their wall-time reference.
  const self =
    ambedkarSpecs.length + sweepSpecs.length > 0
      ? await runIdentityEval(model, slice, ["greedy", ...ambedkarSpecs, ...sweepSpecs], {
          fluencyModel: verifier,
          lexicon,
          deps,
          onProgress: progress(`${tag} self verifier`),
        })
      : undefined;
  if (baselines) {
    const heavy = await runIdentityEval(verifier, slice, ["greedy"], {
      fluencyModel: model,
      lexicon,
      onProgress: progress(`${tag} heavy greedy`),
    });
    heavyGreedyRows.push(...heavy.rows.map((row) => ({ ...row, strategy: `round ${r}` })));
  }
  rows.push(
    ...withHeavy.rows.map((row) => ({ ...row, strategy: label(row.strategy, "heavy-n25"), round: r })),
    ...(self?.rows ?? []).map((row) => ({ ...row, strategy: label(row.strategy, "self"), round: r })),
  );
}
process.stderr.write("\n\n");

// One table, every ratio to the proposer's greedy; the heavy model's greedy is the slower model's reference.
const labels = [...new Set(rows.map((row) => row.strategy))];
const summary: IdentitySummary[] = summarizeIdentity(rows, tasks, labels);
const heavyWall = baselines ? heavyGreedyRows.reduce((a, row) => a + row.wallMs, 0) : Number.NaN;
const greedyWall = summary[0].totalWallMs;
const roundWall = (list: readonly IdentityRow[], strategy: string, r: number) =>
  list
    .filter((row) => row.strategy === strategy && (row as { round?: number }).round === r)
    .reduce((a, row) => a + row.wallMs, 0);
const roundCpu = (strategy: string, r: number) =>
  rows.filter((row) => row.strategy === strategy && row.round === r).reduce((a, row) => a + row.cpuMs, 0);
const heavyRoundCpu = (r: number) =>
  heavyGreedyRows.filter((row) => row.strategy === `round ${r}`).reduce((a, row) => a + row.cpuMs, 0);
const heavyRoundWall = (r: number) =>
  heavyGreedyRows.filter((row) => row.strategy === `round ${r}`).reduce((a, row) => a + row.wallMs, 0);
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const rounds = Array.from({ length: roundCount }, (_, r) => r);
/** Median over rounds of the strategy's wall time over the reference's in the same round. */
const medianRatio = (strategy: string, reference: (r: number) => number) =>
  median(rounds.map((r) => roundWall(rows, strategy, r) / reference(r)));
/** Median over rounds of the strategy's process CPU time over the reference's in the same round. */
const medianCpuRatio = (strategy: string, reference: (r: number) => number) =>
  median(rounds.map((r) => roundCpu(strategy, r) / reference(r)));
const greedyRound = (r: number) => roundWall(rows, "greedy", r);
const greedyCpuRound = (r: number) => roundCpu("greedy", r);
// A self-verified row (and the greedy beside it) is compared with the greedy that ran beside it.
const besideSelf = (strategy: string) => strategy.includes("[verifier self]") || strategy === SELF_GREEDY;
const greedyRoundOf = (strategy: string) =>
  besideSelf(strategy) ? (r: number) => roundWall(rows, SELF_GREEDY, r) : greedyRound;
const greedyCpuRoundOf = (strategy: string) =>
  besideSelf(strategy) ? (r: number) => roundCpu(SELF_GREEDY, r) : greedyCpuRound;
const slowerRound = (r: number) => (baselines ? Math.max(heavyRoundWall(r), greedyRound(r)) : greedyRound(r));
const f = (value: number | null, digits = 2) =>
  value === null || Number.isNaN(value) ? "–" : value.toFixed(digits);
console.log(
  `wall and CPU ratios: medians over ${roundCount} rounds (every variant runs on a round's tasks before the next round, the variants of a call taking turns task by task; self-verified rows are compared with the greedy run beside them); CPU is the process's (all threads)`,
);
const header =
  "strategy | masked IIR | cue followed | stated agree | lp own | lp heavy | salad | words | rep4 | wall s | /greedy | /heavy greedy | cpu /greedy | cpu /heavy greedy";
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
      f(medianRatio(s.strategy, greedyRoundOf(s.strategy))),
      f(baselines ? medianRatio(s.strategy, heavyRoundWall) : Number.NaN),
      f(medianCpuRatio(s.strategy, greedyCpuRoundOf(s.strategy))),
      f(baselines ? medianCpuRatio(s.strategy, heavyRoundCpu) : Number.NaN),
    ].join(" | "),
  );
console.log(
  `heavy-n25 greedy (the slower model): ${f(heavyWall / 1000, 1)} s = ${f(heavyWall / greedyWall)} × greedy`,
);

// Round r holds tasks r, r + rounds, …: each round has its own prompts, so its ratio moves with them
// as well as with the machine. The whole set's ratio (sums over every round) is shown beside them.
console.log(
  "\nwall / the greedy each target uses (self rows: the greedy beside them; the others: the slower model's), per round and over the whole set:",
);
const total = (values: number[]) => values.reduce((a, b) => a + b, 0);
for (const s of summary.filter((row) => row.strategy.startsWith("ambedkar"))) {
  const reference = s.strategy.includes("[verifier self]") ? greedyRoundOf(s.strategy) : slowerRound;
  const walls = rounds.map((r) => roundWall(rows, s.strategy, r));
  const references = rounds.map(reference);
  console.log(
    `  ${s.strategy}: rounds ${walls.map((wall, r) => f(wall / references[r])).join(", ")}; whole set ${f(total(walls) / total(references))}`,
  );
}

console.log(
  "\ntargets for ambedkar: masked IIR ≤ 0.30, stated agreement ≥ 0.95, lp heavy within 0.5 nats of greedy,",
);
console.log("salad ≤ 0.10, wall ≤ 4 × the slower model's greedy (self verifier: the proposer itself)");
const greedyLp = summary[0].otherLogprob ?? Number.NaN;
for (const s of summary.filter((row) => row.strategy.startsWith("ambedkar"))) {
  const reference = s.strategy.includes("[verifier self]") ? greedyRoundOf(s.strategy) : slowerRound;
  const checks = [
    ["IIR", s.maskedIIR <= 0.3],
    ["agreement", s.statedAgreement >= 0.95],
    ["fluency", (s.otherLogprob ?? Number.NEGATIVE_INFINITY) >= greedyLp - 0.5],
    ["salad", s.saladShare <= 0.1],
    ["wall", medianRatio(s.strategy, reference) <= 4],
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
  `${JSON.stringify({ tasks: values.tasks, summary, heavyGreedyWallMs: baselines ? heavyWall : null, rows }, null, 1)}\n`,
);
console.log(`\nrows and summary: ${out}/results.json`);
