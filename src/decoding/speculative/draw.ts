import type { Token } from "../../lm/types.js";

/** A token drawn from a distribution (token → probability, summing to 1) with one uniform number. */
export function draw(distribution: ReadonlyMap<Token, number>, random: () => number): Token {
  let threshold = random();
  let last: Token | undefined;
  for (const [token, probability] of distribution) {
    last = token;
    threshold -= probability;
    if (threshold <= 0) return token;
  }
  // Rounding left a sliver of mass: it belongs to the last token.
  if (last === undefined) throw new Error("draw: empty distribution");
  return last;
}
