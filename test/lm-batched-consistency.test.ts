/**
 * Batched calls on a pool whose sequences already hold other prefixes must give what one-by-one
 * calls on a fresh context give. With several sequences per batch, llama.cpp reorders the output
 * rows lazily on the first logit read, and node-llama-cpp reads every sequence's logits in
 * parallel: before the backend serialised that first read, whole waves now and then came back
 * with another row's (or a garbled) distribution.
 */
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { inBatchOrder } from "../src/lm/llama/logitReadGuard.js";
import type { ScoredContinuation, ScoreRequest, Token } from "../src/lm/types.js";
import { loadTestModel, testModelPath } from "./helpers.js";

/**
 * Rounding only: cached tokens were evaluated in other batches than a fresh context evaluates
 * them in (wrong rows were off by whole nats). Relative for unlikely tokens, whose float32
 * logprobs round more coarsely.
 */
const TOLERANCE = 1e-4;
/** Distribution entries compared per prefix (the most likely ones of the reference). */
const TOP = 24;
/** Scoring rounds (each 18 requests, five waves). */
const ROUNDS = 4;

const PROMPTS = [
  "There was once a young kid who wanted to be a brave knight.",
  "One day, a small child who loved toy trucks and cars went outside.",
  "Once upon a time",
  "The little girl had a red ball.",
  "Tom and Sue went to the park",
  "One day, a little bird",
  "Lily liked to",
  "There was once a child who loved to paint.",
  "The dog",
];

let pooled: LlamaCppModel;
let single: LlamaCppModel;
let prompts: Token[][];
/** A sampled story after each prompt, so prefixes of many lengths share stems. */
let stories: Token[][];

beforeAll(async () => {
  [pooled, single] = await Promise.all([loadTestModel({ sequences: 4 }), loadTestModel({ sequences: 1 })]);
  prompts = PROMPTS.map((p) => single.tokenizeSync(p));
  const rollouts = await single.rollouts(
    prompts.map((prefix, i) => ({ prefix, seed: 7 + i })),
    { maxTokens: 40, temperature: 1 },
  );
  stories = rollouts.map((r) => r.tokens);
});

afterAll(async () => {
  await Promise.all([pooled?.dispose(), single?.dispose()]);
});

function expectClose(actual: number, expected: number, what: string): void {
  expect(Math.abs(actual - expected), `${what}: ${actual} vs ${expected}`).toBeLessThan(
    TOLERANCE * Math.max(1, Math.abs(expected)),
  );
}

const referenceDistributions = new Map<string, Map<number, number>>();
const referenceScores = new Map<string, ScoredContinuation>();

/** `single`'s full distribution after `prefix`, from a fresh context (memoised). */
async function referenceDistribution(prefix: readonly Token[]): Promise<Map<number, number>> {
  const key = prefix.join();
  let reference = referenceDistributions.get(key);
  if (!reference) {
    await single.clearCache();
    const [distribution] = await single.nextTokenDistributions([prefix], { topK: TOP });
    reference = new Map(distribution.map((e) => [e.token, e.logprob]));
    referenceDistributions.set(key, reference);
  }
  return reference;
}

/** `single`'s score of `request`, from a fresh context (memoised). */
async function referenceScore(request: ScoreRequest): Promise<ScoredContinuation> {
  const key = `${request.prefix.join()}|${request.continuation.join()}`;
  let reference = referenceScores.get(key);
  if (!reference) {
    await single.clearCache();
    [reference] = await single.scoreContinuations([request], { nextTopK: 1 });
    referenceScores.set(key, reference);
  }
  return reference;
}

/** Compares `pooled`'s batched distributions for `prefixes` with one-by-one calls on a fresh context. */
async function expectDistributionsMatch(prefixes: readonly Token[][], label: string): Promise<void> {
  const batched = await pooled.nextTokenDistributions(prefixes, { topK: pooled.vocabularySize });
  for (let i = 0; i < prefixes.length; i++) {
    const got = new Map(batched[i].map((e) => [e.token, e.logprob]));
    for (const [token, logprob] of await referenceDistribution(prefixes[i]))
      expectClose(got.get(token) ?? Number.NEGATIVE_INFINITY, logprob, `${label} #${i} token ${token}`);
  }
}

/** Compares `pooled`'s batched scores with one-by-one calls on a fresh context. */
async function expectScoresMatch(requests: readonly ScoreRequest[], label: string): Promise<void> {
  const batched = await pooled.scoreContinuations(requests, { nextTopK: 1 });
  for (let i = 0; i < requests.length; i++) {
    const reference = await referenceScore(requests[i]);
    reference.logprobs.forEach((logprob, j) => {
      expectClose(batched[i].logprobs[j], logprob, `${label} #${i} continuation token ${j}`);
    });
    expect(batched[i].next?.[0].token, `${label} #${i} next token`).toBe(reference.next?.[0].token);
    expectClose(batched[i].next?.[0].logprob ?? 0, reference.next?.[0].logprob ?? 0, `${label} #${i} next`);
  }
}

