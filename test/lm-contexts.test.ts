import type { LlamaContext, LlamaContextSequence } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TillerError } from "../src/errors.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { balanceContexts } from "../src/lm/llama/sequencePool.js";
import { loadTestModel } from "./helpers.js";

/** The model's contexts and the pool's sequences (private fields, read for the test). */
function internals(model: LlamaCppModel) {
  const inner = model as unknown as {
    contexts: LlamaContext[];
    pool: { sequences: readonly LlamaContextSequence[] };
  };
  return { contexts: inner.contexts, sequences: inner.pool.sequences };
}

/** The contexts whose sequences hold any tokens now. */
function busyContexts(model: LlamaCppModel): Set<LlamaContext> {
  const { sequences } = internals(model);
  return new Set(sequences.filter((s) => s.nextTokenIndex > 0).map((s) => s.context));
}

describe("balanceContexts: a wave spread over the contexts", () => {
  // Sequences 0, 2 in context 0; 1, 3 in context 1 (interleaved).
  const contextOf = [0, 1, 0, 1];
  it("moves a prefix to an idle context when that costs at most 4 cached tokens, the cheapest move first", () => {
    // Both prefixes best on context 0 (sequences 0 and 2); sequence 3 holds 2 tokens fewer of prefix 1.
    const shared = [
      [50, 9, 9, 9],
      [9, 9, 40, 38],
    ];
    expect(balanceContexts([0, 2], shared, contextOf)).toEqual([0, 3]);
    // Prefix 0 could move for 3 tokens, prefix 1 for 1: prefix 1 moves.
    const both = [
      [50, 47, 9, 9],
      [9, 9, 40, 39],
    ];
    expect(balanceContexts([0, 2], both, contextOf)).toEqual([0, 3]);
  });

  it("leaves a wave that already uses every context, a lone prefix, and a move that costs too much", () => {
    const shared = [
      [50, 9, 9, 9],
      [9, 40, 9, 9],
    ];
    expect(balanceContexts([0, 1], shared, contextOf)).toEqual([0, 1]);
    expect(balanceContexts([0], [[50, 49, 9, 9]], contextOf)).toEqual([0]);
    const far = [
      [50, 9, 9, 9],
      [9, 9, 40, 35],
    ];
    expect(balanceContexts([0, 2], far, contextOf)).toEqual([0, 2]);
    // Counted within what the prefix can reuse: up to 36 tokens (before its first output read),
    // sequence 2 holds 1 token more than sequence 3, not 5, and the move is made.
    expect(balanceContexts([0, 2], far, contextOf, [60, 36])).toEqual([0, 3]);
  });
});

describe("a sequence pool over two llama.cpp contexts", () => {
  let one: LlamaCppModel;
  let two: LlamaCppModel;
  beforeAll(async () => {
    one = await loadTestModel({ sequences: 4, contexts: 1 });
    two = await loadTestModel({ sequences: 4, contexts: 2 });
  });
  afterAll(async () => {
    await Promise.all([one?.dispose(), two?.dispose()]);
  });

  it("spreads a wave over both contexts and gives what one context gives", async () => {
    expect(internals(two).contexts).toHaveLength(2);
    expect(internals(one).contexts).toHaveLength(1);
    const prompts = ["Once upon a time, there was a little girl", "One day, a boy named Tom went"];
    const prefixes = await Promise.all(prompts.map((p) => one.tokenize(p)));
    const read = async (model: LlamaCppModel) => {
      await model.clearCache();
      return model.nextTokenDistributions(prefixes, { topK: 8 });
    };
    const [alone, spread] = [await read(one), await read(two)];
    expect(busyContexts(two).size).toBe(2);
    expect(busyContexts(one).size).toBe(1);
    spread.forEach((distribution, i) => {
      expect(distribution.map((e) => e.token)).toEqual(alone[i].map((e) => e.token));
      distribution.forEach((entry, j) => {
        expect(entry.logprob).toBeCloseTo(alone[i][j].logprob, 4);
      });
    });
  });

  it("copies a cached prefix into a sequence of the other context instead of evaluating it again", async () => {
    await two.clearCache();
    const prompt = await two.tokenize("Once upon a time, there was a little girl named Lily.");
    await two.nextTokenDistributions([prompt], { topK: 1 });
    const before = two.usage.evaluatedTokens;
    // Two continuations of the cached prompt: one extends its sequence, the other takes a copy.
    const scored = await two.scoreContinuations(
      [[10], [20]].map((continuation) => ({ prefix: prompt, continuation })),
      { nextTopK: 4 },
    );
    expect(busyContexts(two).size).toBe(2);
    // Each evaluates the prompt's last token (its logits are not kept) and its continuation.
    expect(two.usage.evaluatedTokens - before).toBe(4);
    await one.clearCache();
    const plain = await one.scoreContinuations(
      [[10], [20]].map((continuation) => ({ prefix: prompt, continuation })),
      { nextTopK: 4 },
    );
    scored.forEach((s, i) => {
      expect(s.logprob).toBeCloseTo(plain[i].logprob, 4);
    });
  });

  it("clearCache makes both contexts anew; bad counts are refused", async () => {
    const firstContexts = [...internals(two).contexts];
    await two.clearCache();
    const { contexts, sequences } = internals(two);
    expect(contexts).toHaveLength(2);
    expect(contexts.some((c) => firstContexts.includes(c))).toBe(false);
    // Interleaved: a wave on sequences 0, 1 lands on both contexts.
    expect(sequences[0].context).toBe(contexts[0]);
    expect(sequences[1].context).toBe(contexts[1]);
    for (const contexts of [0, 9, 1.5]) {
      const failure = await loadTestModel({ contexts }).catch((error: unknown) => error);
      expect(failure, String(contexts)).toBeInstanceOf(TillerError);
      expect(String((failure as Error).message)).toMatch(/contexts/);
    }
  });
});
