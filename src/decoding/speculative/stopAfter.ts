import type { LanguageModel, RolloutOptions, StopReason, Token } from "../../lm/types.js";

/**
 * Why a rollout stops after `tokens`, or undefined if it goes on — the same checks, in the same
 * order, as the backend's own rollouts, so a speculative rollout ends where a plain one does.
 */
export function stopAfter(
  model: LanguageModel,
  prefix: readonly Token[],
  tokens: readonly Token[],
  maxTokens: number,
  options: Pick<RolloutOptions, "stopStrings" | "signal">,
): StopReason | undefined {
  if (model.isStopToken(tokens[tokens.length - 1])) return "end-of-generation";
  if (options.stopStrings?.length) {
    // Only the tail can hold a stop string the last token completed (see LlamaCppModel).
    const tail = Math.max(...options.stopStrings.map((stop) => stop.length)) + 4;
    const recent = tokens.slice(-tail);
    const before = [...prefix, ...tokens.slice(0, tokens.length - recent.length)].slice(-8);
    const text = model.detokenize(recent, { context: before });
    if (options.stopStrings.some((stop) => text.includes(stop))) return "stop-string";
  }
  if (tokens.length >= maxTokens) return "max-tokens";
  if (prefix.length + tokens.length >= model.contextSize) return "context-full";
  if (options.signal?.aborted) return "aborted";
  return undefined;
}
