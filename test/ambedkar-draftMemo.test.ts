import { describe, expect, it } from "vitest";
import { DraftMemo } from "../src/decoding/ambedkar/draftMemo.js";
import type { NextTokenDistribution } from "../src/lm/types.js";

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
