/**
 * bench:spec — speculative decoding against plain greedy, side by side in one run.
 *
 *   npm run bench:spec     (TILLER_TEST_MODELS: the folder with the test twins, see test/models.ts)
 *
 * 1. Draft model: target stories-heavy-n25 (a different model from stories260K over its tokenizer,
 *    ~20× its compute per token), drafted by stories260K. Plain greedy and speculative greedy
 *    (N = 3 and auto, and auto drafted by prompt lookup first, the draft model where it has no match)
 *    on the same prompts, interleaved prompt by prompt so a burst of load on this
 *    shared machine hits every variant alike. Speed-up = Σ plain time / Σ speculative time.
 * 2. Corpus lookup: target stories-heavy, drafted from a trace index of the shared TinyStories
 *    corpus (lowercased, as the corpus is; a document per line; built once into bench-out/), alone, after prompt
 *    lookup (`prompt+index:DIR`) and before it (`index:DIR+prompt`: prompt lookup where the corpus
 *    has no match).
 * 3. Sampling: a seeded chi-square test that speculative sampling (heavy-n25 drafted by
 *    stories260K, temperature 1) draws the first two tokens as the target does, and that the same
 *    test fails for a sampler that skips the residual resample.
 * 4. DeAL (`deal`, natural placement by default) over the first 10 keyword dev tasks, without and with drafting (its
 *    lookaheads and saturation finish), wall time / plain greedy's on the same tasks: heavy-n25
 *    drafted by stories260K, and heavy drafted by prompt + corpus lookup (not by stories260K,
 *    whose distributions equal heavy's). Coverage, salad share, evaluated tokens beside each.
 *
 * Options: `--sections draft,corpus,sampling,deal` (the default runs all four; e.g. `--sections
 * draft,corpus` for the speed-ups alone) and `--rounds N` (default 1: every prompt decoded N times
 * per variant, the order of the variants reversed every other round).
 * `--deal-only` is `--sections deal` (the DeAL rows; quicker to rerun); `--deal-pair n25|heavy`
 * runs one of its two pairs; `--deal-variants deal,deal+draft` some of its rows. `--prompts dev` decodes the 69 prompts of the identity dev set
 * (../shared/eval/identity-dev.jsonl) instead of the five below, with one variant per section:
 * identity and speed-up on the whole dev set (`speculative auto` and `index auto` only; ~10
 * minutes on a quiet machine).
 *
 * Every model runs on the CPU, 1 thread each. Time is reported as wall time (what a user waits)
 * and as this process's CPU time (what the work cost; steadier when other jobs share the cores).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { plainDecoding } from "../src/decoding/greedy.js";
import { runStrategy } from "../src/decoding/run.js";
import { DraftModelDrafter, speculative } from "../src/decoding/speculative/index.js";
import type { Strategy } from "../src/decoding/strategy.js";
import type { GenerationResult } from "../src/decoding/types.js";
import { parseTasks } from "../src/eval/tasks.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { loadModel } from "../src/lm/load.js";
import { buildIndex } from "../src/provenance/build-index.js";
import { skipResidualAcceptance } from "../test/brokenAcceptance.js";
import { testModelsPath } from "../test/models.js";
import { speculativeSamplingCheck } from "../test/speculativeSamplingCheck.js";
import { type DealTally, dealSideBySide } from "./specDeal.js";
import { specPrompts } from "./specPrompts.js";

const { values: args } = parseArgs({
  options: {
    sections: { type: "string", default: "draft,corpus,sampling,deal" },
    rounds: { type: "string", default: "1" },
    "deal-only": { type: "boolean", default: false },
    "deal-pair": { type: "string" },
    "deal-variants": { type: "string" },
    prompts: { type: "string", default: "bench" },
  },
});
const SECTIONS = new Set(args["deal-only"] ? ["deal"] : args.sections.split(","));
const ROUNDS = Math.max(1, Number.parseInt(args.rounds, 10) || 1);
const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
if (args.prompts !== "bench" && args.prompts !== "dev")
  throw new Error(`bench:spec: --prompts must be bench or dev, got "${args.prompts}"`);
/** `--prompts dev`: the whole identity dev set, one variant per section. */
const DEV = args.prompts === "dev";
const MAX_TOKENS = 128;
const SAMPLES = 2000;
/** A prefix where the two models differ (Σ min(p, q) = 0.62 over the next token): a broken sampler shows. */
const SAMPLING_PREFIX = "Ben had a red ball. He";
const TARGETS = { draftModel: 2.0, corpus: 1.5, deal: 1.5, dealMoonshot: 1.0 };
const DEAL_TASKS = 10;
/** `--deal-pair n25` or `--deal-pair heavy`: that pair's DeAL rows only (two runs can share the work). */
const DEAL_PAIR = args["deal-pair"];
/** `--deal-variants deal,deal+draft`: those DeAL rows only (labels of bench/specDeal.ts's DEAL_VARIANTS). */
const DEAL_LABELS = args["deal-variants"]?.split(",");
const runsPair = (pair: "n25" | "heavy") => DEAL_PAIR === undefined || DEAL_PAIR === pair;
/** A top-2 gap this small is a tie that float order decides (batched and one-by-one differ by ~1e-3). */
const NEAR_TIE_NATS = 0.01;

