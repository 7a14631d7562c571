import type { ModelUsage } from "../../lm/types.js";

const COUNTED = [
  "evaluatedTokens",
  "requestedPrefixTokens",
  "cachedPrefixTokens",
  "generatedTokens",
] as const;

/**
 * Splits what one shared backend call cost (`delta`) among the requests it served, in proportion
 * to `weights` (e.g. tokens each request asked to evaluate), in whole tokens that add up exactly
 * (largest remainder). Every participant counts the call once in `calls`.
 */
export function shareUsage(
  delta: Readonly<ModelUsage>,
  sinks: readonly ModelUsage[],
  weights: readonly number[],
): void {
  const total = weights.reduce((a, b) => a + b, 0);
  for (const field of COUNTED) {
    const amount = delta[field];
    if (amount === 0 || sinks.length === 0) continue;
    const exact = weights.map((w) => (total > 0 ? (amount * w) / total : amount / sinks.length));
    const whole = exact.map(Math.floor);
    let left = amount - whole.reduce((a, b) => a + b, 0);
    const byRemainder = exact.map((x, i) => ({ i, r: x - whole[i] })).sort((a, b) => b.r - a.r || a.i - b.i);
    for (const { i } of byRemainder) {
      if (left <= 0) break;
      whole[i]++;
      left--;
    }
    sinks.forEach((sink, i) => {
      sink[field] += whole[i];
    });
  }
  for (const sink of new Set(sinks)) sink.calls++;
}

/** The usage counters as they are now (to diff after a call). */
export function snapshotUsage(usage: Readonly<ModelUsage>): ModelUsage {
  return { ...usage };
}
