import type { DecodeEvent } from "../decoding/events.js";
import { runStrategy } from "../decoding/run.js";
import type { GenerationResult } from "../decoding/types.js";
import type { ModelUsage, NextTokenDistribution, StopReason, Token } from "../lm/types.js";
import { scoreComponents } from "../rewards/mix.js";
import type { DecodePlan } from "./alignment.js";
import type { ServerContext } from "./context.js";
import { shieldSummary } from "./shapes.js";

/** One choice to decode (a request has n per prompt). */
export interface ChoiceJob {
  index: number;
  /** The prompt as rewards see it (the last user message for chat). */
  promptText: string;
  promptTokens: readonly Token[];
  maxTokens: number;
  stopStrings: readonly string[];
  signal: AbortSignal;
  onEvent?: (event: DecodeEvent) => void;
  /** Per-token logprobs with this many alternatives each (0: the chosen token only); undefined: none. */
  logprobs?: number;
}

/** The per-token logprobs of a choice, as a backend-neutral list (shaped per endpoint later). */
export interface TokenLogprobs {
  tokens: Token[];
  logprobs: number[];
  top: NextTokenDistribution[] | undefined;
}

export interface ChoiceOutcome {
  index: number;
  result: GenerationResult;
  rewards: Record<string, number>;
  score: number;
  /** What this choice cost the model. */
  usage: ModelUsage;
  finishReason: "stop" | "length" | "content_filter";
  logprobs?: TokenLogprobs;
}

/** Decodes one choice with the request's plan and scores its text with the request's reward. */
export async function runChoice(
  context: ServerContext,
  plan: DecodePlan,
  job: ChoiceJob,
): Promise<ChoiceOutcome> {
  const view = context.view();
  const result = await runStrategy(plan.strategyFor(job.index), {
    model: view,
    prompt: job.promptText,
    promptTokens: job.promptTokens,
    maxTokens: job.maxTokens,
    stopStrings: job.stopStrings,
    signal: job.signal,
    trace: plan.settings.trace,
    emit: job.onEvent,
  });
  const input = { prompt: job.promptText, text: result.text, tokens: result.tokens, finished: true };
  const rewards = await scoreComponents(plan.reward, input);
  const score = await plan.reward.score(input);
  let logprobs: TokenLogprobs | undefined;
  if (job.logprobs !== undefined && result.tokens.length > 0) {
    const [scored] = await view.scoreContinuations(
      [{ prefix: job.promptTokens, continuation: result.tokens }],
      { topK: job.logprobs, signal: job.signal },
    );
    logprobs = { tokens: result.tokens, logprobs: scored.logprobs, top: scored.top };
  }
  const shield = shieldSummary(result);
  context.metrics.recordGeneration(result.tokens.length, view.usage.evaluatedTokens);
  return {
    index: job.index,
    result,
    rewards,
    score,
    usage: view.usage,
    finishReason: shield?.refused ? "content_filter" : finishReason(result.stopReason),
    logprobs,
  };
}

function finishReason(stop: StopReason): "stop" | "length" {
  return stop === "max-tokens" || stop === "context-full" ? "length" : "stop";
}