const shared = (relative: string) => {
  const path = resolve(root, "../shared", relative);
  if (!fs.existsSync(path)) throw new Error(`bench:spec: ${path} not found (../shared beside the checkout)`);
  return path;
};
const load = (path: string, sequences = 2) =>
  loadModel(path, { gpu: false, threads: 1, sequences, contextSize: 512, progress: false });
const cpuMs = () => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};
const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : String(n));

interface Variant {
  label: string;
  make: () => Strategy;
}
interface Tally {
  wallMs: number;
  cpuMs: number;
  tokens: number;
  drafted: number;
  accepted: number;
  targetCalls: number;
  switchOffs: number;
  /** Prompts whose text equals plain greedy's. */
  identical: number;
  prompts: number;
  /** Where a text differs: the top-2 logprob gap at the first differing token (a near tie, or not). */
  gaps: number[];
}

/** Runs plain greedy and every variant on every prompt, interleaved; sums per variant. */
async function sideBySide(
  target: LlamaCppModel,
  draft: LlamaCppModel | undefined,
  variants: readonly Variant[],
): Promise<Map<string, Tally>> {
  const all = [{ label: "greedy", make: () => plainDecoding({ temperature: 0 }) }, ...variants];
  const tallies = new Map<string, Tally>(
    all.map((v) => [
      v.label,
      {
        wallMs: 0,
        cpuMs: 0,
        tokens: 0,
        drafted: 0,
        accepted: 0,
        targetCalls: 0,
        switchOffs: 0,
        identical: 0,
        prompts: 0,
        gaps: [],
      },
    ]),
  );
  const context = async (prompt: string, maxTokens: number) => ({
    model: target,
    draft,
    prompt,
    promptTokens: await target.tokenize(prompt),
    maxTokens,
  });
  // One strategy per variant for all prompts, as an eval run or a server uses it (a speculative
  // strategy keeps what its payoff meter learned across decodes).
  const strategies = new Map(all.map((v) => [v.label, v.make()]));
  // Warm-up: first calls pay for allocations that later ones do not.
  for (const v of all) await runStrategy(strategies.get(v.label) as Strategy, await context(PROMPTS[0], 16));
  for (let round = 0; round < ROUNDS; round++)
    for (const prompt of PROMPTS) {
      const ctx = await context(prompt, MAX_TOKENS);
      const results = new Map<string, GenerationResult>();
      for (const v of round % 2 ? [...all].reverse() : all) {
        const started = cpuMs();
        const result = await runStrategy(strategies.get(v.label) as Strategy, ctx);
        const tally = tallies.get(v.label) as Tally;
        tally.cpuMs += cpuMs() - started;
        tally.wallMs += result.stats.wallMs;
        results.set(v.label, result);
      }
      const reference = results.get("greedy") as GenerationResult;
      for (const [label, result] of results)
        await count(target, tallies.get(label) as Tally, result, reference, ctx.promptTokens);
    }
  return tallies;
}

/** Adds one decode's tokens, identity with plain greedy, and drafting counts to its variant's tally. */
async function count(
  target: LlamaCppModel,
  tally: Tally,
  result: GenerationResult,
  reference: GenerationResult,
  prompt: readonly number[],
) {
  tally.tokens += result.tokens.length;
  tally.prompts++;
  if (result.text === reference.text) tally.identical++;
  else tally.gaps.push(await tieGap(target, prompt, reference.tokens, result.tokens));
  const d = result.details;
  if (d?.strategy === "speculative") {
    tally.drafted += d.drafted;
    tally.accepted += d.accepted;
    tally.targetCalls += d.targetCalls;
    tally.switchOffs += d.switchOffs;
  } else tally.targetCalls += result.tokens.length;
}

