// Speculative decoding: the public surface (src/index.ts re-exports it).
export {
  type AcceptanceRule,
  greedyAcceptance,
  type RoundInput,
  residualAcceptance,
  type Verdict,
} from "./acceptance.js";
export { CorpusLookupDrafter, type CorpusLookupOptions } from "./corpusLookup.js";
export { checkDrafterSpec, type DrafterSpec, resolveDrafter } from "./createDrafter.js";
export type { Draft, Drafter, DraftOptions, DraftRequest } from "./drafter.js";
export { DraftLength, type DraftTokens, parseDraftTokens } from "./draftLength.js";
export { DRAFT_MODEL_DEFAULTS, DraftModelDrafter, type DraftModelOptions } from "./draftModel.js";
export { FallbackDrafter } from "./fallback.js";
export { PayoffMeter, type PayoffOptions } from "./payoff.js";
export { PromptLookupDrafter, type PromptLookupOptions } from "./promptLookup.js";
export { type RolloutFunction, rolloutFunction } from "./rolloutFunction.js";
export { type SpeculativeRolloutOptions, speculativeRollouts } from "./rollouts.js";
export { checkSameTokenizer } from "./sameTokenizer.js";
export {
  type DraftingStats,
  draftingStats,
  type SearchDrafting,
  type SearchRollouts,
  searchRollouts,
} from "./searchDrafting.js";
export { type SpeculationOptions, SpeculationSession } from "./session.js";
export { acceptanceRate, type SpeculativeStats } from "./stats.js";
export { type SpeculativeOptions, speculative } from "./strategy.js";
