import type { SamplingOptions } from "../lm/types.js";
import { steppedSample } from "./stepped.js";
import type { DecodeOutput, Strategy } from "./strategy.js";
import { TextStream } from "./textStream.js";
import type { DecodeContext, SearchTrace, TraceStep } from "./types.js";
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
      const stream = context.emit
        ? new TextStream(
            context.model,
            context.promptTokens,
            (text) => context.emit?.({ type: "text", text }),
            context.stopStrings,
          )
        : undefined;
      const [rollout] = await context.model.rollouts([{ prefix: context.promptTokens }], {
        ...sampling,
        maxTokens: context.maxTokens,
        stopStrings: context.stopStrings,
        signal: context.signal,
        onToken: stream ? (_index, token) => stream.push(token) : undefined,
      });
      stream?.end();
      const output: DecodeOutput = {
        tokens: rollout.tokens,
        logprobs: rollout.logprobs,
        stopReason: rollout.stopReason,
        score: rollout.logprob,
      };
      // Plain decoding considers one token per step: the trace lists the chosen ones.
      if (context.trace)
        output.trace = rolloutTrace(
          context,
          greedy ? "greedy" : "sample",
          sampling,
          rollout.tokens,
          rollout.logprobs,
        );
      return output;
    },
  };
}

function rolloutTrace(
  context: DecodeContext,
  strategy: string,
  sampling: SamplingOptions,
  tokens: readonly number[],
  logprobs: readonly number[],
): SearchTrace {
  const steps: TraceStep[] = tokens.map((token, i) => ({
    step: i,
    prefixLength: i,
    candidates: [
      {
        token,
        text: context.model.detokenize([token], {
          context: [...context.promptTokens, ...tokens.slice(0, i)].slice(-4),
        }),
        logprob: logprobs[i],
        score: logprobs[i],
        kept: true,
      },
    ],
  }));
  return { strategy, options: { ...sampling }, steps };
}
