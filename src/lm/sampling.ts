import type { SamplingOptions, Token, TokenLogprob } from "./types.js";

/** A small seeded PRNG (mulberry32): fast, and identical on every platform. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The distribution the sampler draws from, given a full next-token distribution (sorted most
 * likely first): temperature, then top-k, then top-p. Temperature 0 puts all mass on the argmax.
 * Returned most likely first, as [token, probability] pairs summing to 1.
 */
export function samplerDistribution(
  sorted: readonly TokenLogprob[],
  options: SamplingOptions,
): [Token, number][] {
  const temperature = options.temperature ?? 0;
  if (temperature <= 0 || sorted.length === 1) return [[sorted[0].token, 1]];
  let pool = sorted;
  if (options.topK && options.topK > 0 && options.topK < pool.length) pool = pool.slice(0, options.topK);
  const max = pool[0].logprob;
  const weights = pool.map((entry) => Math.exp((entry.logprob - max) / temperature));
  let total = weights.reduce((a, b) => a + b, 0);
  const topP = options.topP ?? 1;
  if (topP < 1) {
    let cumulative = 0;
    let keep = 0;
    while (keep < weights.length) {
      cumulative += weights[keep++];
      if (cumulative >= topP * total) break;
    }
    weights.length = keep;
    total = cumulative;
  }
  return weights.map((weight, i) => [pool[i].token, weight / total]);
}

/** Draws the next token from `samplerDistribution(sorted, options)`. */
export function pickToken(
  sorted: readonly TokenLogprob[],
  options: SamplingOptions,
  random: () => number,
): Token {
  const distribution = samplerDistribution(sorted, options);
  let threshold = random();
  for (const [token, probability] of distribution) {
    threshold -= probability;
    if (threshold <= 0) return token;
  }
  return distribution[distribution.length - 1][0];
}
