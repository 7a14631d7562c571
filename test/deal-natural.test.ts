import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEAL_DEFAULTS, deal } from "../src/decoding/deal/index.js";
import { createStrategy } from "../src/decoding/registry.js";
import { runStrategy } from "../src/decoding/run.js";
import {
  fluencyOf,
  minLogprobIndex,
  repetitionRate,
  SALAD_LOGPROB,
  summarizeFluency,
  tokenLogprobs,
} from "../src/eval/fluency.js";
import { generate } from "../src/generate.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { promptTokens } from "../src/lm/prompt.js";
import type { Token } from "../src/lm/types.js";
import { keywordCoverage, keywordsReward } from "../src/rewards/index.js";
import { loadTestModel } from "./helpers.js";

let model: LlamaCppModel;
beforeAll(async () => {
  model = await loadTestModel();
});
afterAll(async () => {
  await model?.dispose();
});

/** Positions where a token is below `floor` and is not the model's top choice there. */
async function subFloorPositions(prompt: Token[], tokens: Token[], floor: number): Promise<number[]> {
  const [scored] = await model.scoreContinuations([{ prefix: prompt, continuation: tokens }], { topK: 1 });
  return tokens.flatMap((token, i) =>
    scored.logprobs[i] < floor && scored.top?.[i][0].token !== token ? [i] : [],
  );
}

describe("fluency metrics", () => {
  it("repetition: the share of word 4-grams that repeat an earlier one", () => {
    expect(repetitionRate("the cat sat on the mat")).toBe(0);
    // 4-grams: a b c d | b c d a | c d a b | d a b c | a b c d (repeat) → 1 of 5.
    expect(repetitionRate("A b c d a b c d")).toBeCloseTo(0.2, 12);
    expect(repetitionRate("too short")).toBe(0);
  });

  it("salad, worst token and means on hand-made logprobs", () => {
    const tokens = [10, 11, 12, 13];
    const fluent = fluencyOf(model, [1], tokens, [-0.5, -2, -1, -0.1], "a fluent text");
    const salad = fluencyOf(model, [1], tokens, [-0.5, -9.5, -1, -0.1], "a salad text");
    expect(fluent.salad).toBe(false);
    expect(salad.salad).toBe(true);
    expect(salad.minToken?.index).toBe(1);
    expect(salad.minToken?.logprob).toBe(-9.5);
    expect(fluent.meanLogprob).toBeCloseTo(-0.9, 12);
    expect(minLogprobIndex([])).toBeNull();
    const summary = summarizeFluency([fluent, salad]);
    expect(summary.saladShare).toBe(0.5);
    expect(summary.meanMinLogprob).toBeCloseTo((-2 + -9.5) / 2, 12);
  });

  it("under the model, the issue's word salad holds a token below −8 nats and a fluent text none", async () => {
    const prompt = await promptTokens(model, "It was a sunny day.");
    // Tokenized together with the prompt, as the model would have written it (a text tokenized on
    // its own starts with a lone "▁" that the model never writes there).
    const judge = async (text: string) => {
      const full = await model.tokenize(`It was a sunny day.${text}`);
      expect(full.slice(0, prompt.length)).toEqual(prompt);
      const tokens = full.slice(prompt.length);
      return fluencyOf(model, prompt, tokens, await tokenLogprobs(model, prompt, tokens), text);
    };
    const salad = await judge(" The sun was shining and the sky was very s shop. I lion was very elephant.");
    const fluent = await judge(" The sun was shining and the sky was blue.");
    expect(salad.salad).toBe(true);
    expect(salad.minToken?.logprob).toBeLessThan(SALAD_LOGPROB);
    expect(fluent.salad).toBe(false);
    expect(fluent.minToken?.logprob).toBeGreaterThan(SALAD_LOGPROB);
  });
});

describe("DeAL without word salad", () => {
  it("never commits a token below the floor (except the model's own top choice)", async () => {
    const prompt = "It was a sunny day.";
    const tokens = await promptTokens(model, prompt);
    const keywords = ["elephant", "lion", "shop"];
    for (const floor of [-5, -3]) {
      const result = await runStrategy(
        deal({
          reward: keywordsReward(keywords, { inflections: true }),
          k: 5,
          lookahead: 8,
          lambda: 50,
          beams: 1,
          floor,
          floorStart: floor,
        }),
        { model, prompt, promptTokens: tokens, maxTokens: 96 },
      );
      expect(result.tokens.length).toBeGreaterThan(0);
      expect(await subFloorPositions(tokens, result.tokens, floor), `floor ${floor}`).toEqual([]);
    }
    // Without a floor the same search forces the keywords in with sub-floor tokens.
    const unfloored = await runStrategy(
      deal({
        reward: keywordsReward(keywords, { inflections: true }),
        k: 5,
        lookahead: 8,
        lambda: 50,
        beams: 1,
        floor: Number.NEGATIVE_INFINITY,
        bridge: 0,
      }),
      { model, prompt, promptTokens: tokens, maxTokens: 96 },
    );
    expect((await subFloorPositions(tokens, unfloored.tokens, -5)).length).toBeGreaterThan(0);
  });

  it("reaches a keyword with a natural bridge without a sub-floor token", async () => {
    // Greedy never says "dog" here; the search bridges to "He thought it was a big dog".
    const prompt = "One day, a boy";
    const tokens = await promptTokens(model, prompt);
    const greedy = await generate(model, { prompt, maxTokens: 48 });
    expect(keywordCoverage(greedy.text, ["dog"]).hard).toBe(0);
    const floor = -4;
    const result = await runStrategy(
      deal({
        reward: keywordsReward(["dog"]),
        k: 5,
        lookahead: 8,
        lambda: 50,
        beams: 1,
        floor,
        floorStart: floor,
        bridge: 1,
      }),
      { model, prompt, promptTokens: tokens, maxTokens: 48 },
    );
    expect(keywordCoverage(result.text, ["dog"]).hard, result.text).toBe(1);
    expect(await subFloorPositions(tokens, result.tokens, floor), result.text).toEqual([]);
  });

  it("holds the floor by default, also with each of its speed-ups off; `deal:raw` is DeAL before the floor", async () => {
    const prompt = "It was a sunny day.";
    const tokens = await promptTokens(model, prompt);
    const keywords = ["elephant", "lion", "shop"];
    const run = (spec: string) =>
      runStrategy(createStrategy(spec, { reward: keywordsReward(keywords, { inflections: true }) }), {
        model,
        prompt,
        promptTokens: tokens,
        maxTokens: 96,
        trace: true,
      });
    expect(DEAL_DEFAULTS.floor).toBe(-6.5);
    for (const spec of ["deal", "deal:commitPlacing=false,bridgeScreen=false,reuseBridge=false"]) {
      const result = await run(spec);
      expect(result.trace?.options).toMatchObject({ floor: -6.5, bridge: 1 });
      expect(keywordCoverage(result.text, keywords, { inflections: true }).soft, spec).toBeGreaterThanOrEqual(
        2 / 3,
      );
      expect(await subFloorPositions(tokens, result.tokens, DEAL_DEFAULTS.floor), spec).toEqual([]);
    }
    const raw = await run("deal:raw");
    // Raw DeAL keeps the search it was measured with (k=5, l=8, every candidate), whatever the defaults.
    expect(raw.trace?.options).toMatchObject({
      floor: Number.NEGATIVE_INFINITY,
      bridge: 0,
      k: 5,
      lookahead: 8,
      candidateSlack: Number.POSITIVE_INFINITY,
    });
    expect(keywordCoverage(raw.text, keywords, { inflections: true }).soft).toBe(1);
  });
});
