import { DraftLength } from "../speculative/draftLength.js";
import { steppedSample } from "../stepped.js";
import { innerContext } from "../types.js";
import { type Beam, type DealRun, extend } from "./state.js";
import { looksUp, verifiedRollouts } from "./verifiedLookahead.js";

/** The draft length of a verified finish: the context's `draftTokens` (auto: from 4, adapting). */
function finishDraftLength(run: DealRun): DraftLength {
  return new DraftLength(run.context.drafting?.draftTokens ?? "auto");
}

/** Whether the reward can no longer change for the best live beam (speed-up 3), so searching is wasted. */
export function saturated(run: DealRun, best: Beam): boolean {
  const { saturation, reward } = run.options;
  return Boolean(saturation && reward.saturated?.(run.inputOf(best.tokens, false)));
}

/**
 * Saturation finish: the best beam is completed by plain greedy decoding (drafted when the
 * context drafts; by a lookup drafter, in verification rounds without a payoff meter, see
 * verifiedLookahead.ts) — token by token when there are vetoes, so every token is still offered to them. The other live beams had no better
 * reward and are dropped; the finished ones still compete in the final choice.
 */
export async function finishGreedily(run: DealRun, best: Beam): Promise<void> {
  const { context, options } = run;
  const rest = context.maxTokens - best.tokens.length;
  const prefix = run.prefix(best);
  run.saturatedAt = best.tokens.length;
  const session = run.drafting?.[run.drafting.length - 1];
  const rollout = options.vetoes?.length
    ? await steppedSample(
        { ...innerContext(context, { steps: false }), promptTokens: prefix, maxTokens: rest, trace: false },
        { temperature: 0 },
        options.vetoes,
      )
    : session && options.verifyAhead && looksUp(session.drafter)
      ? (
          await verifiedRollouts(run, session, [{ prefix, maxTokens: rest }], {
            draftLength: finishDraftLength(run),
          })
        )[0].rollout
      : (
          await run.rollouts([{ prefix }], {
            maxTokens: rest,
            stopStrings: context.stopStrings,
            ...run.calls,
          })
        )[0];
  const done = extend(best, rollout.tokens, rollout.logprobs);
  done.done = rollout.stopReason;
  if (run.log.active)
    run.log.add({
      step: run.step,
      prefixLength: best.tokens.length,
      candidates: [],
      note: "reward saturated: finished greedily",
    });
  run.finished.push(done);
}
