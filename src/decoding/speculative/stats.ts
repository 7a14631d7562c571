/** What speculation did, accumulated over one or more speculative rollout calls. */
export interface SpeculativeStats {
  /** The drafter's name. */
  drafter: string;
  /** Draft tokens proposed to the target. */
  drafted: number;
  /** Of those, accepted. */
  accepted: number;
  /** Target verification calls (rounds; a batched round is one call). */
  targetCalls: number;
  /** Rounds in which the drafter was asked for a draft. */
  draftedRounds: number;
  /** Times the drafter was switched off for not paying. */
  switchOffs: number;
  /** Draft length at the end (`auto` adapts it). */
  draftTokens: number;
  /** The payoff meter's last estimate of the speed-up over plain decoding, when it had one. */
  estimatedSpeedup?: number;
}

export function emptySpeculativeStats(drafter: string): SpeculativeStats {
  return {
    drafter,
    drafted: 0,
    accepted: 0,
    targetCalls: 0,
    draftedRounds: 0,
    switchOffs: 0,
    draftTokens: 0,
  };
}

/** accepted / drafted (0 when nothing was drafted). */
export function acceptanceRate(stats: Pick<SpeculativeStats, "drafted" | "accepted">): number {
  return stats.drafted > 0 ? stats.accepted / stats.drafted : 0;
}
