import type { Rollout, RolloutRequest } from "../../lm/types.js";
import type { SpeculationSession } from "../speculative/session.js";
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
 * reads what follows it (see verifiedLookahead.ts); a keyword whose tail `spellOut` left unscored
 * is scored there and judged by `viable`. Returns the candidates `viable` rejected (to be dropped).
 */
export async function lookahead(
  run: DealRun,
  candidates: readonly Candidate[],
  viable: (c: Candidate) => boolean = () => true,
): Promise<Candidate[]> {
  const { context, options, rollouts: rollout } = run;
  const rollable = candidates.filter((c) => rolls(run, c));
  const requests: RolloutRequest[] = rollable.map((c) => ({
    prefix: run.prefix(c.beam, c.tokens),
    maxTokens: Math.min(options.lookahead, context.maxTokens - c.beam.tokens.length - c.tokens.length),
  }));
  if ((options.lookaheadFrom ?? "target") !== "target") {
    await draftedLookahead(
      run,
      rollable,
      requests.map((r) => r.maxTokens ?? options.lookahead),
      candidates,
    );
    return [];
  }
  const session = verifyingSession(run);
  if (session) return verifiedLookahead(run, session, rollable, requests, viable);
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
  return [];
}

/** Whether a candidate is looked ahead of: it does not end the text and leaves room for a token. */
export function rolls(run: DealRun, c: Candidate): boolean {
  return (
    !run.model.isStopToken(c.tokens[c.tokens.length - 1]) &&
    c.beam.tokens.length + c.tokens.length < run.context.maxTokens
  );
}

/** The drafting session whose drafts verified lookaheads check (`verifyAhead`), if the lookaheads are verified. */
export function verifyingSession(run: DealRun): SpeculationSession | undefined {
  const { options } = run;
  const session = run.drafting?.[run.drafting.length - 1];
  return session && options.verifyAhead && options.batch && (options.lookaheadFrom ?? "target") === "target"
    ? session
    : undefined;
}
