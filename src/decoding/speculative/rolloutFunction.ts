import type { LanguageModel, Rollout, RolloutOptions, RolloutRequest } from "../../lm/types.js";
import type { Drafter } from "./drafter.js";
import { speculativeRollouts } from "./rollouts.js";
import { type SpeculationOptions, SpeculationSession } from "./session.js";

/** How a search rolls out: `model.rollouts`, or the same through a drafter. */
export type RolloutFunction = (
  requests: readonly RolloutRequest[],
  options: RolloutOptions,
) => Promise<Rollout[]>;

/**
 * The rollout function a search uses (DeAL's lookaheads, Best-of-N's samples): the model's own
 * `rollouts` without a drafter; with one, `speculativeRollouts` through one session for the whole
 * search, so draft length and payoff learned in one step carry over to the next. The session's
 * stats (drafted, accepted, target calls) are on `session` for the strategy's details.
 */
export function rolloutFunction(
  model: LanguageModel,
  drafter?: Drafter,
  options: SpeculationOptions = {},
): { rollouts: RolloutFunction; session?: SpeculationSession } {
  if (!drafter) return { rollouts: (requests, rolloutOptions) => model.rollouts(requests, rolloutOptions) };
  const session = new SpeculationSession(drafter, options);
  return {
    session,
    rollouts: (requests, rolloutOptions) =>
      speculativeRollouts(model, drafter, requests, { ...rolloutOptions, session }),
  };
}
