/**
 * Bounds on a pooled D when some pool words are not read. A pool word whose first token is
 * unlikely after its context (" boy" after "forest." starts with " b" at 4e-4) has a probability
 * between 0 and that first token's, read off the context's distribution the step already holds;
 * its own request (one more position each, " b" then "oy") is needed only when those bounds leave
 * the step's choice open (judge.ts, `settles`).
 */
import { bernoulliJs, logRatio } from "./divergence.js";

/** Pool words whose first token is below this probability after their context are bounded first. */
export const DEFER_BELOW = 0.03;

export type Range = readonly [low: number, high: number];

/**
 * The lowest and highest scalar D of (p, q) over p ∈ pRange, q ∈ qRange. Both kinds grow as p
 * and q move apart (|ln p − ln q|, and the JS of two Bernoullis, convex and 0 at p = q), so the
 * extremes lie at the corners, and the lowest is 0 where the ranges overlap.
 */
export function scalarRange(kind: "token" | "logratio", p: Range, q: Range): Range {
  const d = kind === "logratio" ? logRatio : bernoulliJs;
  const corners = [d(p[0], q[0]), d(p[0], q[1]), d(p[1], q[0]), d(p[1], q[1])];
  const overlap = p[0] <= q[1] && q[0] <= p[1];
  return [overlap ? 0 : Math.min(...corners), Math.max(...corners)];
}

/** Score differences this small are not trusted to settle a step (the bounds and the final score round differently). */
const SETTLED_MARGIN = 1e-9;

/**
 * Whether one candidate has the highest score (base − α·D) for every D within [lo, hi] (lo = hi
 * where D is known), by more than a rounding error: then judging with each D at its lower bound
 * chooses it too, as the exact D would.
 */
export function choiceSettled(
  base: readonly number[],
  lo: readonly number[],
  hi: readonly number[],
  alpha: number,
): boolean {
  const worst = base.map((b, i) => b - alpha * hi[i]);
  const best = base.map((b, i) => b - alpha * lo[i]);
  const winner = worst.indexOf(Math.max(...worst));
  return best.every((score, i) => i === winner || worst[winner] > score + SETTLED_MARGIN);
}
