import type { DecodeEvent } from "./decoding/events.js";
import { createStrategy, parseStrategySpec, type StrategySpec } from "./decoding/registry.js";
import { runStrategy } from "./decoding/run.js";
import type { Strategy } from "./decoding/strategy.js";
import type { GenerationResult } from "./decoding/types.js";
import type { CandidateVeto } from "./decoding/veto.js";
import { TillerError } from "./errors.js";
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
  maxTokens?: number;
  sampling?: SamplingOptions;
  vetoes?: readonly CandidateVeto[];
  stopStrings?: readonly string[];
  trace?: boolean;
  signal?: AbortSignal;
  /** Receives the decode's events: committed text, search steps, warnings, the result. */
  onEvent?: (event: DecodeEvent) => void;
  /** A system message (chat template only). */
  system?: string;
  /** Chat template: `auto` (default: when the model has one), `on`, `off`. */
  chat?: ChatMode;
}

export interface AlignResult extends GenerationResult {
  /** Each reward component's value on the final text. */
  rewards: Record<string, number>;
  /** The (mixed) reward of the final text. */
  score: number;
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
        { reward: options.reward, vetoes: options.vetoes, sampling: options.sampling },
      );
  const tokens = await promptTokens(model, {
    prompt: options.prompt,
    system: options.system,
    chat: options.chat,
  });
  const result = await runStrategy(strategy, {
    model,
    prompt: options.prompt,
    promptTokens: tokens,
    maxTokens: options.maxTokens ?? 128,
    stopStrings: options.stopStrings,
    signal: options.signal,
    trace: options.trace,
    emit: options.onEvent,
  });
  const input = { prompt: options.prompt, text: result.text, tokens: result.tokens, finished: true };
  const rewards = await scoreComponents(options.reward, input);
  const score = await options.reward.score(input);
  return { ...result, rewards, score };
}

function isStrategy(value: string | StrategySpec | Strategy): value is Strategy {
  return typeof value === "object" && typeof (value as Strategy).decode === "function";
}
