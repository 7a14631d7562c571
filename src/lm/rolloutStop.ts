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
    const tail = longestStop(options.stopStrings) + 4;
    const recent = tokens.slice(-tail);
    const text = model.detokenize(recent, {
      context: lastBefore(prefix, tokens, tokens.length - recent.length),
    });
    if (options.stopStrings.some((stop) => text.includes(stop))) return "stop-string";
  }
  if (tokens.length >= maxTokens) return "max-tokens";
  if (prefix.length + tokens.length >= model.contextSize) return "context-full";
  if (options.signal?.aborted) return "aborted";
  return undefined;
}

/** Each stop list's longest string (a rollout asks after every token, with the same list). */
const longest = new WeakMap<readonly string[], number>();

function longestStop(stops: readonly string[]): number {
  let length = longest.get(stops);
  if (length === undefined) {
    length = Math.max(...stops.map((stop) => stop.length));
    longest.set(stops, length);
  }
  return length;
}

/** The last 8 tokens before `tokens[end]` (prefix included), without copying the whole prefix. */
function lastBefore(prefix: readonly Token[], tokens: readonly Token[], end: number): Token[] {
  const fromTokens = tokens.slice(Math.max(0, end - 8), end);
  const wanted = 8 - fromTokens.length;
  return wanted > 0 ? [...prefix.slice(Math.max(0, prefix.length - wanted)), ...fromTokens] : fromTokens;
}
