import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TillerError } from "../src/errors.js";
import { capTopK } from "../src/lm/cappedTopK.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import type { ModelWarning, NextTokenDistribution, Token } from "../src/lm/types.js";
import { loadTestModel } from "./helpers.js";

let model: LlamaCppModel;
let prefix: Token[];

beforeAll(async () => {
  model = await loadTestModel({ sequences: 2 });
  prefix = await model.tokenize("Once upon a time");
});

afterAll(async () => {
  await model?.dispose();
});

/**
 * The same tokens with the same logprobs up to rounding (a prefix served from cache re-evaluates
 * only its last token, which changes float rounding slightly and can swap near-ties in the tail).
 */
function expectSame(actual: NextTokenDistribution, expected: NextTokenDistribution): void {
  expect(actual).toHaveLength(expected.length);
  const byToken = new Map(expected.map((e) => [e.token, e.logprob]));
  for (const { token, logprob } of actual)
    expect(Math.abs(logprob - (byToken.get(token) ?? Number.NaN)), `token ${token}`).toBeLessThan(1e-4);
  expect(actual.slice(0, 5).map((e) => e.token)).toEqual(expected.slice(0, 5).map((e) => e.token));
}

/** Collects the warnings a call reports. */
function collector(): { warnings: ModelWarning[]; onWarning: (warning: ModelWarning) => void } {
  const warnings: ModelWarning[] = [];
  return { warnings, onWarning: (warning) => warnings.push(warning) };
}

describe("LlamaCppModel capabilities", () => {
  it("states what the in-process backend does exactly", () => {
    expect(model.capabilities).toEqual({
      maxTopK: model.vocabularySize,
      exactDistributions: true,
      seededSampling: true,
      prefixCache: true,
      singlePassScoring: true,
      // The plain stories GGUF carries no tokenizer.chat_template (the -chat twin does: chat.test.ts).
      chatTemplate: false,
    });
    expect(model.vocabularySize).toBe(512);
  });

  it("returns the whole vocabulary when asked for more, and says so", async () => {
    const asked = collector();
    const [all] = await model.nextTokenDistributions([prefix], { topK: 600, onWarning: asked.onWarning });
    expect(all).toHaveLength(model.vocabularySize);
    expect(asked.warnings).toHaveLength(1);
    expect(asked.warnings[0].code).toBe("top-k-clamped");
    expect(asked.warnings[0].message).toMatch(/600 asked, 512 given/);

    const within = collector();
    const [exact] = await model.nextTokenDistributions([prefix], {
      topK: model.vocabularySize,
      onWarning: within.onWarning,
    });
    expectSame(exact, all);
    expect(within.warnings).toEqual([]);

    const scored = collector();
    const [score] = await model.scoreContinuations([{ prefix, continuation: [] }], {
      topK: 1000,
      nextTopK: 513,
      onWarning: scored.onWarning,
    });
    expect(score.next).toHaveLength(model.vocabularySize);
    expect(scored.warnings.map((w) => w.message)).toEqual([
      expect.stringMatching(/^topK 1000 asked, 512 given/),
      expect.stringMatching(/^nextTopK 513 asked, 512 given/),
    ]);
  });

  it("rejects a NaN top-k", async () => {
    const failure = await model
      .nextTokenDistributions([prefix], { topK: Number.NaN })
      .catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(TillerError);
    expect((failure as TillerError).code).toBe("bad-top-k");
  });
});

describe("capTopK: a backend that returns at most k logprobs", () => {
  it("reports k as maxTopK and keeps the inner model's other capabilities", () => {
    const capped = capTopK(model, 20);
    expect(capped.capabilities).toEqual({ ...model.capabilities, maxTopK: 20 });
    expect(capped.capabilities.exactDistributions).toBe(model.capabilities.exactDistributions);
    expect(capped.vocabularySize).toBe(model.vocabularySize);
    expect(capped.id).toBe(model.id);
    expect(capped.usage).toBe(model.usage);
    // A cap above the vocabulary changes nothing the inner model could give.
    expect(capTopK(model, 10_000).capabilities.maxTopK).toBe(model.vocabularySize);
  });

  it("clamps a larger request to k and warns, naming what was asked and given", async () => {
    const capped = capTopK(model, 20);
    const { warnings, onWarning } = collector();
    const [top] = await capped.nextTokenDistributions([prefix], { topK: 50, onWarning });
    expect(top).toHaveLength(20);
    const [inner] = await model.nextTokenDistributions([prefix], { topK: 20 });
    expectSame(top, inner);
    expect(warnings).toHaveLength(1);
    expect(warnings[0].code).toBe("top-k-clamped");
    expect(warnings[0].message).toMatch(/topK 50 asked, 20 given/);
  });

  it("clamps scoreContinuations' topK and nextTopK separately, each with its warning", async () => {
    const capped = capTopK(model, 5);
    const continuation = await model.tokenize(", there was", { addBos: false });
    const { warnings, onWarning } = collector();
    const [scored] = await capped.scoreContinuations([{ prefix, continuation }], {
      topK: 8,
      nextTopK: 30,
      onWarning,
    });
    expect(scored.top?.map((d) => d.length)).toEqual(continuation.map(() => 5));
    expect(scored.next).toHaveLength(5);
    expect(warnings.map((w) => [w.code, w.message])).toEqual([
      ["top-k-clamped", expect.stringMatching(/topK 8 asked, 5 given/)],
      ["top-k-clamped", expect.stringMatching(/nextTopK 30 asked, 5 given/)],
    ]);
    // Logprobs are the inner model's: the cap limits how many entries come back, not their values.
    const [inner] = await model.scoreContinuations([{ prefix, continuation }]);
    expect(scored.logprobs).toHaveLength(inner.logprobs.length);
    for (let i = 0; i < inner.logprobs.length; i++)
      expect(Math.abs(scored.logprobs[i] - inner.logprobs[i])).toBeLessThan(1e-4);
  });

  it("raises nothing for requests within the cap", async () => {
    const capped = capTopK(model, 20);
    const { warnings, onWarning } = collector();
    const [top] = await capped.nextTokenDistributions([prefix], { topK: 20, onWarning });
    expect(top).toHaveLength(20);
    await capped.nextTokenDistributions([prefix, prefix], { topK: 3, onWarning });
    await capped.scoreContinuations([{ prefix, continuation: [] }], { topK: 20, nextTopK: 1, onWarning });
    await capped.scoreContinuations([{ prefix, continuation: [] }], { onWarning });
    // Sampling's top-k is not a distribution request: a rollout passes it through.
    const [rollout] = await capped.rollouts([{ prefix }], {
      maxTokens: 4,
      temperature: 1,
      topK: 100,
      onWarning,
    });
    expect(rollout.tokens).toHaveLength(4);
    expect(warnings).toEqual([]);
  });

  it("refuses a cap below 1", () => {
    for (const k of [0, -3, 2.5, Number.NaN])
      expect(() => capTopK(model, k), String(k)).toThrow(/top-k cap must be an integer ≥ 1/);
  });
});
