import { describe, expect, it } from "vitest";
import { logprobOf } from "../src/decoding/ambedkar/tokenLookup.js";
import type { NextTokenDistribution } from "../src/lm/types.js";

/** A whole distribution over `size` tokens, most likely first, as a backend returns it. */
function whole(size: number): NextTokenDistribution {
  return Array.from({ length: size }, (_, i) => ({ token: (i * 7) % size, logprob: -i / 10 }));
}

describe("logprobOf", () => {
  it("reads a token of a whole distribution (indexed lookup), −∞ for a token it does not list", () => {
    const distribution = whole(512);
    for (const [i, entry] of distribution.entries())
      expect(logprobOf(distribution, entry.token)).toBe(-i / 10);
    expect(logprobOf(distribution, 512)).toBe(Number.NEGATIVE_INFINITY);
    expect(logprobOf(distribution, -1)).toBe(Number.NEGATIVE_INFINITY);
    expect(logprobOf(distribution, 1.5)).toBe(Number.NEGATIVE_INFINITY);
  });

  it("a long top k of a large vocabulary (sparse ids) and short distributions read the same", () => {
    const sparse = Array.from({ length: 40 }, (_, i) => ({ token: 150_000 - i * 1000, logprob: -i }));
    expect(logprobOf(sparse, 150_000 - 39_000)).toBe(-39);
    expect(logprobOf(sparse, 7)).toBe(Number.NEGATIVE_INFINITY);
    const short = [
      { token: 3, logprob: -0.5 },
      { token: 9, logprob: -1 },
    ];
    expect(logprobOf(short, 9)).toBe(-1);
    expect(logprobOf(short, 4)).toBe(Number.NEGATIVE_INFINITY);
  });

  it("a token listed twice reads its first entry, whichever lookup serves it", () => {
    const long = [...whole(64), { token: 5, logprob: -99 }];
    const first = long.find((entry) => entry.token === 5)?.logprob;
    expect(logprobOf(long, 5)).toBe(first);
    const short = [
      { token: 5, logprob: -1 },
      { token: 5, logprob: -2 },
    ];
    expect(logprobOf(short, 5)).toBe(-1);
  });
});
