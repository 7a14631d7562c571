import type { SwapMap } from "./decoding/ambedkar/swapMap.js";
import { type DecodeEvent, eventStream } from "./decoding/events.js";
import { createStrategy, parseStrategySpec, type StrategySpec } from "./decoding/registry.js";
import { runStrategy } from "./decoding/run.js";
import type { Strategy } from "./decoding/strategy.js";
import type { GenerationResult } from "./decoding/types.js";
import type { CandidateVeto } from "./decoding/veto.js";
import { TillerError } from "./errors.js";
import { type MinToken, minTokenOf, tokenLogprobs } from "./eval/fluency.js";
import { type ChatMode, promptTokens } from "./lm/prompt.js";
import type { LanguageModel, SamplingOptions } from "./lm/types.js";
import { scoreComponents } from "./rewards/mix.js";
import type { Reward } from "./rewards/types.js";

export interface AlignOptions {
  prompt: string;
  /** What to steer toward (a `mix` of rewards is a reward). */
  reward: Reward;
  /**
   * A strategy spec (`deal:k=5,l=8`, `bon:n=8`, `greedy`, …), a parsed one, or a built
   * {@link Strategy} (e.g. a `shielded(…)` one; `vetoes` and `sampling` are then its own business).
   */
  strategy: string | StrategySpec | Strategy;
  /** Defaults to 128. */
  maxTokens?: number;
  /** Defaults for sampling strategies (a spec's own parameters win). Defaults to none. */
  sampling?: SamplingOptions;
  /** Hooks that drop or demote candidate tokens. Defaults to none. */
  vetoes?: readonly CandidateVeto[];
  /** Defaults to none. */
  stopStrings?: readonly string[];
  /** Record a search trace in the result. Defaults to false. */
  trace?: boolean;
  signal?: AbortSignal;
  /** Other models by role: a draft model for speculative drafting, a verifier for AMBEDKAR. Defaults to none. */
  models?: { draft?: LanguageModel; verifier?: LanguageModel; judge?: LanguageModel };
  /**
   * Speculative drafting: `model` (the draft model), `prompt`, `index:DIR`. The `speculative`
   * strategy drafts with it; DeAL's lookaheads and Best-of-N's samples are drafted through it too
   * (same greedy output, same sampling distribution, fewer target calls). Defaults to none (the
   * speculative strategy's own choice; plain rollouts elsewhere).
   */
  drafter?: string;
  /** Draft tokens per round: N or `auto`. Defaults to `auto`. */
  draftTokens?: number | "auto";
  /** AMBEDKAR's identity swap map. Defaults to the built-in gender map. */
  swaps?: SwapMap;
  /** AMBEDKAR's constitution text given to the verifier. Defaults to none. */
  constitution?: string;
  /**
   * Receives the decode's events: committed text, search steps, warnings, and last the result
   * with its rewards. Defaults to none.
   */
  onEvent?: (event: DecodeEvent<AlignResult>) => void;
  /** A system message (chat template only). Defaults to none. */
  system?: string;
  /** Chat template: `auto` (default: when the model has one), `on`, `off`. */
  chat?: ChatMode;
}

export interface AlignResult extends GenerationResult {
  /** Each reward component's value on the final text. */
  rewards: Record<string, number>;
  /** The (mixed) reward of the final text. */
  score: number;
  /**
   * The output's least likely token under the model (null for an empty output): where a search
   * forced something in, the price paid.
   */
  minToken: MinToken | null;
}

/** Decodes with any strategy and reports the output's rewards — the library form of `tiller align`. */
export async function align(model: LanguageModel, options: AlignOptions): Promise<AlignResult> {
  // Refused like generate's and eval's empty prompts (an empty continuation target is a mistake).
  if (typeof options?.prompt !== "string" || options.prompt === "")
    throw new TillerError("align: the prompt is empty; give the text to continue", "empty-prompt");
  const strategy = isStrategy(options.strategy)
    ? options.strategy
    : createStrategy(
        typeof options.strategy === "string" ? parseStrategySpec(options.strategy) : options.strategy,
        {
          reward: options.reward,
          vetoes: options.vetoes,
          sampling: options.sampling,
          drafter: options.drafter,
          draftTokens: options.draftTokens,
          swaps: options.swaps,
          constitution: options.constitution,
        },
      );
  const tokens = await promptTokens(model, {
    prompt: options.prompt,
    system: options.system,
    chat: options.chat,
  });
  const { onEvent } = options;
  const result = await runStrategy(strategy, {
    model,
    ...options.models,
    prompt: options.prompt,
    promptTokens: tokens,
    maxTokens: options.maxTokens ?? 128,
    stopStrings: options.stopStrings,
    signal: options.signal,
    trace: options.trace,
    drafting:
      options.drafter === undefined
        ? undefined
        : { drafter: options.drafter, draftTokens: options.draftTokens },
    // The result event waits for the rewards below.
    emit: onEvent && ((event) => event.type !== "result" && onEvent(event)),
  });
  const input = { prompt: options.prompt, text: result.text, tokens: result.tokens, finished: true };
  const rewards = await scoreComponents(options.reward, input);
  const score = await options.reward.score(input);
  const logprobs = await tokenLogprobs(model, tokens, result.tokens);
  const minToken = minTokenOf(model, tokens, result.tokens, logprobs);
  const aligned: AlignResult = { ...result, rewards, score, minToken };
  onEvent?.({ type: "result", result: aligned });
  return aligned;
}

/**
 * {@link align} as a stream: committed text, search steps and warnings as they come, and last
 * the `result` with its rewards. An error rejects the iteration; leaving the loop early aborts
 * the decode.
 */
export function alignStream(
  model: LanguageModel,
  options: AlignOptions,
): AsyncIterable<DecodeEvent<AlignResult>> {
  return eventStream<AlignResult>(
    (emit, signal) =>
      align(model, {
        ...options,
        signal,
        onEvent: (event) => {
          options.onEvent?.(event);
          emit(event);
        },
      }),
    options.signal,
  );
}

function isStrategy(value: string | StrategySpec | Strategy): value is Strategy {
  return typeof value === "object" && typeof (value as Strategy).decode === "function";
}
