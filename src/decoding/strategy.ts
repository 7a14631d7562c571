import type { StopReason, Token } from "../lm/types.js";
import type { DecodeContext, SearchTrace, StrategyDetails } from "./types.js";

/** What a strategy returns; `runStrategy` turns it into a `GenerationResult`. */
export interface DecodeOutput {
  /** Generated tokens; a final stop token may be included (it is stripped from the text). */
  tokens: Token[];
  /** Model logprob of each token in `tokens`. */
  logprobs: number[];
  stopReason: StopReason;
  /** The strategy's own objective for the chosen output (beam: length-normalised logprob; DeAL: search score). */
  score?: number;
  trace?: SearchTrace;
  details?: StrategyDetails;
}

/**
 * A decoding strategy: sees the model only through `DecodeContext.model` (a `LanguageModel`).
 * It streams through `context.emit` text that is final (a prefix of its output's text), its
 * search steps (when `context.streaming`) and every warning (it passes `callOptions(context)` to
 * each model call); `runStrategy` emits whatever text remains at the end.
 */
export interface Strategy {
  readonly name: string;
  decode(context: DecodeContext): Promise<DecodeOutput>;
}
