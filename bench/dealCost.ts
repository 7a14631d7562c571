/**
 * `npx tsx bench/dealCost.ts MODEL FROM:TO SPEC[@DRAFTER]…` — what each strategy costs in target
 * work, counted rather than timed, so the figure does not move with the machine's load: batched
 * forward passes ("decodes": every llama.cpp evaluation queued in one tick is one batch) and
 * evaluated positions, over keyword dev tasks FROM..TO, and a modelled stories-heavy time
 * (threads=1: ~14 ms a decode + ~2.3 ms a position, measured on a quiet machine) beside quality
 * (keyword coverage soft/hard, worst and mean token logprob, salad) and identity with the first spec.
 * stories260K has stories-heavy's distributions, so its counts are heavy's at a fraction of the time.
 * DRAFTER: `prompt`, `index:DIR`, `prompt+index:DIR` (INDEX stands for bench-out/tinystories-index).
 *
 *   npx tsx bench/dealCost.ts ../shared/models/stories260K.gguf 0:40 greedy deal deal@prompt+index:INDEX
 */
import { resolve } from "node:path";
import { LlamaContextSequence } from "node-llama-cpp";
import { createStrategy } from "../src/decoding/registry.js";
import { runStrategy } from "../src/decoding/run.js";
import { fluencyOf, tokenLogprobs } from "../src/eval/fluency.js";
import { taskReward } from "../src/eval/taskReward.js";
import { readTasks } from "../src/eval/tasks.js";
import { loadModel } from "../src/lm/load.js";
import { promptTokens } from "../src/lm/prompt.js";
import { keywordCoverage } from "../src/rewards/keywords.js";

const DECODE_MS = 14;
const POSITION_MS = 2.3;

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
let inTick = false;
const proto = LlamaContextSequence.prototype as unknown as {
  controlledEvaluate: (...args: unknown[]) => unknown;
};
const evaluate = proto.controlledEvaluate;
proto.controlledEvaluate = function (this: unknown, ...args: unknown[]) {
  if (!inTick) {
    decodes++;
    inTick = true;
    setImmediate(() => {
      inTick = false;
    });
  }
  return evaluate.apply(this, args);
};

const fmt = (n: number, digits = 2) => n.toFixed(digits);
let first: string[] | undefined;
for (const label of specs) {
  const [spec, drafter] = label.split("@");
  const drafting = drafter
    ? { drafter: drafter.replace("INDEX", resolve("bench-out/tinystories-index")) }
    : undefined;
  const sum = { decodes: 0, positions: 0, tokens: 0, soft: 0, hard: 0, min: 0, mean: 0, salad: 0, cpu: 0 };
  const texts: string[] = [];
  for (const task of tasks) {
    const prompt = await promptTokens(model, task.prompt);
    await model.clearCache();
    const decodes0 = decodes;
    const positions0 = model.usage.evaluatedTokens;
    const cpu0 = process.cpuUsage();
    const result = await runStrategy(createStrategy(spec, { reward: taskReward(task) }), {
      model,
      prompt: task.prompt,
      promptTokens: prompt,
      maxTokens: task.maxTokens,
      drafting,
    });
    const cpu = process.cpuUsage(cpu0);
    sum.cpu += (cpu.user + cpu.system) / 1e6;
    sum.decodes += decodes - decodes0;
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
    `${label.padEnd(44)} tokens ${sum.tokens}  decodes ${sum.decodes}  positions ${sum.positions}  heavy ms/task ${fmt((sum.decodes * DECODE_MS + sum.positions * POSITION_MS) / n, 0)}` +
      `  cov ${fmt(sum.soft / n, 3)}/${fmt(sum.hard / n, 3)}  min lp ${fmt(sum.min / n)}  mean lp ${fmt(sum.mean / n, 3)}  salad ${sum.salad}` +
      `  same text as ${specs[0]} ${texts.filter((t, i) => t === first?.[i]).length}/${n}  CPU ${fmt(sum.cpu, 1)} s`,
  );
}
await model.dispose();
