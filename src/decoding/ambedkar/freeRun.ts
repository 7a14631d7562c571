/**
 * A free run: the draft's greedy path through steps that swap nothing, read in one rollout call.
 *
 * Why: a step whose text swaps nothing is decided on the draft's argmax alone when its leader is
 * free (ambedkar.ts, `freeArgmax`), as most steps of a masked prompt are. Asked one step at a time,
 * each costs a model call; a rollout reads the next steps' argmaxes in one (its tokens are exactly
 * those argmaxes, and each term-like leader's word lookahead too), and the steps then read them
 * from the memo, deciding each as before. A run ends at a term (the step that begins it is judged,
 * and may choose another token, which leaves the rest of the run unread): the rollout stops at the
 * first term word it writes, so little is read in vain.
 */
import { matchCase } from "./sigma.js";
import type { SwapMap } from "./swapMap.js";

/**
 * Tokens a free run reads at most. Measured on identity-dev's masked prompts (ms per token, self
 * verifier, α = 30, the variants taking turns task by task): 1 (no run) 1.84, 8 1.70, 16 1.65,
 * 24 1.67; in another run 1 1.47, 16 1.43, 32 1.48. Without the stop at a term, 8 read 15 % more
 * tokens than the decode kept, and 16 was slower than none.
 */
export const FREE_RUN = 16;

const stops = new WeakMap<SwapMap, readonly string[]>();

/** Where a free run stops: every term of the map as a new word (" she", " She"). */
export function termStops(map: SwapMap): readonly string[] {
  let list = stops.get(map);
  if (!list) {
    list = [...new Set([...map.terms.keys()].flatMap((term) => [` ${term}`, ` ${matchCase("X", term)}`]))];
    stops.set(map, list);
  }
  return list;
}
