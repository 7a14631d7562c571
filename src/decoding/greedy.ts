import type { SamplingOptions, Token } from "../lm/types.js";
import { callOptions } from "./calls.js";
import { steppedSample } from "./stepped.js";
import { StepLog } from "./steps.js";
import type { DecodeOutput, Strategy } from "./strategy.js";
import { TextStream } from "./textStream.js";
import { type DecodeContext, streamsText, type TraceStep } from "./types.js";
import type { CandidateVeto } from "./veto.js";

/**
 * Plain decoding: greedy (temperature 0) or sampling. Without vetoes the whole continuation is
 * one rollout call, streamed token by token; with vetoes it steps token by token so each
 * candidate can be vetoed.
 */
export function plainDecoding(sampling: SamplingOptions, vetoes: readonly CandidateVeto[] = []): Strategy {
  const greedy = (sampling.temperature ?? 0) <= 0;
  const name = greedy ? "greedy" : "sample";
  return {
    name,
    async decode(context: DecodeContext): Promise<DecodeOutput> {
      if (vetoes.length > 0) return steppedSample(context, sampling, vetoes);
      const stream = streamsText(context)
        ? new TextStream(
            context.model,
            context.promptTokens,
            (text) => context.emit?.({ type: "text", text }),
            context.stopStrings,
          )
        : undefined;
      const [rollout] = await context.model.rollouts([{ prefix: context.promptTokens }], {
        ...sampling,
        ...callOptions(context),
        maxTokens: context.maxTokens,
        stopStrings: context.stopStrings,
        onToken: stream ? (_index, token) => stream.push(token) : undefined,
      });
      stream?.end();
      // Plain decoding considers one token per step: its steps list the chosen ones, emitted
      // once the rollout is done (a rollout does not report per-token logprobs as it goes).
      const log = new StepLog(context);
      if (log.active)
        for (let i = 0; i < rollout.tokens.length; i++)
          log.add(chosenStep(context, rollout.tokens, i, rollout.logprobs[i]));
      return {
        tokens: rollout.tokens,
        logprobs: rollout.logprobs,
        stopReason: rollout.stopReason,
        score: rollout.logprob,
        trace: log.trace(name, { ...sampling }),
      };
    },
  };
}

function chosenStep(context: DecodeContext, tokens: readonly Token[], i: number, logprob: number): TraceStep {
  const before =
    i >= 4 ? tokens.slice(i - 4, i) : [...context.promptTokens.slice(-(4 - i)), ...tokens.slice(0, i)];
  return {
    step: i,
    prefixLength: i,
    candidates: [
      {
        token: tokens[i],
        text: context.model.detokenize([tokens[i]], { context: before }),
        logprob,
        score: logprob,
        kept: true,
      },
    ],
  };
}
