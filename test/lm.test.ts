import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { TillerError } from "../src/errors.js";
import { generate } from "../src/generate.js";
import { samplerDistribution } from "../src/index.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import type { Rollout, Token } from "../src/lm/types.js";
import { loadTestModel, testModelPath } from "./helpers.js";

const LILY = ", there was a little girl named Lily. She loved to play outside in the park.";
const PROMPTS = ["Once upon a time", "The dog", "Tom and Sue went", "One day, a little bird"];
/**
 * Evaluating a prefix in one batch rather than token by token changes only float rounding (up to
 * ~2.5e-3 on this model's less likely tokens); token-by-token evaluation reproduces a rollout's
 * logprobs to ~1e-7.
 */
const TOLERANCE = 5e-3;

let model: LlamaCppModel;

beforeAll(async () => {
  // Four sequences, so a call with ten prefixes needs three waves.
  model = await loadTestModel({ sequences: 4 });
});

afterAll(async () => {
  await model?.dispose();
});

/** The logprob the model gives `token` after `prefix`, from the full distribution. */
async function logprobsOf(prefixes: Token[][], tokens: Token[], m: LlamaCppModel = model): Promise<number[]> {
  const distributions = await m.nextTokenDistributions(prefixes, { topK: m.vocabularySize });
  return distributions.map((distribution, i) => {
    const entry = distribution.find((e) => e.token === tokens[i]);
    if (!entry) throw new Error(`token ${tokens[i]} missing from the full distribution`);
    return entry.logprob;
  });
}

/** Equal within `tolerance`, relative for unlikely tokens (float32 rounding grows with |logprob|). */
function expectClose(actual: readonly number[], expected: readonly number[], tolerance = TOLERANCE): void {
  expect(actual).toHaveLength(expected.length);
  for (let i = 0; i < actual.length; i++)
    expect(Math.abs(actual[i] - expected[i]), `entry ${i}: ${actual[i]} vs ${expected[i]}`).toBeLessThan(
      tolerance * Math.max(1, Math.abs(expected[i])),
    );
}

describe("greedy decoding", () => {
  it('continues "Once upon a time" with the Lily sentence and stops at the end-of-story BOS', async () => {
    const result = await generate(model, { prompt: "Once upon a time", maxTokens: 1000 });
    expect(result.text.startsWith(LILY)).toBe(true);
    expect(result.stopReason).toBe("end-of-generation");
    expect(result.tokens).not.toContain(model.bosToken);
    expect(result.text).not.toContain("<s>");
    expect(result.stats.generatedTokens).toBe(result.tokens.length);
    expect(result.stats.promptTokens).toBe((await model.tokenize("Once upon a time")).length);
    // Prompt + every generated token but the last (the stop token is never fed back).
    expect(result.stats.evaluatedTokens).toBe(result.stats.promptTokens + result.tokens.length);

    // The raw rollout ends with BOS (id 1): that is the token that stopped it.
    const [rollout] = await model.rollouts([{ prefix: await model.tokenize("Once upon a time") }], {
      maxTokens: 1000,
    });
    expect(model.bosToken).toBe(1);
    expect(rollout.tokens.at(-1)).toBe(1);
    expect(rollout.tokens.slice(0, -1)).toEqual(result.tokens);
    expect(rollout.stopReason).toBe("end-of-generation");
  });

  it("stops at max tokens when the story has not ended", async () => {
    const result = await generate(model, { prompt: "Once upon a time", maxTokens: 10 });
    expect(result.stopReason).toBe("max-tokens");
    expect(result.tokens).toHaveLength(10);
    expect(LILY.startsWith(result.text)).toBe(true);
  });
});

describe("sampling", () => {
  it("is reproducible for a seed and differs across seeds", async () => {
    const run = (seed: number) =>
      generate(model, { prompt: "Once upon a time", strategy: "sample", maxTokens: 40, seed });
    const a = await run(1);
    const b = await run(1);
    expect(b.tokens).toEqual(a.tokens);
    expect(b.logprob).toBe(a.logprob);
    const others = await Promise.all([2, 3, 4].map(run));
    for (const other of others) expect(other.tokens).not.toEqual(a.tokens);
    // Sampling at temperature 1 does not just reproduce greedy.
    const greedy = await generate(model, { prompt: "Once upon a time", maxTokens: 40 });
    expect([a, ...others].some((r) => r.text !== greedy.text)).toBe(true);
  });
});

