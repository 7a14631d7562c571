/**
 * `npx tsx bench/dealCost.ts MODEL FROM:TO SPEC[@DRAFTER]…` — what each strategy costs in target
 * work, counted rather than timed, so the figure does not move with the machine's load: batched
 * forward passes ("decodes": every llama.cpp evaluation queued in one tick is one batch), the
 * sequences evaluated in them (one per sequence per batch) and evaluated positions, over keyword
 * dev tasks FROM..TO, and a modelled stories-heavy time (threads=1: ~2.3 ms a decode + ~8.9 ms a
 * sequence in it + ~2.25 ms a position; a one-sequence call ~13.5 ms as before) beside quality
 * (keyword coverage soft/hard, worst and mean token logprob, salad) and identity with the first spec.
 * stories260K has stories-heavy's distributions, so its counts are heavy's at a fraction of the time.
 * DRAFTER: `prompt`, `index:DIR`, `prompt+index:DIR` (INDEX stands for bench-out/tinystories-index),
 * or `model:FILE` (a draft model; decodes and positions count the target's only).
 *
 *   npx tsx bench/dealCost.ts ../shared/models/stories260K.gguf 0:40 greedy deal deal@prompt+index:INDEX
 *   npx tsx bench/dealCost.ts TWINS/stories-heavy-n25.gguf 0:10 deal deal@model:../shared/models/stories260K.gguf
 */
import { basename, resolve } from "node:path";
import { LlamaContextSequence } from "node-llama-cpp";
import { createStrategy } from "../src/decoding/registry.js";
import { runStrategy } from "../src/decoding/run.js";
import { fluencyOf, tokenLogprobs } from "../src/eval/fluency.js";
import { taskReward } from "../src/eval/taskReward.js";
import { readTasks } from "../src/eval/tasks.js";
import { loadModel } from "../src/lm/load.js";
import { promptTokens } from "../src/lm/prompt.js";
import { keywordCoverage } from "../src/rewards/keywords.js";

// Fitted by least squares over the single-decode calls of drafted DeAL on stories-heavy (threads=1,
// session 11, under load: 311 calls, 1–8 sequences each): every sequence in a batch costs about as
// much as a call of its own (llama.cpp decodes each sequence of a batch as a micro-batch of its own).
const DECODE_MS = 2.3;
const SEQUENCE_MS = 8.9;
const POSITION_MS = 2.25;

const [modelPath, range = "0:10", ...specs] = process.argv.slice(2);
if (!modelPath || specs.length === 0) {
  console.error("usage: npx tsx bench/dealCost.ts MODEL FROM:TO SPEC[@DRAFTER]…");
  process.exit(2);
}
const [from, to] = range.split(":").map(Number);
const model = await loadModel(resolve(modelPath), { gpu: false, threads: 1, sequences: 16 });
const tasks = readTasks(resolve("../shared/eval/keywords-dev.jsonl")).slice(from, to);

// Counts batches: every evaluation started in the same tick is decoded in one llama.cpp batch.
let decodes = 0;
/** Sequence evaluations: one per sequence in each batch. */
let sequenceEvals = 0;
let inTick = false;
const proto = LlamaContextSequence.prototype as unknown as {
  controlledEvaluate: (...args: unknown[]) => unknown;
};
const evaluate = proto.controlledEvaluate;
proto.controlledEvaluate = function (this: unknown, ...args: unknown[]) {
  // The draft model's evaluations are not the target's work.
  if (draftFiles.has((this as LlamaContextSequence).model.filename ?? "")) return evaluate.apply(this, args);
  sequenceEvals++;
  if (!inTick) {
    decodes++;
    inTick = true;
    setImmediate(() => {
      inTick = false;
    });
  }
  return evaluate.apply(this, args);
};

/** Draft models loaded for `@model:FILE`, by file (their evaluations are not counted). */
const draftModels = new Map<string, Awaited<ReturnType<typeof loadModel>>>();
const draftFiles = new Set<string>();
async function draftModel(file: string) {
  let draft = draftModels.get(file);
  if (!draft) {
    draft = await loadModel(resolve(file), { gpu: false, threads: 1, sequences: 16 });
    draftModels.set(file, draft);
    // node-llama-cpp names a model by its file's base name.
    draftFiles.add(basename(file));
  }
  return draft;
}

const fmt = (n: number, digits = 2) => n.toFixed(digits);
let first: string[] | undefined;
for (const label of specs) {
  const [spec, drafter] = label.split("@");
  const draft = drafter?.startsWith("model:") ? await draftModel(drafter.slice("model:".length)) : undefined;
  const drafting = drafter
    ? { drafter: draft ? "model" : drafter.replace("INDEX", resolve("bench-out/tinystories-index")) }
    : undefined;
  const sum = {
    decodes: 0,
    sequences: 0,
    positions: 0,
    tokens: 0,
    soft: 0,
    hard: 0,
    min: 0,
    mean: 0,
    salad: 0,
    cpu: 0,
  };
  const texts: string[] = [];
  for (const task of tasks) {
    const prompt = await promptTokens(model, task.prompt);
    await model.clearCache();
    await draft?.clearCache();
    const decodes0 = decodes;
    const sequences0 = sequenceEvals;
    const positions0 = model.usage.evaluatedTokens;
    const cpu0 = process.cpuUsage();
    const result = await runStrategy(createStrategy(spec, { reward: taskReward(task) }), {
      model,
      prompt: task.prompt,
      promptTokens: prompt,
      maxTokens: task.maxTokens,
      draft,
      drafting,
    });
    const cpu = process.cpuUsage(cpu0);
    sum.cpu += (cpu.user + cpu.system) / 1e6;
    sum.decodes += decodes - decodes0;
    sum.sequences += sequenceEvals - sequences0;
    sum.positions += model.usage.evaluatedTokens - positions0;
    sum.tokens += result.tokens.length;
    texts.push(result.text);
    const coverage = keywordCoverage(result.text, task.keywords, { inflections: true });
    sum.soft += coverage.soft;
    sum.hard += coverage.hard;
    const fluency = fluencyOf(
      model,
      prompt,
      result.tokens,
      await tokenLogprobs(model, prompt, result.tokens),
      result.text,
    );
    sum.min += fluency.minToken?.logprob ?? 0;
    sum.mean += fluency.meanLogprob ?? 0;
    if (fluency.salad) sum.salad++;
  }
  first ??= texts;
  const n = tasks.length;
  console.log(
    `${label.padEnd(44)} tokens ${sum.tokens}  decodes ${sum.decodes}  sequences ${sum.sequences}  positions ${sum.positions}  heavy ms/task ${fmt((sum.decodes * DECODE_MS + sum.sequences * SEQUENCE_MS + sum.positions * POSITION_MS) / n, 0)}` +
      `  cov ${fmt(sum.soft / n, 3)}/${fmt(sum.hard / n, 3)}  min lp ${fmt(sum.min / n)}  mean lp ${fmt(sum.mean / n, 3)}  salad ${sum.salad}` +
      `  same text as ${specs[0]} ${texts.filter((t, i) => t === first?.[i]).length}/${n}  CPU ${fmt(sum.cpu, 1)} s`,
  );
}
await model.dispose();
for (const draft of draftModels.values()) await draft.dispose();