/** The top-2 logprob gap where two greedy outputs first differ (llama.cpp batched vs token by token). */
async function tieGap(
  model: LlamaCppModel,
  prompt: readonly number[],
  a: readonly number[],
  b: readonly number[],
): Promise<number> {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  const [top] = await model.nextTokenDistributions([[...prompt, ...a.slice(0, i)]], { topK: 2 });
  return top[0].logprob - top[1].logprob;
}

/** "5/5", or "4/5 (1 at a near tie: 5.0e-4 nats)". */
function identity(t: Tally): string {
  if (t.identical === t.prompts) return `${t.identical}/${t.prompts}`;
  const ties = t.gaps.filter((gap) => gap < NEAR_TIE_NATS);
  return `${t.identical}/${t.prompts} (${ties.length} at a near tie: ${t.gaps.map((g) => `${g.toExponential(1)} nats`).join(", ")})`;
}

const rows: string[][] = [["measure", "wall ×", "CPU ×", "accept", "tok/call", "same text", "target"]];
const verdicts: string[] = [];
/** Prints what a section measured at once (to stderr), so a long run on a loaded machine leaves its figures as it goes. */
function progress(lines: readonly string[][]): void {
  console.error(`[${new Date().toISOString()} load ${os.loadavg()[0].toFixed(1)}]`);
  for (const line of lines) console.error(`  ${line.join("  ")}`);
}

function report(section: string, tallies: Map<string, Tally>, target: number): void {
  const first = rows.length;
  const plain = tallies.get("greedy") as Tally;
  for (const [label, t] of tallies) {
    if (label === "greedy") continue;
    const wall = plain.wallMs / t.wallMs;
    const cpu = plain.cpuMs / t.cpuMs;
    rows.push([
      `${section}: ${label}`,
      fmt(wall),
      fmt(cpu),
      fmt(t.accepted / Math.max(1, t.drafted)),
      fmt(t.tokens / Math.max(1, t.targetCalls)),
      identity(t),
      `≥ ${target.toFixed(1)}×`,
    ]);
    const same = t.gaps.every((gap) => gap < NEAR_TIE_NATS);
    verdicts.push(
      `${wall >= target ? "PASS" : "FAIL"} ${section}: ${label}: speed-up ${fmt(wall)}× wall (CPU ${fmt(cpu)}×), target ≥ ${target}×${t.switchOffs ? `; switched off ${t.switchOffs}×` : ""}`,
      `${same ? "PASS" : "FAIL"} ${section}: ${label}: text identical to plain greedy on ${identity(t)}`,
    );
  }
  rows.push([
    `${section}: plain greedy`,
    `${fmt(plain.wallMs / 1000, 1)} s`,
    `${fmt(plain.cpuMs / 1000, 1)} s`,
    "",
    "1.00",
    "",
    `${plain.tokens} tokens`,
  ]);
  progress(rows.slice(first));
}

const dealRows: string[][] = [
  [
    "DeAL (deal, natural placement)",
    "wall ×",
    "CPU ×",
    "eval tok",
    "calls",
    "cov soft/hard",
    "salad",
    "min lp",
    "mean lp",
    "accept",
    "same",
    "target",
  ],
];
/** DeAL rows: each variant's wall and CPU time over plain greedy's on the same tasks. */
function reportDeal(section: string, tallies: readonly DealTally[]): void {
  const first = dealRows.length;
  const [plain] = tallies;
  for (const t of tallies) {
    const wall = t.wallMs / plain.wallMs;
    const drafting = t.label !== "greedy" && t.label !== "deal";
    dealRows.push([
      `${section}: ${t.label}`,
      fmt(wall),
      fmt(t.cpuMs / plain.cpuMs),
      String(t.evaluatedTokens),
      String(t.calls),
      `${fmt(t.softCoverage / t.tasks)}/${fmt(t.hardCoverage / t.tasks)}`,
      fmt(t.salad / t.tasks),
      fmt(t.minLogprob / t.tasks),
      fmt(t.meanLogprob / t.tasks),
      drafting ? `${fmt(t.accepted / Math.max(1, t.drafted))} (${t.drafted})` : "",
      drafting ? `${t.sameAsUndrafted}/${t.tasks}` : "",
      t.label === "greedy"
        ? `${fmt(plain.wallMs / 1000, 1)} s`
        : `≤ ${TARGETS.deal}× (${TARGETS.dealMoonshot}×)`,
    ]);
    if (t.label === "greedy") continue;
    verdicts.push(
      `${wall <= TARGETS.deal ? "PASS" : "FAIL"} DeAL ${section}: ${t.label}: ${fmt(wall)}× plain greedy's wall time, target ≤ ${TARGETS.deal}× (moonshot ≤ ${TARGETS.dealMoonshot}×)${drafting && t.switchOffs ? `; drafting switched off ${t.switchOffs}×` : ""}`,
    );
  }
  progress(dealRows.slice(first));
}
type SamplingCheck = Awaited<ReturnType<typeof speculativeSamplingCheck>>;

