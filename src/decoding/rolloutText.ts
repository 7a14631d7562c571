import type { LanguageModel, Rollout, Token } from "../lm/types.js";
import { StopStrings } from "./stopStrings.js";

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
 * Strips a final stop token and cuts the text at the first stop string — the one place that
 * decides what a generation's text is, so a reward scores a candidate the same way it scores a
 * final output. After a cut, `tokens` and `logprob` cover the whole tokens that lie before the
 * stop string (the text may end with part of a token that the stop string began inside).
 */
export function rolloutText(
  model: LanguageModel,
  promptTokens: readonly Token[],
  rollout: Pick<Rollout, "tokens" | "logprobs" | "stopReason">,
  stopStrings?: readonly string[] | StopStrings,
): RolloutText {
  const stops = stopStrings instanceof StopStrings ? stopStrings : new StopStrings(stopStrings);
  const tokens = [...rollout.tokens];
  const logprobs = [...rollout.logprobs];
  if (tokens.length > 0 && model.isStopToken(tokens[tokens.length - 1])) {
    tokens.pop();
    logprobs.pop();
  }
  const context = promptTokens.slice(-8);
  let text = model.detokenize(tokens, { context });
  const cut = stops.firstIn(text);
  if (cut >= 0) {
    text = text.slice(0, cut);
    while (tokens.length > 0 && model.detokenize(tokens, { context }).length > cut) {
      tokens.pop();
      logprobs.pop();
    }
  }
  const stopReason = cut >= 0 ? "stop-string" : rollout.stopReason;
  return { text, tokens, logprob: logprobs.reduce((a, b) => a + b, 0), stopReason };
}
