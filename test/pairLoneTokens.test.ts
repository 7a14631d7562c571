import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import type { NextTokenDistribution, Token } from "../src/lm/types.js";
import { loadTestModel } from "./helpers.js";

/** The largest |Δ logprob| between two whole next-token distributions. */
function largestGap(a: NextTokenDistribution, b: NextTokenDistribution): number {
  const other = new Map(b.map((entry) => [entry.token, entry.logprob]));
  expect(other.size).toBe(a.length);
  return Math.max(...a.map((entry) => Math.abs(entry.logprob - (other.get(entry.token) ?? Number.NaN))));
}

describe("pairLoneTokens: a distribution does not depend on the sequence's history", () => {
  let paired: LlamaCppModel;
  let prefix: Token[];
  beforeAll(async () => {
    paired = await loadTestModel({ pairLoneTokens: true });
    prefix = await paired.tokenize(
      "Once upon a time, there was a little girl named Mia. She loved to play with her toys. One day, she went",
    );
  });
  afterAll(async () => {
    await paired?.dispose();
  });

  const whole = async (model: LlamaCppModel) =>
    (await model.nextTokenDistributions([prefix], { topK: model.vocabularySize }))[0];

  /**
   * The prefix's distribution evaluated at once, then the cache rebuilt one token a call. Each call
   * finds all but the last token cached: without pairing llama.cpp evaluates that token alone, on a
   * path whose rounding the f16 cache carries on (3.4e-3 nats apart here, measured).
   */
  async function atOnceThenGrown(): Promise<NextTokenDistribution> {
    await paired.clearCache();
    const atOnce = await whole(paired);
    await paired.clearCache();
    for (let n = 2; n < prefix.length; n++)
      await paired.nextTokenDistributions([prefix.slice(0, n)], { topK: 1 });
    return atOnce;
  }

  it("a prefix grown one token a call gives the distribution of the prefix evaluated at once", async () => {
    const atOnce = await atOnceThenGrown();
    const grown = await whole(paired);
    expect(largestGap(atOnce, grown)).toBe(0);
  });

  it("a continuation scored on a grown sequence reads the prefix's distribution", async () => {
    const atOnce = await atOnceThenGrown();
    const [scored] = await paired.scoreContinuations(
      [{ prefix: prefix.slice(0, -1), continuation: prefix.slice(-1) }],
      { nextTopK: paired.vocabularySize },
    );
    // Only the output layer's rounding is left: reading two positions' logits rather than one
    // moves them by ~6e-6 nats (measured), far below the history's 3.4e-3.
    expect(largestGap(atOnce, scored.next ?? [])).toBeLessThan(1e-4);
  });
});
