import { TillerError } from "../../errors.js";
import { numberParam, SAMPLING_PARAMS, type StrategyDefinition, samplingFrom } from "../definition.js";
import { checkDrafterSpec } from "./createDrafter.js";
import { parseDraftTokens } from "./draftLength.js";
import { DRAFT_MODEL_DEFAULTS } from "./draftModel.js";
import { speculative } from "./strategy.js";

/**
 * Registers `speculative`: `speculative[:draft=model|prompt|index:DIR|a+b,tokens=N|auto,…]`.
 * The drafter and draft length default to the CLI's --draft / --draft-tokens (StrategyDeps), then
 * to the draft model when one is loaded (else prompt lookup) and `auto`. Greedy unless a
 * temperature > 0 is given (here or by --temperature).
 */
export const SPECULATIVE_STRATEGY: StrategyDefinition = {
  name: "speculative",
  create: (spec, deps) => {
    const draft = spec.params.draft ?? deps.drafter;
    if (draft !== undefined && typeof draft !== "string")
      throw new TillerError(
        `speculative: draft must be model, prompt or index:DIR, got "${draft}"`,
        "bad-drafter",
      );
    const tokens = spec.params.tokens;
    const minSpeedup = numberParam(spec, "minSpeedup", 1, { min: 0 });
    return speculative({
      drafter: draft === undefined ? undefined : checkDrafterSpec(draft),
      draftModel: {
        minProbability: numberParam(spec, "pmin", DRAFT_MODEL_DEFAULTS.minProbability, { min: 0, max: 1 }),
      },
      draftTokens:
        tokens === undefined
          ? (deps.draftTokens ?? "auto")
          : parseDraftTokens(String(tokens), "speculative: tokens"),
      maxDraftTokens: numberParam(spec, "max", 16, { min: 1, integer: true }),
      payoff: minSpeedup === 0 ? false : { minSpeedup },
      sampling: samplingFrom(spec, deps, 0),
    });
  },
  params: {
    draft: "who drafts: model (the --draft model), prompt, index:DIR, or a+b (first that proposes)",
    tokens: "draft tokens per round: N or auto",
    max: "most draft tokens auto grows to",
    pmin: "draft model: ask for another draft token only while its own probability of the whole draft is at least this",
    minSpeedup: "switch a drafter off below this estimated speed-up (0: never)",
    ...SAMPLING_PARAMS,
  },
};