describe("beam search", () => {
  it("with width 1 equals greedy", async () => {
    for (const prompt of PROMPTS) {
      const greedy = await generate(model, { prompt, maxTokens: 60 });
      const beam = await generate(model, { prompt, maxTokens: 60, strategy: "beam", beamWidth: 1 });
      expect(beam.tokens, prompt).toEqual(greedy.tokens);
      expect(beam.stopReason).toBe(greedy.stopReason);
    }
  });

  it("with a wider beam scores at least as well as greedy (length-normalised)", async () => {
    let strictlyBetter = 0;
    for (const prompt of PROMPTS) {
      const greedy = await generate(model, { prompt, maxTokens: 60 });
      // Greedy's score is the rollout's summed logprob, stop token included; normalise like beam.
      const length = greedy.tokens.length + (greedy.stopReason === "end-of-generation" ? 1 : 0);
      const greedyScore = (greedy.score as number) / length;
      for (const beamWidth of [2, 4]) {
        const beam = await generate(model, { prompt, maxTokens: 60, strategy: "beam", beamWidth });
        expect(beam.score, `${prompt} width ${beamWidth}`).toBeGreaterThanOrEqual(greedyScore - 1e-4);
        if ((beam.score as number) > greedyScore + 1e-3) strictlyBetter++;
        // The reported logprob is the sum over the returned tokens.
        const promptTokens = await model.tokenize(prompt);
        const prefixes = beam.tokens.map((_, i) => [...promptTokens, ...beam.tokens.slice(0, i)]);
        const sum = (await logprobsOf(prefixes, beam.tokens)).reduce((x, y) => x + y, 0);
        expect(Math.abs(sum - beam.logprob)).toBeLessThan(TOLERANCE * beam.tokens.length);
      }
    }
    // Otherwise the search would be indistinguishable from greedy.
    expect(strictlyBetter).toBeGreaterThan(0);
  });
});

