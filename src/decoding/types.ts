import type { LanguageModel, ModelWarning, Token } from "../lm/types.js";
import type { DecodeEvent } from "./events.js";
import type { SearchDrafting } from "./speculative/searchDrafting.js";

export type {
  GenerationResult,
  GenerationStats,
  SearchTrace,
  ShieldAttemptSummary,
  StrategyDetails,
  TraceStep,
} from "./result.js";

/**
 * What every strategy receives. Strategies touch models only through `LanguageModel`, named by
 * role: `model` is the target (it writes the output); `draft` proposes tokens for speculative
 * verification; `verifier` judges candidates (AMBEDKAR); `judge` scores outputs for a judge
 * reward. Only the target is required; a strategy that needs another role says so.
 */
export interface DecodeContext {
  /** The target model. */
  model: LanguageModel;
  draft?: LanguageModel;
  verifier?: LanguageModel;
  judge?: LanguageModel;
  /** Prompt tokens, BOS included. */
  promptTokens: readonly Token[];
  prompt: string;
  maxTokens: number;
  stopStrings?: readonly string[];
  signal?: AbortSignal;
  /**
   * Receives the decode's event stream: committed text as soon as it is final, search steps,
   * warnings. Defaults to none (nothing is streamed).
   */
  emit?: (event: DecodeEvent) => void;
  /**
   * Someone consumes `emit`'s text and step events, so strategies build them (text streams, step
   * records) even when not tracing. `runStrategy` sets it when its caller passed `emit`.
   * Defaults to false: only warnings are emitted.
   */
  streaming?: boolean;
  /** Record a search trace in the result. */
  trace?: boolean;
  /**
   * Drafting for the strategy's rollouts (DeAL's lookaheads, Best-of-N's samples): output as
   * without it (greedy) or distributed as without it (sampled), in fewer target calls. Defaults to
   * none (plain rollouts).
   */
  drafting?: SearchDrafting;
}

/**
 * Whether a strategy emits its committed text as it goes: when someone streams, and when the run
 * can be aborted (so an aborted run reports the text it had committed).
 */
export function streamsText(context: DecodeContext): boolean {
  return Boolean(context.streaming || context.signal);
}

/** Sends a warning to the context's stream (strategies call this where they degrade a request). */
export function warn(context: Pick<DecodeContext, "emit">, warning: ModelWarning): void {
  context.emit?.({ type: "warning", warning });
}

/**
 * The context for a strategy run inside another (a retry, a candidate, a finishing pass): its
 * text never reaches the stream (the outer strategy decides what is committed); its warnings
 * always do, and its search steps only with `steps` (defaults to true).
 */
export function innerContext(context: DecodeContext, options: { steps?: boolean } = {}): DecodeContext {
  const steps = options.steps ?? true;
  const emit = context.emit;
  return {
    ...context,
    streaming: steps && context.streaming,
    emit: emit
      ? (event) => {
          if (event.type === "warning" || (steps && event.type === "step")) emit(event);
        }
      : undefined,
  };
}