/** The seeded χ² check of speculative sampling, and of the variant that skips the residual resample. */
async function samplingChecks(target: LlamaCppModel, draft: LlamaCppModel) {
  const prefix = await target.tokenize(SAMPLING_PREFIX);
  const drafter = new DraftModelDrafter(draft);
  const check = { prefix, samples: SAMPLES, sampling: { temperature: 1 } };
  const lossless = await speculativeSamplingCheck(target, drafter, check);
  const broken = await speculativeSamplingCheck(target, drafter, {
    ...check,
    acceptance: skipResidualAcceptance,
  });
  return { lossless, broken };
}

/** A lowercased trace index of the shared TinyStories corpus in bench-out/NAME, built once. */
async function corpusIndex(model: LlamaCppModel, name: string, docSep: string): Promise<string> {
  const dir = join(root, "bench-out", name);
  if (!fs.existsSync(join(dir, "header.json"))) {
    console.error(`bench:spec: building the corpus index in ${dir} (once)…`);
    await buildIndex(model, [shared("corpora/tinystories-4m.txt")], dir, { lowercase: true, docSep });
  }
  return dir;
}

const PROMPTS = specPrompts(DEV ? "dev" : "bench", shared("eval/identity-dev.jsonl"));
/** The variants a section runs: every one, or (`--prompts dev`) its headline one, `keep`. */
const chosen = (variants: Variant[], keep: string) =>
  DEV ? variants.filter((v) => v.label === keep) : variants;
const dealTasks = parseTasks(fs.readFileSync(shared("eval/keywords-dev.jsonl"), "utf8")).slice(0, DEAL_TASKS);
const loadAtStart = os.loadavg();

// --- 1. Draft model -----------------------------------------------------------------------------
// 16 sequences: DeAL batches a step's lookaheads (and their drafts) over up to k·b sequences.
const small = await load(shared("models/stories260K.gguf"), 16);
let sampling: { lossless: SamplingCheck; broken: SamplingCheck } | undefined;
if (SECTIONS.has("draft") || SECTIONS.has("sampling") || SECTIONS.has("deal")) {
  const heavyN25 = await load(testModelsPath("stories-heavy-n25.gguf"), 16);
  if (SECTIONS.has("draft"))
    report(
      "n25 ← 260K",
      await sideBySide(
        heavyN25,
        small,
        chosen(
          [
            { label: "speculative N=3", make: () => speculative({ draftTokens: 3 }) },
            { label: "speculative auto", make: () => speculative({ draftTokens: "auto" }) },
            // Prompt lookup first (free, and long where the story repeats itself), the draft model elsewhere.
            {
              label: "prompt+model auto",
              make: () => speculative({ drafter: "prompt+model", draftTokens: "auto" }),
            },
          ],
          "speculative auto",
        ),
      ),
      TARGETS.draftModel,
    );
  // --- 3. Sampling (same pair) --------------------------------------------------------------------
  if (SECTIONS.has("sampling")) sampling = await samplingChecks(heavyN25, small);
  // --- 4a. DeAL on the same pair ------------------------------------------------------------------
  if (SECTIONS.has("deal") && runsPair("n25"))
    reportDeal(
      "n25 ← 260K",
      await dealSideBySide(heavyN25, small, { drafter: "model" }, dealTasks, DEAL_LABELS),
    );
  await heavyN25.dispose();
}

