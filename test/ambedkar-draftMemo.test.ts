import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadSwapMap } from "../src/decoding/ambedkar/builtinSwaps.js";
import { judgedUnits } from "../src/decoding/ambedkar/candidateWords.js";
import { DraftMemo } from "../src/decoding/ambedkar/draftMemo.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import type { NextTokenDistribution } from "../src/lm/types.js";
import { loadTestModel } from "./helpers.js";

const dist = (token: number): NextTokenDistribution => [{ token, logprob: -0.1 }];

describe("DraftMemo.retain", () => {
  it("keeps what extends a head and the head's last 8 prefixes; forgets older prefixes and other branches", () => {
    const memo = new DraftMemo();
    const head = Array.from({ length: 20 }, (_, i) => i + 1);
    for (let length = 1; length <= head.length; length++) memo.set(head.slice(0, length), dist(length));
    memo.set([...head, 7, 8], dist(99));
    memo.set([...head.slice(0, 15), 42], dist(42));
    memo.retain([head]);
    for (let length = 1; length <= head.length; length++)
      expect(memo.has(head.slice(0, length), 1), `prefix of ${length} tokens`).toBe(
        length >= head.length - 8,
      );
    expect(memo.get([...head, 7, 8], 1)).toEqual(dist(99));
    // A branch off an ancestor is no prefix of the head: the decode cannot ask for it again.
    expect(memo.has([...head.slice(0, 15), 42], 1)).toBe(false);
  });

  it("a prefix sharing a head's leading digits is no ancestor (tokens 1,2 are not a prefix of 1,23)", () => {
    const memo = new DraftMemo();
    memo.set([1, 2], dist(1));
    memo.set([1], dist(2));
    memo.retain([[1, 23]]);
    expect(memo.has([1, 2], 1)).toBe(false);
    expect(memo.has([1], 1)).toBe(true);
  });
});

describe("DraftMemo.logprob", () => {
  it("reads a whole distribution (−∞ for a token it lacks) and a shorter entry only for the tokens it lists", () => {
    const memo = new DraftMemo(3);
    memo.set(
      [1],
      [
        { token: 7, logprob: -0.2 },
        { token: 8, logprob: -1.9 },
        { token: 9, logprob: -3 },
      ],
    );
    memo.set([2], [{ token: 7, logprob: -0.4 }]);
    expect(memo.logprob([1], 8)).toBe(-1.9);
    expect(memo.logprob([1], 5)).toBe(Number.NEGATIVE_INFINITY);
    // An argmax entry knows its own token's logprob, nothing of the others'.
    expect(memo.logprob([2], 7)).toBe(-0.4);
    expect(memo.logprob([2], 8)).toBeUndefined();
    expect(memo.logprob([3], 7)).toBeUndefined();
  });
});

