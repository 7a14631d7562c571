import { pickToken, seededRandom } from "../lm/sampling.js";
import type { SamplingOptions, StopReason, Token } from "../lm/types.js";
import type { DecodeOutput } from "./strategy.js";
import { TextStream } from "./textStream.js";
import type { DecodeContext, TraceStep } from "./types.js";
import { type CandidateVeto, vetoPenalties } from "./veto.js";

/** Candidates considered per step when vetoes may drop some of the most likely ones. */
const VETO_POOL = 32;

/**
 * Token-by-token decoding through `nextTokenDistributions`, so vetoes see every candidate before
 * it is chosen: a hard-vetoed token is never emitted, a soft-vetoed one has its logprob lowered.
 */
export async function steppedSample(
  context: DecodeContext,
  sampling: SamplingOptions,
  vetoes: readonly CandidateVeto[],
): Promise<DecodeOutput> {
  const { model } = context;
  const random = seededRandom(sampling.seed ?? 0);
  const stream = context.emit
    ? new TextStream(
        model,
        context.promptTokens,
        (text) => context.emit?.({ type: "text", text }),
        context.stopStrings,
      )
    : undefined;
  const tokens: Token[] = [];
  const logprobs: number[] = [];
  const steps: TraceStep[] = [];
  let stopReason: StopReason = "max-tokens";
  while (tokens.length < context.maxTokens) {
    if (context.signal?.aborted) {
      stopReason = "aborted";
      break;
    }
    const prefix = [...context.promptTokens, ...tokens];
    if (prefix.length >= model.contextSize) {
      stopReason = "context-full";
      break;
    }
    const [distribution] = await model.nextTokenDistributions([prefix], {
      topK: Math.min(Math.max(VETO_POOL, sampling.topK ?? 0), model.capabilities.maxTopK),
      signal: context.signal,
    });
    const penalties = await vetoPenalties(
      vetoes,
      prefix,
      distribution.map((entry) => entry.token),
    );
    const allowed = distribution
      .map((entry, i) => ({
        token: entry.token,
        logprob: entry.logprob - penalties[i],
        original: entry.logprob,
      }))
      .filter((entry) => Number.isFinite(entry.logprob))
      .sort((a, b) => b.logprob - a.logprob);
    if (context.trace)
      steps.push({
        step: tokens.length,
        prefixLength: tokens.length,
        candidates: distribution.slice(0, 8).map((entry, i) => ({
          token: entry.token,
          text: model.detokenize([entry.token], { context: prefix.slice(-4) }),
          logprob: entry.logprob,
          score: entry.logprob - penalties[i],
          kept: false,
          vetoed: penalties[i] > 0,
        })),
      });
    if (allowed.length === 0) {
      stopReason = "end-of-generation";
      break;
    }
    const token = pickToken(allowed, sampling, random);
    const chosen = allowed.find((entry) => entry.token === token);
    tokens.push(token);
    logprobs.push(chosen?.original ?? 0);
    const traced = steps.at(-1)?.candidates.find((candidate) => candidate.token === token);
    if (traced) traced.kept = true;
    if (model.isStopToken(token)) {
      stopReason = "end-of-generation";
      break;
    }
    stream?.push(token);
    if (context.stopStrings?.length) {
      const text = model.detokenize(tokens, { context: context.promptTokens.slice(-8) });
      if (context.stopStrings.some((stop) => text.includes(stop))) {
        stopReason = "stop-string";
        break;
      }
    }
  }
  stream?.end();
  return {
    tokens,
    logprobs,
    stopReason,
    trace: context.trace ? { strategy: "stepped", options: { ...sampling }, steps } : undefined,
  };
}