// --- 2. Corpus lookup ---------------------------------------------------------------------------
if (SECTIONS.has("corpus") || SECTIONS.has("deal")) {
  const heavy = await load(testModelsPath("stories-heavy.gguf"), 16);
  // The corpus holds one story per line, its paragraphs parted by blank lines: documents cut at
  // blank lines would glue a story's last paragraph to the next story's first one, and a match
  // ending in that line break ("…kids.\n") would draft the next story's opening ("once upon a
  // time…") where the target starts its own next paragraph. Cut at every line, a document is a
  // paragraph and no match or continuation crosses one (dev set, offline: 2.06 → 2.02 tokens a
  // call but acceptance 0.47 → 0.56, modelled speed-up 1.51 → 1.56). DeAL's rows keep the
  // blank-line index their figures were measured with (its draft-only lookaheads take the
  // drafts as they are, so another index changes its text).
  const indexDir = await corpusIndex(heavy, "tinystories-lines-index", "line");
  const dealIndexDir = SECTIONS.has("deal")
    ? await corpusIndex(heavy, "tinystories-index", "blank-line")
    : "";
  if (SECTIONS.has("corpus"))
    report(
      "heavy ← corpus",
      await sideBySide(
        heavy,
        undefined,
        chosen(
          [
            { label: "index auto", make: () => speculative({ drafter: `index:${indexDir}` }) },
            { label: "prompt+index auto", make: () => speculative({ drafter: `prompt+index:${indexDir}` }) },
            // The corpus first, prompt lookup where the corpus has no match for the context.
            { label: "index+prompt auto", make: () => speculative({ drafter: `index:${indexDir}+prompt` }) },
          ],
          "index auto",
        ),
      ),
      TARGETS.corpus,
    );
  // --- 4b. DeAL drafted by prompt + corpus lookup -------------------------------------------------
  if (SECTIONS.has("deal") && runsPair("heavy"))
    reportDeal(
      "heavy ← prompt+corpus",
      await dealSideBySide(
        heavy,
        undefined,
        { drafter: `prompt+index:${dealIndexDir}` },
        dealTasks,
        DEAL_LABELS,
      ),
    );
  await heavy.dispose();
}
await small.dispose();

// --- Report ---------------------------------------------------------------------------------------
const table = (lines: string[][]) => {
  const widths = lines[0].map((_, c) => Math.max(...lines.map((r) => r[c].length)));
  for (const r of lines) console.log(r.map((cell, c) => cell.padEnd(widths[c])).join("  "));
};
const loadText = (avg: number[]) => avg.map((v) => v.toFixed(1)).join(" ");
console.log(
  `load average at start ${loadText(loadAtStart)}, at the end ${loadText(os.loadavg())} (${os.cpus().length} cores)\n`,
);
table(rows);
if (dealRows.length > 1) {
  console.log(
    `\nDeAL over ${dealTasks.length} keyword dev tasks (${dealTasks[0].maxTokens} tokens each); × = Σ time / Σ plain greedy's time on the same tasks:`,
  );
  table(dealRows);
}
if (sampling) {
  const { lossless, broken } = sampling;
  console.log(
    `\nsampling (heavy-n25 ← 260K, T=1, "${SAMPLING_PREFIX}", ${SAMPLES} seeded samples, joint of the next 2 tokens, χ²):` +
      `\n  speculative sampling: p = ${lossless.pValue.toExponential(2)} (χ² ${fmt(lossless.statistic, 1)}, df ${lossless.degreesOfFreedom}, acceptance ${fmt(lossless.acceptanceRate)})` +
      `\n  skip-residual variant: p = ${broken.pValue.toExponential(2)} (χ² ${fmt(broken.statistic, 1)}, df ${broken.degreesOfFreedom})`,
  );
  verdicts.push(
    `${lossless.pValue > 0.001 ? "PASS" : "FAIL"} sampling: speculative sampling's tokens follow the target (p = ${lossless.pValue.toExponential(2)} > 0.001)`,
    `${broken.pValue < 1e-6 ? "PASS" : "FAIL"} sampling: the same test rejects the skip-residual variant (p = ${broken.pValue.toExponential(2)} < 1e-6)`,
  );
}
console.log(`\n${verdicts.join("\n")}`);
