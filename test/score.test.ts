import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TillerError } from "../src/errors.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import type { NextTokenDistribution, ScoreRequest, Token } from "../src/lm/types.js";
import { loadTestModel } from "./helpers.js";

/**
 * llama.cpp's float rounding depends on how tokens are batched: a position evaluated inside one
 * pass over the whole prefix (as scoring does) and the same position reached token by token
 * differ by up to ~1e-3 on this model. The exact reference is therefore each prefix evaluated in
 * one pass from an empty cache; scoring matches it to ~1e-6.
 */
const EXACT = 1e-4;

let model: LlamaCppModel;
/** One sequence, cleared before every call: each prefix evaluated in one pass from an empty cache. */
let reference: LlamaCppModel;

beforeAll(async () => {
  // Four sequences, so ten requests need three waves.
  model = await loadTestModel({ sequences: 4 });
  reference = await loadTestModel({ sequences: 1 });
});

afterAll(async () => {
  await model?.dispose();
  await reference?.dispose();
});

/** The full next-token distribution after `prefix`, evaluated in one pass from an empty cache. */
async function freshDistribution(prefix: readonly Token[]): Promise<NextTokenDistribution> {
  await reference.clearCache();
  const [distribution] = await reference.nextTokenDistributions([prefix], { topK: reference.vocabularySize });
  return distribution;
}

function logprobOf(distribution: NextTokenDistribution, token: Token): number {
  const entry = distribution.find((e) => e.token === token);
  if (!entry) throw new Error(`token ${token} missing from the full distribution`);
  return entry.logprob;
}

function expectSameDistribution(
  actual: NextTokenDistribution,
  expected: NextTokenDistribution,
  label: string,
) {
  expect(
    actual.map((e) => e.token),
    label,
  ).toEqual(expected.slice(0, actual.length).map((e) => e.token));
  expectClose(
    actual.map((e) => e.logprob),
    expected.slice(0, actual.length).map((e) => e.logprob),
    label,
  );
}

/** Equal entry by entry within `tolerance` (default {@link EXACT}). */
function expectClose(
  actual: readonly number[],
  expected: readonly number[],
  label: string,
  tolerance = EXACT,
) {
  expect(actual, label).toHaveLength(expected.length);
  for (let i = 0; i < actual.length; i++)
    expect(
      Math.abs(actual[i] - expected[i]),
      `${label} entry ${i}: ${actual[i]} vs ${expected[i]}`,
    ).toBeLessThan(tolerance);
}

async function request(prefix: string, continuation: string): Promise<ScoreRequest> {
  return {
    prefix: await model.tokenize(prefix),
    continuation: await model.tokenize(continuation, { addBos: false }),
  };
}

