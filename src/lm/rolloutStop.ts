import type { LanguageModel, RolloutOptions, StopReason, Token } from "./types.js";

/** What the stop rule reads of a model: its stop tokens, its text and its context size. */
export type StopRuleModel = Pick<LanguageModel, "isStopToken" | "detokenize" | "contextSize">;

/**
 * Why a rollout stops after `tokens` (generated after `prefix`), or undefined if it goes on.
 * Every rollout loop uses this one rule — both backends, the server's scheduler, speculative
 * rollouts — so a rollout ends on the same token wherever it runs. It lives in src/lm because a
 * backend may not import src/decoding, and the decoding and server layers may import src/lm.
 */
export function rolloutStopReason(
  model: StopRuleModel,
  prefix: readonly Token[],
  tokens: readonly Token[],
  maxTokens: number,
  options: Pick<RolloutOptions, "stopStrings" | "signal">,
): StopReason | undefined {
  if (model.isStopToken(tokens[tokens.length - 1])) return "end-of-generation";
  if (options.stopStrings?.length) {
    // Only the tail can hold a stop string that this token completed (earlier tokens were
    // checked already): a token decodes to at least one character once its bytes are complete,
    // so the last (longest stop + 4) tokens suffice — this keeps the check O(1) per token.
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