describe("rollouts and next-token distributions", () => {
  it("a rollout's logprob is the sum of the per-step next-token logprobs", async () => {
    const prefix = await model.tokenize("Once upon a time");
    const stepper = await loadTestModel({ sequences: 1 });
    onTestFinished(() => stepper.dispose());
    for (const options of [
      { temperature: 0 },
      { temperature: 1, seed: 7 },
      { temperature: 0.8, topK: 20, seed: 3 },
    ]) {
      const [rollout] = await model.rollouts([{ prefix }], { maxTokens: 24, ...options });
      expect(rollout.tokens).toHaveLength(24);
      const prefixes = rollout.tokens.map((_, i) => [...prefix, ...rollout.tokens.slice(0, i)]);
      // Step by step on a one-sequence model, as a strategy walks: each call extends the cached
      // prefix by one token, which is how the rollout itself evaluated them.
      const steps: number[] = [];
      for (let i = 0; i < prefixes.length; i++)
        steps.push(...(await logprobsOf([prefixes[i]], [rollout.tokens[i]], stepper)));
      expectClose(rollout.logprobs, steps, 1e-5);
      expect(Math.abs(rollout.logprob - steps.reduce((a, b) => a + b, 0))).toBeLessThan(1e-4);
      // All steps in one batched call: the same up to rounding.
      expectClose(rollout.logprobs, await logprobsOf(prefixes, rollout.tokens));
      expect(rollout.logprob).toBeCloseTo(
        rollout.logprobs.reduce((a, b) => a + b, 0),
        9,
      );
    }
  });

  it("distributions are an exact log-softmax over the vocabulary, most likely first", async () => {
    const [full] = await model.nextTokenDistributions([await model.tokenize("Once upon a time")], {
      topK: model.vocabularySize,
    });
    expect(full).toHaveLength(model.vocabularySize);
    const mass = full.reduce((sum, e) => sum + Math.exp(e.logprob), 0);
    expect(Math.abs(mass - 1)).toBeLessThan(1e-4);
    for (let i = 1; i < full.length; i++) expect(full[i].logprob).toBeLessThanOrEqual(full[i - 1].logprob);
    const [top3] = await model.nextTokenDistributions([await model.tokenize("Once upon a time")], {
      topK: 3,
    });
    expect(top3).toHaveLength(3);
    // Not renormalised over the top k.
    expectClose(
      top3.map((e) => e.logprob),
      full.slice(0, 3).map((e) => e.logprob),
      1e-9,
    );
  });

  it("top-1 (the argmax alone, computed without the full distribution) equals the head of the full distribution", async () => {
    const prefixes = await Promise.all(
      ["Once upon a time", "Tom and Sue went to the park. They", "The little dog"].map((text) =>
        model.tokenize(text),
      ),
    );
    const full = await model.nextTokenDistributions(prefixes, { topK: model.vocabularySize });
    const top1 = await model.nextTokenDistributions(prefixes, { topK: 1 });
    prefixes.forEach((_, i) => {
      expect(top1[i]).toHaveLength(1);
      expect(top1[i][0].token).toBe(full[i][0].token);
      expect(Math.abs(top1[i][0].logprob - full[i][0].logprob)).toBeLessThan(1e-5);
    });
  });

  it("scoreContinuations with argmaxOnly: the same argmax at every position, logprobs only where a token is it", async () => {
    const prefix = await model.tokenize("Once upon a time");
    const [story] = await model.rollouts([{ prefix }], { maxTokens: 6 });
    // The greedy story with its fourth token replaced: positions 0–2 agree with the argmax, 3 does not.
    const continuation = [...story.tokens.slice(0, 3), (story.tokens[3] + 1) % model.vocabularySize];
    const options = { topK: 1, nextTopK: 1 };
    const [full] = await model.scoreContinuations([{ prefix, continuation }], options);
    const [argmax] = await model.scoreContinuations([{ prefix, continuation }], {
      ...options,
      argmaxOnly: true,
    });
    expect(argmax.top?.map((d) => d.map((e) => e.token))).toEqual(
      full.top?.map((d) => d.map((e) => e.token)),
    );
    expect(argmax.next?.[0].token).toBe(full.next?.[0].token);
    expectClose(argmax.logprobs.slice(0, 3), full.logprobs.slice(0, 3), 1e-5);
    expect(argmax.logprobs[3]).toBeNaN();
    expect(full.logprobs[3]).toBeLessThan(full.top?.[3][0].logprob ?? 0);
    // Asked for more than the argmax, the option is ignored: every logprob is computed.
    const [wide] = await model.scoreContinuations([{ prefix, continuation }], { topK: 2, argmaxOnly: true });
    expect(wide.logprobs[3]).toBeCloseTo(full.logprobs[3], 4);
  });

  it("a reused (cached) sequence gives the same distributions as a fresh model", async () => {
    const prompt = await model.tokenize("Once upon a time");
    const [story] = await model.rollouts([{ prefix: prompt }], { maxTokens: 40 });
    const target = [...prompt, ...story.tokens];
    // Unrelated work first, then a prefix that shares all but the tail with the target, so the
    // target is served mostly from cache.
    await model.nextTokenDistributions(
      [await model.tokenize("The cat sat on the mat and looked at the bird.")],
      {
        topK: 5,
      },
    );
    await model.rollouts([{ prefix: target.slice(0, 30) }], { maxTokens: 15, temperature: 1, seed: 9 });
    const before = { ...model.usage };
    const [cached] = await model.nextTokenDistributions([target], { topK: 50 });
    const served = model.usage.cachedPrefixTokens - before.cachedPrefixTokens;
    expect(served).toBeGreaterThanOrEqual(30);
    expect(model.usage.evaluatedTokens - before.evaluatedTokens).toBe(target.length - served);

    const fresh = await loadTestModel({ sequences: 1 });
    try {
      const [reference] = await fresh.nextTokenDistributions([target], { topK: 50 });
      expect(fresh.usage.cachedPrefixTokens).toBe(0);
      expect(cached.slice(0, 10).map((e) => e.token)).toEqual(reference.slice(0, 10).map((e) => e.token));
      const byToken = new Map(reference.map((e) => [e.token, e.logprob]));
      for (const entry of cached.slice(0, 40)) {
        const expected = byToken.get(entry.token);
        expect(expected, `token ${entry.token}`).toBeDefined();
        expect(Math.abs(entry.logprob - (expected as number))).toBeLessThan(TOLERANCE);
      }
    } finally {
      await fresh.dispose();
    }
  });
});

