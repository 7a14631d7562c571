import { pickToken, seededRandom } from "../lm/sampling.js";
import type { SamplingOptions, StopReason, Token } from "../lm/types.js";
import { callOptions, cappedTopK } from "./calls.js";
import { StepLog } from "./steps.js";
import { StopStrings } from "./stopStrings.js";
import type { DecodeOutput } from "./strategy.js";
import { TextStream } from "./textStream.js";
import { type DecodeContext, streamsText } from "./types.js";
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
  const stops = new StopStrings(context.stopStrings);
  const stream = streamsText(context)
    ? new TextStream(model, context.promptTokens, (text) => context.emit?.({ type: "text", text }), stops)
    : undefined;
  const log = new StepLog(context);
  const calls = callOptions(context);
  const topK = cappedTopK(
    context,
    Math.max(VETO_POOL, sampling.topK ?? 0),
    "vetoed decoding: candidate pool",
  );
  const tokens: Token[] = [];
  const logprobs: number[] = [];
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
    const [distribution] = await model.nextTokenDistributions([prefix], { topK, ...calls });
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
    const token = allowed.length > 0 ? pickToken(allowed, sampling, random) : undefined;
    if (log.active)
      log.add({
        step: tokens.length,
        prefixLength: tokens.length,
        candidates: distribution.slice(0, 8).map((entry, i) => ({
          token: entry.token,
          text: model.detokenize([entry.token], { context: prefix.slice(-4) }),
          logprob: entry.logprob,
          score: entry.logprob - penalties[i],
          kept: entry.token === token,
          vetoed: penalties[i] > 0,
        })),
      });
    if (token === undefined) {
      stopReason = "end-of-generation";
      break;
    }
    const chosen = allowed.find((entry) => entry.token === token);
    tokens.push(token);
    logprobs.push(chosen?.original ?? 0);
    if (model.isStopToken(token)) {
      stopReason = "end-of-generation";
      break;
    }
    stream?.push(token);
    if (stops.endsIn(model, context.promptTokens, tokens)) {
      stopReason = "stop-string";
      break;
    }
  }
  stream?.end();
  return { tokens, logprobs, stopReason, trace: log.trace("stepped", { ...sampling }) };
}
