import { rolloutStopReason } from "../../lm/rolloutStop.js";
import type { NextTokenDistribution, RolloutRequest, StopReason, Token } from "../../lm/types.js";
import type { SpeculationSession } from "../speculative/session.js";
import type { Candidate, DealRun } from "./state.js";

/** Distribution entries kept after a lookahead: what bridging and the next expansion read. */
const AFTER_TOP_K = 1024;

/**
 * Verified lookahead (`verifyAhead`, with drafting): each round the drafter proposes the rest of
 * every unfinished candidate's lookahead, and ONE target call verifies all of them — and reads the
 * distribution after each, which bridging and the next expansion read — so a candidate whose
 * draft the target agrees with has its l-token lookahead and what follows it in one call instead
 * of l + 1. Lossless: each round keeps the agreeing prefix of a draft plus the target's own token
 * (where it disagrees, or after the draft), so the lookahead is the target's greedy text, and a
 * round without a draft is one step of a plain rollout: never more calls than rolling out. A lookup
 * drafter costs nothing, so no payoff meter is asked; a rejected draft costs only its positions.
 * Stats go to the session that counts the search's batched rollouts.
 */
export async function verifiedLookahead(
  run: DealRun,
  session: SpeculationSession,
  rollable: readonly Candidate[],
  requests: readonly RolloutRequest[],
): Promise<void> {
  const { model } = run;
  await session.prepare(model);
  const states = requests.map((r) => ({
    prefix: r.prefix,
    length: r.maxTokens ?? run.options.lookahead,
    tokens: [] as Token[],
    logprobs: [] as number[],
    stopReason: undefined as StopReason | undefined,
    after: undefined as NextTokenDistribution | undefined,
  }));
  for (const state of states) state.stopReason = state.length <= 0 ? "max-tokens" : undefined;
  for (;;) {
    const live = states.filter((state) => !state.stopReason);
    if (live.length === 0) break;
    await verifyRound(run, session, live);
  }
  rollable.forEach((c, i) => {
    const { tokens, logprobs, stopReason, after } = states[i];
    c.rollout = {
      tokens,
      logprobs,
      logprob: logprobs.reduce((a, b) => a + b, 0),
      stopReason: stopReason ?? "max-tokens",
    };
    if (after) c.after = after;
  });
}

interface LookaheadState {
  prefix: readonly Token[];
  length: number;
  tokens: Token[];
  logprobs: number[];
  stopReason: StopReason | undefined;
  after: NextTokenDistribution | undefined;
}

/** One round: drafts for every live lookahead, verified in one target call; each keeps what the target agrees with plus its own token. */
async function verifyRound(
  run: DealRun,
  session: SpeculationSession,
  live: readonly LookaheadState[],
): Promise<void> {
  const { model } = run;
  const contexts = live.map((state) => [...state.prefix, ...state.tokens]);
  // A draft of n tokens is verified with the distribution after it: n + 1 positions past the context.
  const room = live.map((state, j) =>
    Math.max(0, Math.min(state.length - state.tokens.length, model.contextSize - 2 - contexts[j].length)),
  );
  const proposed = await session.drafter.propose(
    contexts.map((context, j) => ({ context, n: room[j], random: () => 0.5 })),
    { sampling: { temperature: 0 }, ...run.calls },
  );
  const drafts = proposed.map((d, j) => validTokens(d?.tokens ?? [], room[j], model.vocabularySize));
  // The distribution after a draft is kept only where the draft may complete its lookahead.
  const completes = drafts.some((draft, j) => draft.length > 0 && draft.length === room[j]);
  const scored = await model.scoreContinuations(
    live.map((_, j) => ({ prefix: contexts[j], continuation: drafts[j] })),
    { topK: 1, nextTopK: completes ? Math.min(AFTER_TOP_K, model.capabilities.maxTopK) : 1, ...run.calls },
  );
  session.stats.targetCalls++;
  live.forEach((state, j) => {
    const draft = drafts[j];
    const top = scored[j].top ?? [];
    let agreed = 0;
    while (agreed < draft.length && top[agreed]?.[0]?.token === draft[agreed]) agreed++;
    session.stats.drafted += draft.length;
    session.stats.accepted += agreed;
    const next = scored[j].next;
    // The target's own token where it disagrees, or after the whole draft.
    const own = agreed < draft.length ? top[agreed]?.[0] : next?.[0];
    const added = draft.slice(0, agreed);
    const addedLogprobs = scored[j].logprobs.slice(0, agreed);
    if (own && state.tokens.length + added.length < state.length) {
      added.push(own.token);
      addedLogprobs.push(own.logprob);
    }
    for (let k = 0; k < added.length && !state.stopReason; k++) {
      state.tokens.push(added[k]);
      state.logprobs.push(addedLogprobs[k]);
      state.stopReason = rolloutStopReason(model, state.prefix, state.tokens, state.length, {
        stopStrings: run.context.stopStrings,
      });
    }
    // A backend that returned no next token cannot be rolled on: the lookahead ends (never loops).
    if (added.length === 0) state.stopReason ??= "max-tokens";
    // A whole draft that ends the lookahead comes with the distribution after it.
    if (
      completes &&
      agreed === draft.length &&
      draft.length > 0 &&
      state.tokens.length === state.length &&
      state.stopReason === "max-tokens" &&
      added.length === draft.length
    )
      state.after = next;
  });
}

/** A drafter's tokens cut to `n` and to valid token ids (a custom drafter may err). */
function validTokens(tokens: readonly Token[], n: number, vocabularySize: number): Token[] {
  let length = Math.min(tokens.length, n);
  for (let k = 0; k < length; k++)
    if (!(Number.isInteger(tokens[k]) && tokens[k] >= 0 && tokens[k] < vocabularySize)) length = k;
  return tokens.slice(0, length);
}
