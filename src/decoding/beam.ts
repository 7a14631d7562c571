import type { StopReason, Token } from "../lm/types.js";
import { callOptions, cappedTopK } from "./calls.js";
import { StepLog } from "./steps.js";
import { StopStrings } from "./stopStrings.js";
import type { DecodeOutput, Strategy } from "./strategy.js";
import { SharedPrefixStream, TextStream } from "./textStream.js";
import type { DecodeContext } from "./types.js";
import { type CandidateVeto, vetoPenalties } from "./veto.js";

export interface BeamOptions {
  /** Beams kept per step (b). Width 1 is greedy decoding. */
  width: number;
  /**
   * Length normalisation exponent α: hypotheses are ranked by logprob / length^α, so longer
   * outputs are not penalised merely for having more (negative) terms. Defaults to 1.
   */
  lengthPenalty?: number;
  /** Hooks that drop or demote candidate tokens. Defaults to none. */
  vetoes?: readonly CandidateVeto[];
}

interface Hypothesis {
  tokens: Token[];
  logprobs: number[];
  /** Sum of logprobs minus veto penalties: what the search ranks by. */
  sum: number;
  done: StopReason | undefined;
}

type Expansion = Hypothesis & { parent: number };

/**
 * Beam search: each step expands every live beam by its top-b tokens (one batched call for all
 * beams), keeps the b best by accumulated score, and finishes when every beam has stopped. The
 * output is the hypothesis with the best length-normalised score. It streams the tokens that
 * every hypothesis still in the running (live or finished) shares, as soon as they do.
 */
export function beamSearch(options: BeamOptions): Strategy {
  const width = Math.max(1, Math.floor(options.width));
  const alpha = options.lengthPenalty ?? 1;
  const normalised = (h: Hypothesis) => h.sum / Math.max(1, h.tokens.length) ** alpha;
  return {
    name: "beam",
    async decode(context: DecodeContext): Promise<DecodeOutput> {
      const { model } = context;
      const stops = new StopStrings(context.stopStrings);
      const log = new StepLog(context);
      const calls = callOptions(context);
      const shared = context.streaming
        ? new SharedPrefixStream(
            new TextStream(
              model,
              context.promptTokens,
              (text) => context.emit?.({ type: "text", text }),
              stops,
            ),
          )
        : undefined;
      // Ask for a few spare candidates so hard vetoes still leave b to choose from.
      const topK = cappedTopK(
        context,
        options.vetoes?.length ? width * 4 : width,
        `beam: width ${width}${options.vetoes?.length ? " (×4 spare for vetoes)" : ""}`,
      );
      let beams: Hypothesis[] = [{ tokens: [], logprobs: [], sum: 0, done: undefined }];
      const finished: Hypothesis[] = [];
      for (let step = 0; step < context.maxTokens && beams.length > 0; step++) {
        context.signal?.throwIfAborted();
        const prefixes = beams.map((beam) => [...context.promptTokens, ...beam.tokens]);
        if (prefixes.some((prefix) => prefix.length >= model.contextSize)) {
          for (const beam of beams) finished.push({ ...beam, done: "context-full" });
          beams = [];
          break;
        }
        const distributions = await model.nextTokenDistributions(prefixes, { topK, ...calls });
        const expansions: Expansion[] = [];
        for (let b = 0; b < beams.length; b++) {
          const candidates = distributions[b];
          const penalties = await vetoPenalties(
            options.vetoes,
            prefixes[b],
            candidates.map((c) => c.token),
          );
          for (let i = 0; i < candidates.length; i++) {
            if (!Number.isFinite(penalties[i])) continue;
            const { token, logprob } = candidates[i];
            expansions.push({
              parent: b,
              tokens: [...beams[b].tokens, token],
              logprobs: [...beams[b].logprobs, logprob],
              sum: beams[b].sum + logprob - penalties[i],
              done: model.isStopToken(token) ? "end-of-generation" : undefined,
            });
          }
        }
        if (expansions.length === 0) {
          // Every continuation of every beam was vetoed: the beams end where they are.
          for (const beam of beams) finished.push({ ...beam, done: "end-of-generation" });
          beams = [];
          break;
        }
        expansions.sort((a, b) => b.sum - a.sum);
        const kept = expansions.slice(0, width);
        if (log.active)
          log.add({
            step,
            prefixLength: step,
            candidates: expansions.map((e) => ({
              token: e.tokens[e.tokens.length - 1],
              text: model.detokenize(e.tokens.slice(-1), { context: prefixes[e.parent].slice(-4) }),
              logprob: e.logprobs[e.logprobs.length - 1],
              score: e.sum,
              kept: kept.includes(e),
            })),
          });
        beams = [];
        for (const hypothesis of kept) {
          if (!hypothesis.done && stops.endsIn(model, context.promptTokens, hypothesis.tokens))
            hypothesis.done = "stop-string";
          if (!hypothesis.done && hypothesis.tokens.length >= context.maxTokens)
            hypothesis.done = "max-tokens";
          if (hypothesis.done) finished.push(hypothesis);
          else beams.push(hypothesis);
        }
        shared?.update([...beams, ...finished].map((h) => h.tokens));
        // Once b hypotheses have finished, live beams can only be compared to them at equal
        // width; stop like the usual implementations do.
        if (finished.length >= width) break;
      }
      for (const beam of beams) finished.push({ ...beam, done: beam.done ?? "max-tokens" });
      finished.sort((a, b) => normalised(b) - normalised(a));
      const best = finished[0];
      return {
        tokens: best.tokens,
        logprobs: best.logprobs,
        stopReason: best.done ?? "max-tokens",
        score: normalised(best),
        trace: log.trace("beam", { width, lengthPenalty: alpha }),
      };
    },
  };
}