describe("DraftMemo.next", () => {
  let model: LlamaCppModel;
  beforeAll(async () => {
    model = await loadTestModel();
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it("an argmax-only read keeps the argmax alone (the whole distribution's first entry); a later full read replaces it", async () => {
    const vocabulary = model.vocabularySize;
    const memo = new DraftMemo(vocabulary);
    const prefix = await model.tokenize("Once upon a time, there was a little");
    const calls = () => model.usage.calls;
    const before = calls();
    const [argmax] = await memo.next(model, [prefix], 1, undefined, true);
    expect(argmax).toHaveLength(1);
    expect(memo.has(prefix, 1)).toBe(true);
    expect(memo.has(prefix, 5)).toBe(false);
    // Read again: from the memo, no call.
    await memo.next(model, [prefix], 1, undefined, true);
    expect(calls() - before).toBe(1);
    // A full read calls again and keeps the whole distribution, whose first entry is that argmax.
    const [top5] = await memo.next(model, [prefix], 5);
    expect(calls() - before).toBe(2);
    expect(top5).toHaveLength(5);
    expect(memo.has(prefix, vocabulary)).toBe(true);
    expect(top5[0].token).toBe(argmax[0].token);
    expect(top5[0].logprob).toBeCloseTo(argmax[0].logprob, 6);
    // Without argmaxOnly a top-1 read asks for the whole stored size (a self-verifying draft keeps whole ones).
    const longer = [...prefix, argmax[0].token];
    await memo.next(model, [longer], 1);
    expect(memo.has(longer, vocabulary)).toBe(true);
  });

  it("rollAhead stores the greedy path's argmaxes in one call, stops at a stop string, and keeps what is stored", async () => {
    const memo = new DraftMemo(model.vocabularySize);
    const prefix = await model.tokenize("Once upon a time, there was a little");
    await model.clearCache();
    const before = model.usage.calls;
    await memo.rollAhead(model, prefix, 8);
    expect(model.usage.calls - before).toBe(1);
    // Each stored entry is what an argmax read at that position gives.
    const path = [...prefix];
    for (let i = 0; i < 8; i++) {
      const stored = memo.get(path, 1);
      expect(stored, `position ${i}`).toHaveLength(1);
      const [read] = await model.nextTokenDistributions([path], { topK: 1 });
      expect(stored?.[0].token).toBe(read[0].token);
      expect(stored?.[0].logprob).toBeCloseTo(read[0].logprob, 6);
      path.push(read[0].token);
    }
    expect(memo.has(path, 1)).toBe(false);
    // Greedy goes on " girl named Lily": the run ends with the first stop string it writes.
    const stopped = new DraftMemo(model.vocabularySize);
    await stopped.rollAhead(model, prefix, 8, { stopStrings: [" girl"] });
    let end = prefix.length + 1;
    while (
      end <= path.length &&
      !model.detokenize(path.slice(prefix.length, end), { context: prefix }).endsWith(" girl")
    )
      end++;
    expect(end, "greedy writes ' girl' within 8 tokens").toBeLessThan(path.length);
    expect(stopped.has(path.slice(0, end - 1), 1)).toBe(true);
    expect(stopped.has(path.slice(0, end), 1)).toBe(false);
    // A whole distribution stored before is kept, not replaced by the argmax.
    const whole = new DraftMemo(model.vocabularySize);
    await whole.next(model, [prefix], 5);
    await whole.rollAhead(model, prefix, 2);
    expect(whole.has(prefix, model.vocabularySize)).toBe(true);
    expect(whole.has([...prefix, path[prefix.length]], 1)).toBe(true);
  });

  it("a word's lookahead takes the argmaxes a free run stored (no call); the word's logprob is known from them", async () => {
    const swaps = loadSwapMap("gender");
    const memo = new DraftMemo(model.vocabularySize);
    const prefix = await model.tokenize("Once upon a time, there was a little");
    // Greedy goes on " girl named": " g" begins the word, read ahead in one rollout.
    await memo.rollAhead(model, prefix, 6);
    const [first] = memo.get(prefix, 1) ?? [];
    expect(model.detokenize([first.token], { context: prefix })).toBe(" g");
    const before = model.usage.calls;
    const [unit] = await judgedUnits(model, swaps, prefix, "", [first.token], {
      lookahead: 3,
      memo,
      topK: 5,
      alongside: [prefix],
    });
    expect(unit?.unit).toBe(" girl");
    expect(unit?.term).toBe(true);
    // Neither the completion nor the alongside prefix was read: nothing had to be.
    expect(model.usage.calls - before).toBe(0);
    const path = [...prefix, first.token, ...(unit?.completion ?? [])];
    const known = path
      .slice(prefix.length)
      .map((token, i) => memo.logprob(path.slice(0, prefix.length + i), token));
    const scored = await model.scoreContinuations([{ prefix, continuation: path.slice(prefix.length) }]);
    known.forEach((logprob, i) => {
      expect(logprob, `position ${i}`).toBeCloseTo(scored[0].logprobs[i], 5);
    });
  });
});
