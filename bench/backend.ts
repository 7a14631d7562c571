/**
 * bench:backend — the llama.cpp backend against node-llama-cpp's own loop, on the test model.
 *
 *   npm run bench:backend            (TILLER_TEST_MODEL overrides ../shared/models/stories260K.gguf)
 *
 * 1. Greedy tokens/s: tiller `generate` (strategy greedy) vs `sequence.evaluate(tokens,
 *    {temperature: 0})` on node-llama-cpp's own context, same model, same thread count (1), each
 *    baseline run generating exactly as many tokens as the tiller run did (stories may end early).
 * 2. Batched next-token distributions for 1, 4 and 16 prefixes per call; every prefix is fresh
 *    (random tokens after BOS), so this measures evaluation, not cache hits.
 * 3. A DeAL-like access pattern: 20 steps, each 16 greedy rollouts of 8 tokens branching from the
 *    current prefix (64 tokens at first) with one distinct top-16 candidate each, after which the
 *    prefix grows by the best branch's token. Reports the share of requested prefix tokens served
 *    from cache.
 */
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { generate } from "../src/generate.js";
import { loadModel } from "../src/lm/load.js";
import { type ModelUsage, type Token, usageSince } from "../src/lm/types.js";

const THREADS = 1;
const GREEDY_RUNS = 5;
const GREEDY_TOKENS = 256;
const PROMPTS = ["Once upon a time", "Tom and Sue went to the park", "The little dog was"];
const DIST_PREFIX_TOKENS = 64;
const DIST_PREFIXES_PER_SETTING = 64;
const DEAL = { steps: 20, branches: 16, rolloutTokens: 8, prefixTokens: 64 };

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const modelPath = resolve(root, process.env.TILLER_TEST_MODEL ?? "../shared/models/stories260K.gguf");
if (!existsSync(modelPath)) {
  console.error(`bench:backend: model not found at ${modelPath} (set TILLER_TEST_MODEL)`);
  process.exit(1);
}

const rows: string[][] = [];
const row = (...cells: (string | number)[]) => rows.push(cells.map(String));
const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

const model = await loadModel(modelPath, { gpu: false, threads: THREADS, progress: false });

// --- 1. Greedy: tiller vs node-llama-cpp's own loop --------------------------------------------
const llama = await getLlama({
  gpu: false,
  build: "never",
  logLevel: LlamaLogLevel.error,
  progressLogs: false,
});
const rawModel = await llama.loadModel({ modelPath, gpuLayers: 0 });
const rawContext = await rawModel.createContext({
  contextSize: model.contextSize,
  sequences: 1,
  threads: THREADS,
});
const rawSequence = rawContext.getSequence();

async function tillerGreedy(prompt: string): Promise<{ tokens: Token[]; ms: number }> {
  const before = { ...model.usage };
  const started = performance.now();
  await generate(model, { prompt, maxTokens: GREEDY_TOKENS, strategy: "greedy" });
  const ms = performance.now() - started;
  // The stop token, when one ended the story, was generated too: count it like the baseline does.
  const generated = usageSince(before, model.usage).generatedTokens;
  const [rollout] = await model.rollouts([{ prefix: await model.tokenize(prompt) }], {
    maxTokens: generated,
  });
  return { tokens: rollout.tokens, ms };
}

async function rawGreedy(prompt: string, count: number): Promise<{ tokens: Token[]; ms: number }> {
  await rawSequence.clearHistory();
  const input = rawModel.tokenize(prompt);
  if (model.bosToken !== undefined && input[0] !== model.bosToken) input.unshift(model.bosToken as never);
  const tokens: Token[] = [];
  const started = performance.now();
  for await (const token of rawSequence.evaluate(input, { temperature: 0 })) {
    tokens.push(token);
    if (tokens.length >= count) break;
  }
  return { tokens, ms: performance.now() - started };
}

// Warm both up once.
await tillerGreedy(PROMPTS[0]);
await rawGreedy(PROMPTS[0], 32);
let tillerTokens = 0;
let tillerMs = 0;
let rawTokens = 0;
let rawMs = 0;
let sameTokens = true;
for (let run = 0; run < GREEDY_RUNS; run++)
  for (const prompt of PROMPTS) {
    const ours = await tillerGreedy(prompt);
    const theirs = await rawGreedy(prompt, ours.tokens.length);
    tillerTokens += ours.tokens.length;
    tillerMs += ours.ms;
    rawTokens += theirs.tokens.length;
    rawMs += theirs.ms;
    if (ours.tokens.join() !== theirs.tokens.join()) sameTokens = false;
  }
const tillerRate = (tillerTokens / tillerMs) * 1000;
const rawRate = (rawTokens / rawMs) * 1000;
await rawContext.dispose();
await rawModel.dispose();

