import type { Token } from "../lm/types.js";

/**
 * A hook any search strategy takes to steer away from candidate tokens (e.g. Prov-Decode's
 * provenance veto). It sees token ids only, so it composes with every strategy and backend.
 */
export interface CandidateVeto {
  readonly name: string;
  /**
   * For each candidate token that would follow `context` (prompt + generated tokens), a penalty
   * to subtract from its search score: 0 keeps it as is, `Infinity` drops it (hard veto), a finite
   * γ > 0 demotes it (soft veto). Same order as `candidates`.
   */
  assess(context: readonly Token[], candidates: readonly Token[]): number[] | Promise<number[]>;
}

/** Sum of all vetoes' penalties per candidate. */
export async function vetoPenalties(
  vetoes: readonly CandidateVeto[] | undefined,
  context: readonly Token[],
  candidates: readonly Token[],
): Promise<number[]> {
  const total = candidates.map(() => 0);
  for (const veto of vetoes ?? []) {
    const penalties = await veto.assess(context, candidates);
    for (let i = 0; i < total.length; i++) total[i] += penalties[i] ?? 0;
  }
  return total;
}
