import type { LanguageModel, Rollout, Token } from "../lm/types.js";

/** A finished rollout as text, the way `runStrategy` reports a generation. */
export interface RolloutText {
  text: string;
  /** Generated tokens, stop token excluded. */
  tokens: Token[];
  /** Sum of the model's logprobs of `tokens` (full softmax, temperature 1). */
  logprob: number;
  stopReason: Rollout["stopReason"];
}

/**
 * Strips a final stop token and cuts the text at the first stop string — exactly what
 * `runStrategy` does — so a reward scores a candidate the same way it scores a final output.
 */
export function rolloutText(
  model: LanguageModel,
  promptTokens: readonly Token[],
  rollout: Rollout,
  stopStrings?: readonly string[],
): RolloutText {
  const tokens = [...rollout.tokens];
  const logprobs = [...rollout.logprobs];
  if (tokens.length > 0 && model.isStopToken(tokens[tokens.length - 1])) {
    tokens.pop();
    logprobs.pop();
  }
  let text = model.detokenize(tokens, { context: promptTokens.slice(-8) });
  if (rollout.stopReason === "stop-string" && stopStrings?.length) {
    const cut = Math.min(...stopStrings.map((stop) => text.indexOf(stop)).filter((i) => i >= 0));
    if (Number.isFinite(cut)) text = text.slice(0, cut);
  }
  return { text, tokens, logprob: logprobs.reduce((a, b) => a + b, 0), stopReason: rollout.stopReason };
}