// --- 2. Batched next-token distributions ----------------------------------------------------------
let seed = 12345;
const nextRandom = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};
/** BOS plus random ordinary tokens: shares nothing but BOS with anything cached. */
function freshPrefix(length: number): Token[] {
  const tokens: Token[] = model.bosToken === undefined ? [] : [model.bosToken];
  while (tokens.length < length) {
    const token = 3 + Math.floor(nextRandom() * (model.vocabularySize - 3));
    if (!model.isStopToken(token)) tokens.push(token);
  }
  return tokens;
}

const distRows: { batch: number; prefixRate: number; distRate: number; cached: number }[] = [];
for (const batch of [1, 4, 16]) {
  await model.nextTokenDistributions([freshPrefix(DIST_PREFIX_TOKENS)], { topK: 16 }); // warm-up
  const waves = DIST_PREFIXES_PER_SETTING / batch;
  const prefixes = Array.from({ length: waves }, () =>
    Array.from({ length: batch }, () => freshPrefix(DIST_PREFIX_TOKENS)),
  );
  const before = { ...model.usage };
  const started = performance.now();
  for (const wave of prefixes) await model.nextTokenDistributions(wave, { topK: 16 });
  const seconds = (performance.now() - started) / 1000;
  const usage = usageSince(before, model.usage);
  distRows.push({
    batch,
    prefixRate: usage.evaluatedTokens / seconds,
    distRate: DIST_PREFIXES_PER_SETTING / seconds,
    cached: usage.cachedPrefixTokens / usage.requestedPrefixTokens,
  });
}

// --- 3. DeAL-like access pattern ------------------------------------------------------------------
const storyStart = await model.tokenize("Once upon a time");
const [opening] = await model.rollouts([{ prefix: storyStart }], {
  maxTokens: DEAL.prefixTokens - storyStart.length,
});
let prefix: Token[] = [...storyStart, ...opening.tokens].filter(
  (t) => !model.isStopToken(t) || t === model.bosToken,
);
prefix = prefix.slice(0, DEAL.prefixTokens);
const dealBefore: ModelUsage = { ...model.usage };
const dealStarted = performance.now();
for (let step = 0; step < DEAL.steps; step++) {
  const [candidates] = await model.nextTokenDistributions([prefix], { topK: DEAL.branches });
  const branches = candidates.filter((c) => !model.isStopToken(c.token));
  const rollouts = await model.rollouts(
    branches.map((c) => ({ prefix: [...prefix, c.token] })),
    { maxTokens: DEAL.rolloutTokens },
  );
  // Grow by the branch whose candidate + rollout is most likely (a stand-in for a reward).
  let best = 0;
  for (let i = 1; i < branches.length; i++)
    if (branches[i].logprob + rollouts[i].logprob > branches[best].logprob + rollouts[best].logprob) best = i;
  prefix = [...prefix, branches[best].token];
}
const dealMs = performance.now() - dealStarted;
const deal = usageSince(dealBefore, model.usage);
const dealCached = deal.cachedPrefixTokens / deal.requestedPrefixTokens;
await model.dispose();

// --- Report ----------------------------------------------------------------------------------------
row("measure", "value", "target");
row("model", `${model.id} (threads ${THREADS}, CPU, ${model.contextSize}-token context)`, "");
row("greedy tok/s, tiller generate", fmt(tillerRate), "");
row("greedy tok/s, node-llama-cpp sequence.evaluate", fmt(rawRate), "");
row("greedy ratio tiller / node-llama-cpp", fmt(tillerRate / rawRate, 2), "≥ 0.80");
row(
  "greedy tokens per side",
  `${tillerTokens} (${GREEDY_RUNS} runs × ${PROMPTS.length} prompts, ≤ ${GREEDY_TOKENS} each)`,
  "",
);
row("greedy outputs identical", sameTokens ? "yes" : "NO", "yes");
for (const d of distRows)
  row(
    `next-token dists, ${String(d.batch).padStart(2)} prefix(es)/call`,
    `${fmt(d.prefixRate)} prefix tok/s, ${fmt(d.distRate, 1)} dists/s (cached ${fmt(d.cached * 100, 1)}%)`,
    "",
  );
row(
  "DeAL-like: requested prefix tokens",
  `${deal.requestedPrefixTokens} (${deal.calls} calls, ${DEAL.steps} steps × ${DEAL.branches} rollouts × ${DEAL.rolloutTokens} tok)`,
  "",
);
row("DeAL-like: served from cache", `${deal.cachedPrefixTokens} (${fmt(dealCached * 100, 1)}%)`, "≥ 90%");
row(
  "DeAL-like: evaluated tokens",
  `${deal.evaluatedTokens} (${deal.generatedTokens} generated), ${fmt(dealMs)} ms`,
  "",
);
const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
for (const [i, r] of rows.entries()) {
  console.log(
    r
      .map((cell, c) => cell.padEnd(widths[c]))
      .join("  ")
      .trimEnd(),
  );
  if (i === 0) console.log(widths.map((w) => "-".repeat(w)).join("  "));
}
const ok = tillerRate / rawRate >= 0.8 && dealCached >= 0.9;
console.log(ok ? "\nall targets met" : "\nTARGET MISSED");
