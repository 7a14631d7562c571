import type { RolloutRequest } from "../../lm/types.js";
import type { DecodeContext } from "../types.js";
import { type DrafterSpec, resolveDrafter } from "./createDrafter.js";
import type { DraftTokens } from "./draftLength.js";
import type { RolloutFunction } from "./rolloutFunction.js";
import { speculativeRollouts } from "./rollouts.js";
import { SpeculationSession } from "./session.js";
import { acceptanceRate } from "./stats.js";

/**
 * Drafting asked of a search's rollouts (DeAL's lookaheads and saturation finish, Best-of-N's
 * samples): who drafts and how many tokens a round. Set on the DecodeContext by `align` from its
 * `drafter` / `draftTokens` (CLI --draft, --draft-tokens).
 */
export interface SearchDrafting {
  /** `model` (the context's draft model), `prompt`, `index:DIR`, `a+b`, or a Drafter. */
  drafter: DrafterSpec;
  /** Draft tokens per round: N or `auto`. Defaults to `auto`. */
  draftTokens?: DraftTokens;
}

/** What drafting did over one search: the figures a strategy's details report. */
export interface DraftingStats {
  /** Who drafted: "model:FILE", "prompt", "index:DIR". */
  drafter: string;
  /** Draft tokens proposed; of those accepted; accepted / drafted. */
  drafted: number;
  accepted: number;
  acceptanceRate: number;
  /** Target verification calls of the drafted rollouts (plain rollouts make one per token). */
  targetCalls: number;
  /** Times the drafter was switched off for not paying for itself. */
  switchOffs: number;
}

/**
 * Single rollouts longer than this (a saturation finish) get a session of their own: a lookahead
 * of a few tokens leaves a draft no room to pay, and must not switch drafting off for them.
 */
const LONG_ROLLOUT = 16;

/** A search's rollout function, and the drafting sessions behind it when the context drafts. */
export interface SearchRollouts {
  rollouts: RolloutFunction;
  /** One session for single-rollout calls, one for batched calls (see `searchRollouts`). */
  sessions?: SpeculationSession[];
}

/**
 * The rollout function for one search: `model.rollouts` when the context asks for no drafting;
 * otherwise speculative rollouts through sessions kept for the whole search, so the draft length
 * and the payoff meter learned in one step carry over to the next. Single rollouts (a saturation
 * finish) and batched ones (a step's lookaheads) have a session each: a batch of ten keeps a CPU
 * busy already, so verifying drafts there may cost more than it saves while one rollout gains —
 * each payoff meter judges its own case. Greedy rollouts stay the target's greedy tokens; sampled
 * ones keep the target's distribution (speculative sampling).
 */
export function searchRollouts(context: Pick<DecodeContext, "model" | "draft" | "drafting">): SearchRollouts {
  const { drafting, model } = context;
  if (!drafting) return { rollouts: (requests, options) => model.rollouts(requests, options) };
  const drafter = resolveDrafter(drafting.drafter, context);
  const options = { draftTokens: drafting.draftTokens ?? "auto" };
  const single = new SpeculationSession(drafter, options);
  const long = new SpeculationSession(drafter, options);
  const batched = new SpeculationSession(drafter, options);
  const sessionFor = (requests: readonly RolloutRequest[], maxTokens: number) => {
    if (requests.length > 1) return batched;
    return (requests[0]?.maxTokens ?? maxTokens) > LONG_ROLLOUT ? long : single;
  };
  return {
    sessions: [single, long, batched],
    rollouts: (requests, rolloutOptions) =>
      speculativeRollouts(model, drafter, requests, {
        ...rolloutOptions,
        session: sessionFor(requests, rolloutOptions.maxTokens),
      }),
  };
}

/** The sessions' stats, summed, as a strategy's details report them; undefined without drafting. */
export function draftingStats(
  sessions: readonly SpeculationSession[] | undefined,
): DraftingStats | undefined {
  if (!sessions?.length) return undefined;
  const sum = (key: "drafted" | "accepted" | "targetCalls" | "switchOffs") =>
    sessions.reduce((total, session) => total + session.stats[key], 0);
  const drafted = sum("drafted");
  const accepted = sum("accepted");
  return {
    drafter: sessions[0].stats.drafter,
    drafted,
    accepted,
    acceptanceRate: acceptanceRate({ drafted, accepted }),
    targetCalls: sum("targetCalls"),
    switchOffs: sum("switchOffs"),
  };
}
