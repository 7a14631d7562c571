import { z } from "zod";
import { decodeAborted, untilAborted } from "./decoding/aborted.js";
import type { SwapMap } from "./decoding/ambedkar/swapMap.js";
import { type DecodeEvent, streamedCall } from "./decoding/events.js";
import { createStrategy, parseStrategySpec, type StrategySpec } from "./decoding/registry.js";
import { runStrategy } from "./decoding/run.js";
import type { Strategy } from "./decoding/strategy.js";
import type { GenerationResult } from "./decoding/types.js";
import type { CandidateVeto } from "./decoding/veto.js";
import { type MinToken, minTokenOf, tokenLogprobs } from "./eval/fluency.js";
import { type ChatMode, promptTokens } from "./lm/prompt.js";
import type { LanguageModel, SamplingOptions } from "./lm/types.js";
import { scoreComponents } from "./rewards/mix.js";
import type { Reward } from "./rewards/types.js";
import { checkModel, fields, parseOptions, rewardField } from "./util/options.js";

/** What align() accepts, checked before anything runs (a bad option is a TillerError naming it). */
export const alignOptionsSchema = z
  .object({
    prompt: fields.prompt,
    reward: rewardField,
    strategy: z.union([
      z.string().min(1, "the strategy spec is empty"),
      z.object({
        name: z.string(),
        params: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])),
        label: z.string(),
      }),
      fields.object<Strategy>("a strategy spec or a Strategy"),
    ]),
    maxTokens: fields.maxTokens.default(128),
    sampling: fields.sampling.optional(),
    vetoes: z.array(fields.object<CandidateVeto>("a veto")).optional(),
    stopStrings: fields.stopStrings.optional(),
    trace: z.boolean().optional(),
    signal: fields.signal.optional(),
    models: z
      .object({
        draft: fields.object<LanguageModel>("a model").optional(),
        verifier: fields.object<LanguageModel>("a model").optional(),
        judge: fields.object<LanguageModel>("a model").optional(),
      })
      .strict()
      .optional(),
    drafter: z.string().min(1).optional(),
    draftTokens: z.union([z.number().int().min(1), z.literal("auto")]).optional(),
    swaps: fields.object<SwapMap>("a swap map").optional(),
    constitution: z.string().optional(),
    onEvent: fields.callback<(event: DecodeEvent<AlignResult>) => void>().optional(),
    system: z.string().optional(),
    chat: fields.chat.optional(),
  })
  .strict();

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
  checkModel("align", model);
  // An empty prompt is refused like generate's and eval's (an empty continuation target is a mistake).
  const parsed = parseOptions("align", alignOptionsSchema, options);
  const { signal } = parsed;
  if (signal?.aborted) throw decodeAborted(signal, { text: "", tokens: [] });
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
    maxTokens: parsed.maxTokens,
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
  // A reward that never settles must not outlive an abort either.
  const { rewards, score, logprobs } = await untilAborted(
    (async () => ({
      rewards: await scoreComponents(options.reward, input),
      score: await options.reward.score(input),
      logprobs: await tokenLogprobs(model, tokens, result.tokens),
    }))(),
    signal,
    () => decodeAborted(signal as AbortSignal, { text: result.text, tokens: result.tokens }),
  );
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
  return streamedCall(options, (signal, onEvent) => align(model, { ...options, signal, onEvent }));
}

function isStrategy(value: string | StrategySpec | Strategy): value is Strategy {
  return typeof value === "object" && typeof (value as Strategy).decode === "function";
}