describe("batched calls", () => {
  const texts = [
    "Once upon a time",
    "The dog",
    "Tom and Sue went to the park",
    "One day, a little bird",
    "Once upon a time, there was a big",
    "Lily liked to",
    "The sun was",
    "Once upon a time, there was a little girl named Lily.",
    "Ben had a red",
    "The",
  ];

  it("nextTokenDistributions: ten prefixes on four sequences equal one-by-one calls, in order", async () => {
    const prefixes = await Promise.all(texts.map((t) => model.tokenize(t)));
    const batched = await model.nextTokenDistributions(prefixes, { topK: 8 });
    expect(batched).toHaveLength(prefixes.length);
    for (let i = 0; i < prefixes.length; i++) {
      const [single] = await model.nextTokenDistributions([prefixes[i]], { topK: 8 });
      expect(
        batched[i].map((e) => e.token),
        texts[i],
      ).toEqual(single.map((e) => e.token));
      expectClose(
        batched[i].map((e) => e.logprob),
        single.map((e) => e.logprob),
      );
    }
    // Different prefixes, different answers: the order check above is not vacuous.
    expect(new Set(batched.map((d) => d[0].token)).size).toBeGreaterThan(3);
  });

  it("rollouts: ten requests on four sequences equal one-by-one calls, in order", async () => {
    const requests = await Promise.all(
      texts.map(async (t, i) => ({ prefix: await model.tokenize(t), seed: 100 + i })),
    );
    for (const options of [{ maxTokens: 12 }, { maxTokens: 12, temperature: 1 }]) {
      const batched = await model.rollouts(requests, options);
      const singles: Rollout[] = [];
      for (const request of requests) singles.push((await model.rollouts([request], options))[0]);
      for (let i = 0; i < requests.length; i++) {
        expect(batched[i].tokens, texts[i]).toEqual(singles[i].tokens);
        expectClose(batched[i].logprobs, singles[i].logprobs);
        expect(batched[i].stopReason).toBe(singles[i].stopReason);
      }
      expect(new Set(batched.map((r) => r.tokens.join())).size).toBe(requests.length);
    }
  });

  it("rollouts honour per-request maxTokens and report generated tokens through onToken", async () => {
    const prefix = await model.tokenize("Once upon a time");
    const seen: Token[][] = [[], []];
    const [short, long] = await model.rollouts([{ prefix, maxTokens: 3 }, { prefix }], {
      maxTokens: 9,
      onToken: (index, token) => seen[index].push(token),
    });
    expect(short.tokens).toHaveLength(3);
    expect(long.tokens).toHaveLength(9);
    expect(long.tokens.slice(0, 3)).toEqual(short.tokens);
    expect(seen).toEqual([short.tokens, long.tokens]);
  });
});

describe("tokens and text", () => {
  it("adds BOS only when asked", async () => {
    const withBos = await model.tokenize("Once upon a time");
    const without = await model.tokenize("Once upon a time", { addBos: false });
    expect(withBos[0]).toBe(model.bosToken);
    expect(without[0]).not.toBe(model.bosToken);
    expect(withBos.slice(1)).toEqual(without);
    // The in-process tokenizer's synchronous form gives the same tokens.
    expect(model.tokenizeSync("Once upon a time")).toEqual(withBos);
    expect(model.detokenize(without)).toBe("Once upon a time");
    // BOS is not text.
    expect(model.detokenize(withBos)).toBe("Once upon a time");
  });

  it("keeps a token's leading space when decoded with its context", async () => {
    const tokens = await model.tokenize("Once upon a time", { addBos: false });
    expect(model.detokenize([tokens[1]])).toBe("upon");
    expect(model.detokenize([tokens[1]], { context: tokens.slice(0, 1) })).toBe(" upon");
    expect(model.detokenize(tokens.slice(1), { context: tokens.slice(0, 1) })).toBe(" upon a time");
  });

  it("decodes a multi-byte character split across the context boundary", async () => {
    const text = "café naïve 日本";
    const tokens = await model.tokenize(text, { addBos: false });
    expect(model.detokenize(tokens)).toBe(text);
    // Every split point: the head's complete text plus the tail decoded in context is the whole.
    for (let k = 1; k < tokens.length; k++) {
      const head = model.detokenize(tokens.slice(0, k)).replace(/\uFFFD+$/, "");
      const tail = model.detokenize(tokens.slice(k), { context: tokens.slice(0, k) });
      expect(head + tail, `split at ${k}`).toBe(text);
    }
  });

  it("a token decoded after its context is kept per context: asked again, the same text; after another context, its own", async () => {
    const text = "café naïve 日本";
    const tokens = await model.tokenize(text, { addBos: false });
    const other = await model.tokenize("a", { addBos: false });
    const inPlace = (m: LlamaCppModel, k: number) =>
      m.detokenize([tokens[k]], { context: tokens.slice(0, k) });
    const elsewhere = (m: LlamaCppModel, k: number) => m.detokenize([tokens[k]], { context: other });
    // The texts as a model that has kept nothing decodes them, each asked once.
    const fresh = await loadTestModel();
    const truth = tokens.map((_, k) => (k === 0 ? ["", ""] : [inPlace(fresh, k), elsewhere(fresh, k)]));
    await fresh.dispose();
    // A byte token completing a character after its lead byte decodes to it there, not elsewhere.
    expect(truth.some(([here, there]) => here !== there)).toBe(true);
    // Asked elsewhere first, then in place, then both again: each its own text every time.
    for (let round = 0; round < 2; round++)
      for (let k = 1; k < tokens.length; k++) {
        expect(elsewhere(model, k), `token ${k} elsewhere`).toBe(truth[k][1]);
        expect(inPlace(model, k), `token ${k} in place`).toBe(truth[k][0]);
      }
  });

  it("stops on BOS and the model's end-of-generation tokens", async () => {
    expect(model.stopTokens.has(1)).toBe(true);
    expect(model.isStopToken(1)).toBe(true);
    expect(model.isStopToken((await model.tokenize("Lily", { addBos: false }))[0])).toBe(false);
  });

  it("stop strings cut the text", async () => {
    const result = await generate(model, {
      prompt: "Once upon a time",
      maxTokens: 100,
      stopStrings: ["Lily"],
    });
    expect(result.stopReason).toBe("stop-string");
    expect(result.text).toBe(", there was a little girl named ");
    const beam = await generate(model, {
      prompt: "Once upon a time",
      maxTokens: 100,
      strategy: "beam",
      beamWidth: 2,
      stopStrings: ["park"],
    });
    expect(beam.stopReason).toBe("stop-string");
    expect(beam.text).not.toContain("park");
    const [rollout] = await model.rollouts([{ prefix: await model.tokenize("Once upon a time") }], {
      maxTokens: 100,
      stopStrings: ["girl"],
    });
    expect(rollout.stopReason).toBe("stop-string");
    expect(model.detokenize(rollout.tokens)).toMatch(/girl$/);
  });
});

