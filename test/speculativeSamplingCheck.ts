import { type AcceptanceRule, samplerMap } from "../src/decoding/speculative/acceptance.js";
import type { Drafter } from "../src/decoding/speculative/drafter.js";
import { speculativeRollouts } from "../src/decoding/speculative/rollouts.js";
import { SpeculationSession } from "../src/decoding/speculative/session.js";
import { acceptanceRate } from "../src/decoding/speculative/stats.js";
import type { LanguageModel, SamplingOptions, Token } from "../src/lm/types.js";
import { type ChiSquareResult, chiSquareTest } from "./chiSquare.js";

export interface SamplingCheckOptions {
  prefix: readonly Token[];
  /** Independent samples (one seeded speculative rollout each, batched). */
  samples: number;
  sampling: SamplingOptions;
  /** The acceptance rule under test. Defaults to speculative sampling's. */
  acceptance?: AcceptanceRule;
}

export interface SamplingCheckResult extends ChiSquareResult {
  acceptanceRate: number;
  drafted: number;
}

/**
 * Does speculative sampling draw the first two tokens after `prefix` as the target does? Each
 * sample is a 3-token speculative rollout with 2 drafted tokens (so both tokens tested pass
 * through acceptance, and a rejection at either position takes the residual path); the joint
 * counts of (token 1, token 2) are compared with p(t1) · p(t2 | t1) computed from the target's
 * full distributions, by a chi-square test.
 */
export async function speculativeSamplingCheck(
  target: LanguageModel,
  drafter: Drafter,
  options: SamplingCheckOptions,
): Promise<SamplingCheckResult> {
  const session = new SpeculationSession(drafter, { draftTokens: 2, payoff: false });
  const rollouts = await speculativeRollouts(
    target,
    drafter,
    Array.from({ length: options.samples }, (_, i) => ({ prefix: options.prefix, seed: i + 1 })),
    { ...options.sampling, maxTokens: 3, session, acceptance: options.acceptance },
  );
  const key = (tokens: readonly Token[]) => `${tokens[0]},${tokens.length > 1 ? tokens[1] : "end"}`;
  const observed = new Map<string, number>();
  for (const rollout of rollouts)
    observed.set(key(rollout.tokens), (observed.get(key(rollout.tokens)) ?? 0) + 1);

  const [first] = await target.nextTokenDistributions([options.prefix], {
    topK: target.capabilities.maxTopK,
  });
  const p1 = samplerMap(first, options.sampling);
  // Only first tokens likely enough to give a cell its 5 expected samples need their conditional.
  const firsts = [...p1].filter(([, p]) => p * options.samples >= 5).map(([token]) => token);
  const expected = new Map<string, number>();
  const open = firsts.filter((token) => {
    if (!target.isStopToken(token)) return true;
    expected.set(key([token]), p1.get(token) ?? 0);
    return false;
  });
  const seconds = await target.nextTokenDistributions(
    open.map((token) => [...options.prefix, token]),
    { topK: target.capabilities.maxTopK },
  );
  open.forEach((token, i) => {
    for (const [next, p] of samplerMap(seconds[i], options.sampling))
      expected.set(key([token, next]), (p1.get(token) ?? 0) * p);
  });
  return {
    ...chiSquareTest(observed, expected),
    acceptanceRate: acceptanceRate(session.stats),
    drafted: session.stats.drafted,
  };
}