/** `items` in a seeded shuffled order (so every round fills the pool's sequences differently). */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let state = seed;
  for (let i = out.length - 1; i > 0; i--) {
    state = (state * 1103515245 + 12345) % 2147483648;
    const j = state % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Prefixes of every story cut at staggered lengths: overlapping stems, uneven new-token counts. */
function cuts(offset: number): Token[][] {
  return prompts.flatMap((prompt, i) =>
    [0, 1, 2].map((k) => [...prompt, ...stories[i].slice(0, (offset + 13 * k + 5 * i) % stories[i].length)]),
  );
}

describe("batched calls on a pool that other calls filled", () => {
  it("nextTokenDistributions: overlapping prefixes, more than the pool holds, repeated in other orders", async () => {
    const prefixes = cuts(3); // 27 prefixes, 4 sequences: seven waves
    await expectDistributionsMatch(prefixes, "first pass");
    // The pool now holds the last wave; reversed and re-cut, every wave erases and reuses tails.
    await expectDistributionsMatch([...prefixes].reverse(), "reversed");
    await expectDistributionsMatch(cuts(17), "re-cut");
  });

  it("scoreContinuations: stories after their prompts and after longer prefixes, in shuffled rounds", async () => {
    const whole = prompts.map((prefix, i) => ({ prefix, continuation: stories[i] }));
    const tails = prompts.map((prompt, i) => {
      const split = 4 + ((3 * i) % 20);
      return { prefix: [...prompt, ...stories[i].slice(0, split)], continuation: stories[i].slice(split) };
    });
    // Many outputs per wave (a wave holds up to 4 × 40 scored tokens): the reorder a batch needs
    // is long, so a concurrent read meets it often; several rounds make a miss unlikely.
    for (let round = 0; round < ROUNDS; round++)
      await expectScoresMatch(shuffled([...whole, ...tails], round + 1), `round ${round}`);
  });

  it("mixed: rollouts between distribution and scoring calls", async () => {
    const requests = prompts.map((prefix, i) => ({
      prefix: [...prefix, ...stories[i].slice(0, i + 2)],
      seed: i,
    }));
    const rollouts = await pooled.rollouts(requests, { maxTokens: 12, temperature: 1 });
    const extended = requests.map((r, i) => [...r.prefix, ...rollouts[i].tokens]);
    await expectDistributionsMatch(
      extended.flatMap((prefix) => [prefix, prefix.slice(0, -5)]),
      "after rollouts",
    );
    await expectScoresMatch(
      requests.map((r, i) => ({ prefix: r.prefix, continuation: rollouts[i].tokens })),
      "rollouts rescored",
    );
    // The rollouts' own logprobs (token by token, so rounding differs from one batched pass by up
    // to ~2.5e-3 on unlikely tokens; a wrong row is off by nats).
    for (let i = 0; i < requests.length; i++) {
      const reference = await referenceScore({
        prefix: requests[i].prefix,
        continuation: rollouts[i].tokens,
      });
      rollouts[i].logprobs.forEach((logprob, j) => {
        expect(Math.abs(logprob - reference.logprobs[j]), `rollout #${i} token ${j}`).toBeLessThan(
          5e-3 * Math.max(1, Math.abs(reference.logprobs[j])),
        );
      });
    }
  });
});

describe("logit reads of a batch", () => {
  it("the first read after a decode that llama.cpp reorders runs alone (it applies the reorder)", async () => {
    // A context whose native reads are watched from below the backend: a read that starts while
    // the first read after a decode is still running could see half-reordered rows. Deterministic,
    // unlike the corruption itself, which needs the worker threads to collide.
    const llama = await getLlama({
      gpu: false,
      build: "never",
      logLevel: LlamaLogLevel.error,
      progressLogs: false,
    });
    const raw = await llama.loadModel({ modelPath: testModelPath(), gpuLayers: 0 });
    const context = await raw.createContext({ contextSize: 512, sequences: 4, threads: 1 });
    const native = (context as unknown as { _ctx: Record<string, (...args: unknown[]) => Promise<unknown>> })
      ._ctx;
    const { initBatch, addToBatch, decodeBatch, sampleToken } = native;
    let batch: { sequence: number; tokens: number }[] = [];
    let reorderable = 0;
    let decoded = false;
    let firstRunning = false;
    let reads = 0;
    let overlapping = 0;
    const watch = (name: string, value: (...args: never[]) => unknown) =>
      Object.defineProperty(native, name, { configurable: true, value });
    watch("initBatch", (...args: unknown[]) => {
      batch = [];
      return initBatch.apply(native, args);
    });
    watch("addToBatch", (sequence: number, first: number, tokens: Uint32Array, ...rest: unknown[]) => {
      batch.push({ sequence, tokens: tokens.length });
      return addToBatch.call(native, sequence, first, tokens, ...rest);
    });
    watch("decodeBatch", async (...args: unknown[]) => {
      // Only a batch llama.cpp returns out of order has a reorder a parallel read could meet.
      const ordered = inBatchOrder(batch);
      const result = await decodeBatch.apply(native, args);
      decoded = !ordered;
      if (!ordered) reorderable++;
      return result;
    });
    watch("sampleToken", (...args: unknown[]) => {
      reads++;
      if (firstRunning) overlapping++;
      const first = decoded;
      decoded = false;
      const read = sampleToken.apply(native, args);
      if (first) {
        firstRunning = true;
        void read.finally(() => {
          firstRunning = false;
        });
      }
      return read;
    });
    const sequences = Array.from({ length: 4 }, () => context.getSequence());
    const watched = new LlamaCppModel("stories260K.gguf", testModelPath(), raw, context, sequences, 1);
    try {
      await watched.nextTokenDistributions(cuts(3).slice(0, 8), { topK: 5 });
      await watched.scoreContinuations(
        prompts.slice(0, 4).map((prefix, i) => ({ prefix, continuation: stories[i] })),
      );
      // One read per distribution asked: each prefix's, and each scored token's (none after the
      // last token: no nextTopK was asked).
      expect(reads).toBe(8 + stories.slice(0, 4).reduce((sum, story) => sum + story.length, 0));
      expect(reorderable, "batches whose outputs llama.cpp reorders").toBeGreaterThan(2);
      expect(overlapping, `${overlapping} of ${reads} logit reads overlapped a batch's first read`).toBe(0);
    } finally {
      await watched.dispose();
    }
  });
});
