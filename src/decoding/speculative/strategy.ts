import type { LanguageModel, SamplingOptions, Token } from "../../lm/types.js";
import { StepLog } from "../steps.js";
import type { DecodeOutput, Strategy } from "../strategy.js";
import { TextStream } from "../textStream.js";
import type { DecodeContext, TraceStep } from "../types.js";
import { streamsText, warn } from "../types.js";
import type { Verdict } from "./acceptance.js";
import { type DrafterSpec, resolveDrafter } from "./createDrafter.js";
import type { Draft } from "./drafter.js";
import type { DraftModelOptions } from "./draftModel.js";
import { speculativeRollouts } from "./rollouts.js";
import { type SpeculationOptions, SpeculationSession } from "./session.js";
import { acceptanceRate } from "./stats.js";

export interface SpeculativeOptions extends SpeculationOptions {
  /**
   * Who drafts: a Drafter, or `"model"` (the context's draft model), `"prompt"` (prompt lookup),
   * `"index:DIR"` (corpus lookup in a trace index). Defaults to the context's draft model when it
   * has one, else prompt lookup.
   */
  drafter?: DrafterSpec;
  /** Options of the draft model drafter, when the drafter is (or includes) `model`. Defaults to {}. */
  draftModel?: DraftModelOptions;
  /** Greedy (temperature 0, the default) or sampling; the output is distributed as the target's. */
  sampling?: SamplingOptions;
}

/**
 * Speculative decoding as a strategy: the target's own greedy output (or its sampling
 * distribution), written in fewer target calls. Streams text as rounds are accepted and one `step`
 * event per round (the draft, which of it was kept, the target's token); `details` holds this
 * decode's drafted / accepted counts and target calls. Consecutive decodes with the same target
 * and draft model (an eval over many prompts, a server) share one session: what the payoff meter
 * and the draft length learned carries over instead of being measured again for every prompt.
 */
export function speculative(options: SpeculativeOptions = {}): Strategy {
  const sampling: SamplingOptions = { temperature: 0, ...options.sampling };
  let last: { target: LanguageModel; draft?: LanguageModel; session: SpeculationSession } | undefined;
  const sessionFor = (context: DecodeContext): SpeculationSession => {
    if (last?.target !== context.model || last.draft !== context.draft) {
      const drafter = resolveDrafter(options.drafter, context, options.draftModel);
      last = {
        target: context.model,
        draft: context.draft,
        session: new SpeculationSession(drafter, options),
      };
    }
    return last.session;
  };
  return {
    name: "speculative",
    async decode(context: DecodeContext): Promise<DecodeOutput> {
      const { model } = context;
      const session = sessionFor(context);
      const { drafter } = session;
      const before = { ...session.stats };
      const stream = streamsText(context)
        ? new TextStream(
            model,
            context.promptTokens,
            (text) => context.emit?.({ type: "text", text }),
            context.stopStrings,
          )
        : undefined;
      // Steps (and the logprob of each rejected draft token they show) only when someone reads them.
      const log = new StepLog(context);
      const written: Token[] = [...context.promptTokens];
      let rounds = 0;
      const [rollout] = await speculativeRollouts(model, drafter, [{ prefix: context.promptTokens }], {
        ...sampling,
        maxTokens: context.maxTokens,
        stopStrings: context.stopStrings,
        signal: context.signal,
        session,
        onWarning: (warning) => warn(context, warning),
        onToken: stream ? (_i, token) => stream.push(token) : undefined,
        onRound: log.active
          ? (_i, draft, verdict, draftLogprobs) =>
              log.add(
                roundStep(
                  model,
                  rounds++,
                  written,
                  { draft, verdict, draftLogprobs },
                  context.promptTokens.length,
                ),
              )
          : undefined,
      });
      stream?.end();
      const stats = session.stats;
      const drafted = stats.drafted - before.drafted;
      const accepted = stats.accepted - before.accepted;
      return {
        tokens: rollout.tokens,
        logprobs: rollout.logprobs,
        stopReason: rollout.stopReason,
        score: rollout.logprob,
        trace: log.trace("speculative", {
          drafter: drafter.name,
          ...sampling,
          draftTokens: options.draftTokens ?? "auto",
        }),
        details: {
          strategy: "speculative",
          drafter: stats.drafter,
          drafted,
          accepted,
          acceptanceRate: acceptanceRate({ drafted, accepted }),
          targetCalls: stats.targetCalls - before.targetCalls,
          switchOffs: stats.switchOffs - before.switchOffs,
          draftTokens: stats.draftTokens,
        },
      };
    },
  };
}

/**
 * A round as a trace step: the accepted draft tokens and the target's own token (kept), and the
 * draft token the target rejected (not kept). Appends the round's tokens to `written`.
 */
function roundStep(
  model: LanguageModel,
  index: number,
  written: Token[],
  round: { draft: Draft; verdict: Verdict; draftLogprobs: readonly number[] },
  promptLength: number,
): TraceStep {
  const { draft, verdict, draftLogprobs } = round;
  const prefixLength = written.length - promptLength;
  const candidates: TraceStep["candidates"] = [];
  verdict.tokens.forEach((token, k) => {
    if (k === verdict.accepted && k < draft.tokens.length)
      candidates.push({
        token: draft.tokens[k],
        text: model.detokenize([draft.tokens[k]], { context: written.slice(-4) }),
        logprob: draftLogprobs[k],
        score: draftLogprobs[k],
        kept: false,
      });
    candidates.push({
      token,
      text: model.detokenize([token], { context: written.slice(-4) }),
      logprob: verdict.logprobs[k],
      score: verdict.logprobs[k],
      kept: true,
    });
    written.push(token);
  });
  return {
    step: index,
    prefixLength,
    candidates,
    note: `drafted ${draft.tokens.length}, accepted ${verdict.accepted}`,
  };
}