describe("scoreContinuations", () => {
  it("gives each continuation token the logprob step-by-step nextTokenDistributions gives it, and their sum", async () => {
    const prefix = await model.tokenize("Once upon a time");
    const [greedy] = await model.rollouts([{ prefix }], { maxTokens: 20 });
    // A sampled continuation at a high temperature holds unlikely tokens too.
    const [sampled] = await model.rollouts([{ prefix }], { maxTokens: 20, temperature: 1.5, seed: 3 });
    for (const continuation of [greedy.tokens, sampled.tokens]) {
      const [scored] = await model.scoreContinuations([{ prefix, continuation }]);
      const steps: number[] = [];
      for (let i = 0; i < continuation.length; i++)
        steps.push(
          logprobOf(await freshDistribution([...prefix, ...continuation.slice(0, i)]), continuation[i]),
        );
      expectClose(scored.logprobs, steps, "per token");
      const sum = steps.reduce((a, b) => a + b, 0);
      expect(Math.abs(scored.logprob - sum), `${scored.logprob} vs ${sum}`).toBeLessThan(EXACT);
      expect(scored.logprob).toBeCloseTo(
        scored.logprobs.reduce((a, b) => a + b, 0),
        9,
      );
      // Nothing asked beyond the logprobs.
      expect(scored.top).toBeUndefined();
      expect(scored.next).toBeUndefined();
    }
    // Batched, the greedy path is far likelier than the high-temperature sample.
    const [a, b] = await model.scoreContinuations([
      { prefix, continuation: greedy.tokens },
      { prefix, continuation: sampled.tokens },
    ]);
    expect(a.logprob).toBeGreaterThan(b.logprob + 5);
    // The greedy rollout's own logprobs (evaluated token by token) agree up to batching rounding.
    expectClose(a.logprobs, greedy.logprobs, "rollout", 5e-3);
  });

  it("returns the top-k before each continuation token and the distribution one past the last", async () => {
    const { prefix, continuation } = await request(
      "Once upon a time, there was",
      " a little girl named Lily.",
    );
    const [scored] = await model.scoreContinuations([{ prefix, continuation }], { topK: 6, nextTopK: 9 });
    expect(scored.top).toHaveLength(continuation.length);
    for (let i = 0; i < continuation.length; i++) {
      const expected = await freshDistribution([...prefix, ...continuation.slice(0, i)]);
      const top = scored.top?.[i] ?? [];
      expect(top).toHaveLength(6);
      expectSameDistribution(top, expected, `position ${i}`);
    }
    const next = scored.next ?? [];
    expect(next).toHaveLength(9);
    expectSameDistribution(next, await freshDistribution([...prefix, ...continuation]), "next");
  });

  it("wantsNext: false leaves out the distribution after the last token, and only that", async () => {
    const { prefix, continuation } = await request("Once upon a time, there was", " a little girl");
    const options = { topK: 4, nextTopK: 7 };
    const [lean, full] = await model.scoreContinuations(
      [
        { prefix, continuation, wantsNext: false },
        { prefix, continuation },
      ],
      options,
    );
    expect(lean.next).toBeUndefined();
    expect(full.next).toHaveLength(7);
    expectClose(lean.logprobs, full.logprobs, "logprobs");
    expect(lean.top).toHaveLength(continuation.length);
    for (let j = 0; j < continuation.length; j++)
      expectSameDistribution(lean.top?.[j] ?? [], full.top?.[j] ?? [], `top ${j}`);
    // An empty continuation has nothing else to give: the hint is ignored there.
    const [empty] = await model.scoreContinuations([{ prefix, continuation: [], wantsNext: false }], options);
    expect(empty.next).toHaveLength(7);
  });

  it("an empty continuation gives only the next-token distribution", async () => {
    const prefix = await model.tokenize("The dog");
    const [scored] = await model.scoreContinuations([{ prefix, continuation: [] }], { topK: 3, nextTopK: 5 });
    expect(scored.logprobs).toEqual([]);
    expect(scored.logprob).toBe(0);
    expect(scored.top).toEqual([]);
    expectSameDistribution(scored.next ?? [], await freshDistribution(prefix), "next");
    expect(scored.next).toHaveLength(5);
  });

  it("ten requests on four sequences equal one-by-one calls, in order", async () => {
    const pairs: [string, string][] = [
      ["Once upon a time", " there was a cat."],
      ["The dog", " ran to the"],
      ["Tom and Sue went to the park", " and played with a ball."],
      ["One day, a little bird", " flew"],
      ["Once upon a time, there was a big", " dog named Max."],
      ["Lily liked to", " play with her toys"],
      ["The sun was", " hot and bright"],
      ["Once upon a time, there was a little girl named Lily.", " She liked"],
      ["Ben had a red", " ball"],
      ["The", " end"],
    ];
    const requests = await Promise.all(pairs.map(([p, c]) => request(p, c)));
    const options = { topK: 4, nextTopK: 4 };
    const batched = await model.scoreContinuations(requests, options);
    expect(batched).toHaveLength(requests.length);
    for (let i = 0; i < requests.length; i++) {
      const [single] = await model.scoreContinuations([requests[i]], options);
      const label = pairs[i].join("|");
      expect(batched[i].logprobs).toHaveLength(requests[i].continuation.length);
      expectClose(batched[i].logprobs, single.logprobs, label);
      expectSameDistribution(batched[i].next ?? [], single.next ?? [], `${label} next`);
      expect(batched[i].top).toHaveLength(requests[i].continuation.length);
      for (let j = 0; j < requests[i].continuation.length; j++)
        expectSameDistribution(batched[i].top?.[j] ?? [], single.top?.[j] ?? [], `${label} top ${j}`);
    }
    // Different requests, different answers: the order check above is not vacuous.
    expect(new Set(batched.map((s) => s.logprob.toFixed(3))).size).toBe(requests.length);
  });

  it("reuses a cached prefix: scoring it again evaluates only the continuation (and the prefix's last token)", async () => {
    const { prefix, continuation } = await request(
      "Once upon a time, there was a little girl",
      " named Lily.",
    );
    const other = await model.tokenize(" who loved to play.", { addBos: false });
    await model.clearCache();
    const step = async (continuation: readonly Token[], nextTopK = 0) => {
      const before = { ...model.usage };
      const [scored] = await model.scoreContinuations([{ prefix, continuation }], { nextTopK });
      expect(scored.logprobs).toHaveLength(continuation.length);
      expect(scored.next?.length ?? 0).toBe(nextTopK);
      return {
        evaluated: model.usage.evaluatedTokens - before.evaluatedTokens,
        cached: model.usage.cachedPrefixTokens - before.cachedPrefixTokens,
        requested: model.usage.requestedPrefixTokens - before.requestedPrefixTokens,
        calls: model.usage.calls - before.calls,
      };
    };
    // Empty cache: one pass over everything but the continuation's last token, whose output
    // (the distribution after it) nobody asked for.
    expect(await step(continuation)).toEqual({
      evaluated: prefix.length + continuation.length - 1,
      cached: 0,
      requested: prefix.length + continuation.length - 1,
      calls: 1,
    });
    // Same prefix, another continuation: the prefix is served from cache except its last token,
    // whose logits (the distribution of the first continuation token) llama.cpp does not keep.
    expect(await step(other)).toEqual({
      evaluated: other.length,
      cached: prefix.length - 1,
      requested: prefix.length + other.length - 1,
      calls: 1,
    });
    // Asking for the distribution after the continuation evaluates its last token too.
    expect(await step(other, 5)).toEqual({
      evaluated: other.length + 1,
      cached: prefix.length - 1,
      requested: prefix.length + other.length,
      calls: 1,
    });
  });

  it("rejects a request past the context, an empty prefix and a token outside the vocabulary", async () => {
    const small = await loadTestModel({ contextSize: 32, sequences: 1 });
    try {
      const prefix = await small.tokenize("Once upon a time, there was a little girl named Lily.");
      expect(prefix.length).toBeLessThan(32);
      const continuation = await small.tokenize(" She loved to play outside in the park with her dog.", {
        addBos: false,
      });
      expect(prefix.length + continuation.length).toBeGreaterThanOrEqual(32);
      const codeOf = (promise: Promise<unknown>) =>
        promise.then(
          () => "resolved",
          (error: unknown) => (error instanceof TillerError ? error.code : String(error)),
        );
      expect(await codeOf(small.scoreContinuations([{ prefix, continuation }]))).toBe("prompt-too-long");
      expect(await codeOf(small.scoreContinuations([{ prefix: [], continuation }]))).toBe("empty-prefix");
      expect(await codeOf(small.scoreContinuations([{ prefix, continuation: [small.vocabularySize] }]))).toBe(
        "bad-token",
      );
      expect(await codeOf(small.scoreContinuations([{ prefix, continuation: [1.5] }]))).toBe("bad-token");
      // The model still works after refusing them.
      const [fits] = await small.scoreContinuations([{ prefix, continuation: continuation.slice(0, 3) }]);
      expect(fits.logprobs).toHaveLength(3);
    } finally {
      await small.dispose();
    }
  });
});
