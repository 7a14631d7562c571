import type { DecodeContext } from "../types.js";
import { type DrafterSpec, resolveDrafter } from "./createDrafter.js";
import type { DraftTokens } from "./draftLength.js";
import { type RolloutFunction, rolloutFunction } from "./rolloutFunction.js";
import type { SpeculationSession } from "./session.js";
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

/** A search's rollout function, and the drafting session behind it when the context drafts. */
export interface SearchRollouts {
  rollouts: RolloutFunction;
  session?: SpeculationSession;
}

/**
 * The rollout function for one search: `model.rollouts` when the context asks for no drafting;
 * otherwise speculative rollouts through one session for the whole search, so the draft length
 * and the payoff meter learned in one step carry over to the next. Greedy rollouts stay the
 * target's greedy tokens; sampled ones keep the target's distribution (speculative sampling).
 */
export function searchRollouts(context: Pick<DecodeContext, "model" | "draft" | "drafting">): SearchRollouts {
  const { drafting } = context;
  if (!drafting) return rolloutFunction(context.model);
  const drafter = resolveDrafter(drafting.drafter, context);
  return rolloutFunction(context.model, drafter, { draftTokens: drafting.draftTokens ?? "auto" });
}

/** The session's stats as a strategy's details report them; undefined without drafting. */
export function draftingStats(session: SpeculationSession | undefined): DraftingStats | undefined {
  if (!session) return undefined;
  const { stats } = session;
  return {
    drafter: stats.drafter,
    drafted: stats.drafted,
    accepted: stats.accepted,
    acceptanceRate: acceptanceRate(stats),
    targetCalls: stats.targetCalls,
    switchOffs: stats.switchOffs,
  };
}
