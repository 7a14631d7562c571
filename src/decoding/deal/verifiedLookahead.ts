import { rolloutStopReason } from "../../lm/rolloutStop.js";
import type { NextTokenDistribution, Rollout, RolloutRequest, StopReason, Token } from "../../lm/types.js";
import type { SpeculationSession } from "../speculative/session.js";
import type { Candidate, DealRun } from "./state.js";

/** Distribution entries kept after a lookahead: what bridging and the next expansion read. */
const AFTER_TOP_K = 1024;

/**
 * Verified lookahead (`verifyAhead`, with drafting): the drafter proposes every candidate's whole
 * lookahead, and ONE target call verifies all of them and reads the distribution after each — so
 * a candidate whose draft the target agrees with has its l-token lookahead and what bridging reads
 * after it in one call instead of l + 1. Lossless: the lookahead is the target's greedy text, the
 * agreeing prefix of the draft plus the target's own token where it disagrees; a candidate still
 * short of l tokens then rolls out the rest (one batched call for all of them). A lookup drafter
 * costs nothing, so no payoff meter is asked; a draft the target rejects costs only its positions.
 * Stats go to the session that counts the search's batched rollouts.
 */
export async function verifiedLookahead(
  run: DealRun,
  session: SpeculationSession,
  rollable: readonly Candidate[],
  requests: readonly RolloutRequest[],
): Promise<void> {
  const { model, context } = run;
  if (rollable.length === 0) return;
  await session.prepare(model);
  const lengths = requests.map((r) => r.maxTokens ?? run.options.lookahead);
  // A draft of n tokens is verified with the distribution after it: n + 1 positions past the prefix.
  const room = requests.map((r, i) =>
    Math.max(0, Math.min(lengths[i], model.contextSize - 2 - r.prefix.length)),
  );
  const proposed = await session.drafter.propose(
    requests.map((r, i) => ({ context: r.prefix, n: room[i], random: () => 0.5 })),
    { sampling: { temperature: 0 }, ...run.calls },
  );
  const drafts = proposed.map((d, i) => validTokens(d?.tokens ?? [], room[i], model.vocabularySize));
  const scored = await model.scoreContinuations(
    requests.map((r, i) => ({ prefix: r.prefix, continuation: drafts[i] })),
    { topK: 1, nextTopK: Math.min(AFTER_TOP_K, model.capabilities.maxTopK), ...run.calls },
  );
  session.stats.targetCalls++;
  const short: number[] = [];
  rollable.forEach((c, i) => {
    const draft = drafts[i];
    const top = scored[i].top ?? [];
    let agreed = 0;
    while (agreed < draft.length && top[agreed]?.[0]?.token === draft[agreed]) agreed++;
    session.stats.drafted += draft.length;
    session.stats.accepted += agreed;
    const tokens = draft.slice(0, agreed);
    const logprobs = scored[i].logprobs.slice(0, agreed);
    // The target's own next token: where it disagrees, or after the whole (short) draft.
    const own = agreed < draft.length ? top[agreed]?.[0] : scored[i].next?.[0];
    const whole = agreed === draft.length;
    if (own && tokens.length < lengths[i]) {
      tokens.push(own.token);
      logprobs.push(own.logprob);
    }
    const { kept, stopReason } = cutAtStop(run, requests[i].prefix, tokens, lengths[i]);
    c.rollout = rolloutOf(tokens.slice(0, kept), logprobs.slice(0, kept), stopReason ?? "max-tokens");
    // The distribution after the lookahead is known when the lookahead is the whole draft.
    if (whole && kept === draft.length && stopReason !== "end-of-generation")
      c.after = scored[i].next as NextTokenDistribution;
    if (!stopReason) short.push(i);
  });
  if (short.length === 0) return;
  // The rest of the lookaheads the drafts fell short of: the target's own rollouts, batched.
  const rest = await model.rollouts(
    short.map((i) => ({
      prefix: [...requests[i].prefix, ...(rollable[i].rollout as Rollout).tokens],
      maxTokens: lengths[i] - (rollable[i].rollout as Rollout).tokens.length,
    })),
    { maxTokens: run.options.lookahead, stopStrings: context.stopStrings, ...run.calls },
  );
  short.forEach((i, j) => {
    const head = rollable[i].rollout as Rollout;
    rollable[i].rollout = rolloutOf(
      [...head.tokens, ...rest[j].tokens],
      [...head.logprobs, ...rest[j].logprobs],
      rest[j].stopReason,
    );
  });
}

/** How many of `tokens` a rollout keeps (it stops at a stop token or stop string), and why it stopped. */
function cutAtStop(
  run: DealRun,
  prefix: readonly Token[],
  tokens: readonly Token[],
  maxTokens: number,
): { kept: number; stopReason: StopReason | undefined } {
  for (let k = 1; k <= tokens.length; k++) {
    const reason = rolloutStopReason(run.model, prefix, tokens.slice(0, k), maxTokens, {
      stopStrings: run.context.stopStrings,
    });
    if (reason) return { kept: k, stopReason: reason };
  }
  return { kept: tokens.length, stopReason: undefined };
}

function rolloutOf(tokens: Token[], logprobs: number[], stopReason: StopReason): Rollout {
  return { tokens, logprobs, logprob: logprobs.reduce((a, b) => a + b, 0), stopReason };
}

/** A drafter's tokens cut to `n` and to valid token ids (a custom drafter may err). */
function validTokens(tokens: readonly Token[], n: number, vocabularySize: number): Token[] {
  let length = Math.min(tokens.length, n);
  for (let k = 0; k < length; k++)
    if (!(Number.isInteger(tokens[k]) && tokens[k] >= 0 && tokens[k] < vocabularySize)) length = k;
  return tokens.slice(0, length);
}
