import type { SamplingOptions } from "../lm/types.js";
import { steppedSample } from "./stepped.js";
import type { DecodeOutput, Strategy } from "./strategy.js";
import { TextStream } from "./textStream.js";
import type { DecodeContext } from "./types.js";
import type { CandidateVeto } from "./veto.js";

/**
 * Plain decoding: greedy (temperature 0) or sampling. Without vetoes the whole continuation is
 * one rollout call; with vetoes it steps token by token so each candidate can be vetoed.
 */
export function plainDecoding(sampling: SamplingOptions, vetoes: readonly CandidateVeto[] = []): Strategy {
  const greedy = (sampling.temperature ?? 0) <= 0;
  return {
    name: greedy ? "greedy" : "sample",
    async decode(context: DecodeContext): Promise<DecodeOutput> {
      if (vetoes.length > 0) return steppedSample(context, sampling, vetoes);
      const stream = context.onText
        ? new TextStream(context.model, context.promptTokens, context.onText)
        : undefined;
      const [rollout] = await context.model.rollouts([{ prefix: context.promptTokens }], {
        ...sampling,
        maxTokens: context.maxTokens,
        stopStrings: context.stopStrings,
        signal: context.signal,
        onToken: stream ? (_index, token) => stream.push(token) : undefined,
      });
      return {
        tokens: rollout.tokens,
        logprobs: rollout.logprobs,
        stopReason: rollout.stopReason,
        score: rollout.logprob,
      };
    },
  };
}