describe("context size", () => {
  it("rejects a prompt longer than the context with prompt-too-long", async () => {
    const small = await loadTestModel({ contextSize: 64, sequences: 1 });
    try {
      expect(small.contextSize).toBe(64);
      const prompt = "Once upon a time there was a little girl named Lily. ".repeat(8);
      expect((await small.tokenize(prompt)).length).toBeGreaterThan(64);
      const failure = await generate(small, { prompt, maxTokens: 5 }).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(TillerError);
      expect((failure as TillerError).code).toBe("prompt-too-long");
      const direct = await small
        .nextTokenDistributions([await small.tokenize(prompt)], { topK: 1 })
        .catch((error: unknown) => error);
      expect((direct as TillerError).code).toBe("prompt-too-long");
      // A prompt that fits but leaves little room stops when the context is full.
      const fits = await generate(small, { prompt: "Once upon a time", maxTokens: 500 });
      expect(["context-full", "end-of-generation"]).toContain(fits.stopReason);
      expect(fits.stats.promptTokens + fits.tokens.length).toBeLessThanOrEqual(64);
    } finally {
      await small.dispose();
    }
  });

  it("rejects a context size below 16 instead of silently raising it", async () => {
    for (const contextSize of [8, 15, 0]) {
      const failure = await loadTestModel({ contextSize }).catch((error: unknown) => error);
      expect(failure, String(contextSize)).toBeInstanceOf(TillerError);
      expect((failure as TillerError).code).toBe("bad-context-size");
      expect((failure as TillerError).message).toMatch(/--context-size must be ≥ 16/);
    }
    const smallest = await loadTestModel({ contextSize: 16, sequences: 1 });
    try {
      expect(smallest.contextSize).toBe(16);
      expect(smallest.path).toBe(testModelPath());
    } finally {
      await smallest.dispose();
    }
  });
});

describe("samplerDistribution (package export)", () => {
  it("is the sampler's distribution as [token, p] pairs, most likely first", async () => {
    const [sorted] = await model.nextTokenDistributions([await model.tokenize("Once upon a")], {
      topK: model.vocabularySize,
    });
    const pairs = samplerDistribution(sorted, { temperature: 1, topK: 3 });
    expect(pairs).toHaveLength(3);
    expect(pairs.map(([token]) => token)).toEqual(sorted.slice(0, 3).map((t) => t.token));
    expect(pairs.reduce((sum, [, p]) => sum + p, 0)).toBeCloseTo(1, 9);
    expect(samplerDistribution(sorted, { temperature: 0 })).toEqual([[sorted[0].token, 1]]);
  });
});
