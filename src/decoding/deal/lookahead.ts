import type { Rollout, RolloutRequest } from "../../lm/types.js";
import { draftedLookahead } from "./draftedLookahead.js";
import type { Candidate, DealRun } from "./state.js";
import { verifiedLookahead } from "./verifiedLookahead.js";

/**
 * Lookahead: an l-token greedy rollout after every candidate that does not end the text — all of
 * a step's rollouts in one batched call (speed-up 1), or one call each (the paper). With drafting
 * (`context.drafting`) the rollouts are speculative: the same greedy tokens in fewer target calls
 * (CDSL's idea: a drafter writes the lookaheads, the target only verifies them). With
 * `lookaheadFrom: "draft"` the drafter's lookaheads are scored, not completed (see draftedLookahead.ts).
 * With drafting and `verifyAhead`, one call verifies every candidate's whole drafted lookahead and
 * reads what follows it (see verifiedLookahead.ts).
 */
export async function lookahead(run: DealRun, candidates: readonly Candidate[]): Promise<void> {
  const { model, context, options, rollouts: rollout } = run;
  const rollable = candidates.filter(
    (c) =>
      !model.isStopToken(c.tokens[c.tokens.length - 1]) &&
      c.beam.tokens.length + c.tokens.length < context.maxTokens,
  );
  const requests: RolloutRequest[] = rollable.map((c) => ({
    prefix: run.prefix(c.beam, c.tokens),
    maxTokens: Math.min(options.lookahead, context.maxTokens - c.beam.tokens.length - c.tokens.length),
  }));
  if ((options.lookaheadFrom ?? "target") !== "target")
    return draftedLookahead(
      run,
      rollable,
      requests.map((r) => r.maxTokens ?? options.lookahead),
      candidates,
    );
  const session = run.drafting?.[run.drafting.length - 1];
  if (session && options.verifyAhead && options.batch)
    return verifiedLookahead(run, session, rollable, requests);
  const rolloutOptions = { maxTokens: options.lookahead, stopStrings: context.stopStrings, ...run.calls };
  let rollouts: Rollout[];
  if (options.batch) rollouts = await rollout(requests, rolloutOptions);
  else {
    rollouts = [];
    for (const request of requests) rollouts.push(...(await rollout([request], rolloutOptions)));
  }
  rollable.forEach((c, i) => {
    c.rollout = rollouts[i];
  });
}
