import type { NextTokenDistribution, Token } from "../../lm/types.js";
import { logprobOf as scannedLogprob } from "../speculative/acceptance.js";

/** Distributions this short are scanned; a longer one gets a lookup. */
const SCANNED = 32;

/**
 * Token → logprob of each long distribution read (a memo's whole distribution is read at many
 * steps' judgements). A dense one (token ids within a few times its length: a whole vocabulary) is
 * an array indexed by token (built and read once: 12–19 µs for 512 tokens, a Map 46–72 µs); a sparse one
 * (a long top k of a large vocabulary) a Map. The first entry of a token counts, as in a scan.
 */
const lookups = new WeakMap<NextTokenDistribution, Float64Array | Map<Token, number>>();

/** The logprob of `token` in `distribution` (−∞ where it is not listed). */
export function logprobOf(distribution: NextTokenDistribution, token: Token): number {
  if (distribution.length <= SCANNED) return scannedLogprob(distribution, token);
  let lookup = lookups.get(distribution);
  if (!lookup) {
    lookup = tokenLookup(distribution);
    lookups.set(distribution, lookup);
  }
  if (lookup instanceof Map) return lookup.get(token) ?? Number.NEGATIVE_INFINITY;
  return Number.isInteger(token) && token >= 0 && token < lookup.length
    ? lookup[token]
    : Number.NEGATIVE_INFINITY;
}

function tokenLookup(distribution: NextTokenDistribution): Float64Array | Map<Token, number> {
  let largest = -1;
  let integers = true;
  for (const { token } of distribution) {
    if (!(Number.isInteger(token) && token >= 0)) integers = false;
    else if (token > largest) largest = token;
  }
  // Filled from the last entry back, so a token's first entry is the one left (as in a scan).
  const lookup =
    integers && largest < 4 * distribution.length + 1024
      ? new Float64Array(largest + 1).fill(Number.NEGATIVE_INFINITY)
      : new Map<Token, number>();
  for (let i = distribution.length - 1; i >= 0; i--) {
    const { token, logprob } = distribution[i];
    if (lookup instanceof Map) lookup.set(token, logprob);
    else lookup[token] = logprob;
  }
  return lookup;
}
