import { rolloutStopReason } from "../../lm/rolloutStop.js";
import type {
  NextTokenDistribution,
  Rollout,
  RolloutRequest,
  ScoredContinuation,
  ScoreRequest,
  StopReason,
  Token,
} from "../../lm/types.js";
import { CorpusLookupDrafter } from "../speculative/corpusLookup.js";
import type { Drafter } from "../speculative/drafter.js";
import type { DraftLength } from "../speculative/draftLength.js";
import { FallbackDrafter } from "../speculative/fallback.js";
import { PromptLookupDrafter } from "../speculative/promptLookup.js";
import type { SpeculationSession } from "../speculative/session.js";
import { bridgeEarly, bridging } from "./bridge.js";
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
 * Stats go to the session that counts the search's batched rollouts. What the step would ask in
 * calls of its own rides on the rounds (one sequence each in a call made anyway): a keyword's
 * tail (judged after the first round, see `spellOut`), the distribution after a lookahead that
 * ended on the target's own token, and the keyword bridging scores after a lookahead done early.
 * bench/dealCost.ts counts, 40 dev tasks, prompt+index drafting: 3577 → 3112 target calls, same
 * positions (18709 → 18759), same text 40/40.
 */
export async function verifiedLookahead(
  run: DealRun,
  session: SpeculationSession,
  rollable: readonly Candidate[],
  requests: readonly RolloutRequest[],
  viable: (c: Candidate) => boolean,
): Promise<Candidate[]> {
  // Bridging reads the distribution after a plain candidate's lookahead (see bridge.ts).
  const bridges = bridging(run);
  // A keyword whose tokens after the first are not scored yet (see `spellOut`) is scored in the
  // first round, in front of its draft, and judged there: one call fewer for the step.
  const tails = rollable.map((c) => c.tokens.length - c.logprobs.length);
  const states = await verifiedRollouts(run, session, requests, {
    wantsAfter: rollable.map((c) => bridges && !c.lexical),
    // A lookahead done while others still run is bridged at once: its keyword is scored in the next round.
    onAfter: async (i, rollout, after) => {
      const c = rollable[i];
      if (!bridges || c.lexical) return undefined;
      c.rollout = rollout;
      c.after = after;
      const early = await bridgeEarly(run, c);
      return (
        early && { ...early.request, wantsNext: false, settle: (scored) => early.settle(scored.logprobs) }
      );
    },
    tails,
    keep: (i, logprobs) => {
      const c = rollable[i];
      c.logprobs.push(...logprobs);
      c.logprob = c.logprobs.reduce((a, b) => a + b, 0);
      return viable(c);
    },
  });
  const dropped = new Set<Candidate>();
  rollable.forEach((c, i) => {
    if (states[i].dropped) dropped.add(c);
    c.rollout = states[i].rollout;
    if (states[i].after) c.after = states[i].after;
  });
  return rollable.filter((c) => dropped.has(c));
}

/** How verification rounds are asked for (see {@link verifiedRollouts}). */
interface VerifyOptions {
  /** Caps each draft (a saturation finish). Defaults to none: a draft may fill the rest of its rollout. */
  draftLength?: DraftLength;
  /** The rollouts whose following distribution is wanted. Defaults to none. */
  wantsAfter?: readonly boolean[];
  /** Trailing prefix tokens of each rollout to score in its first round. Defaults to none. */
  tails?: readonly number[];
  /** Whether rollout i goes on, given its tail's logprobs (after the first round). Defaults to all. */
  keep?: (i: number, logprobs: number[]) => boolean;
  /**
   * Called once for each rollout complete with the distribution after it while others still run:
   * a request to score in the next round (which is made anyway), or none. Defaults to none.
   */
  onAfter?: (i: number, rollout: Rollout, after: NextTokenDistribution) => Promise<Rider | undefined>;
}

/** A request scored in a verification round made for others, and what takes its result. */
interface Rider extends ScoreRequest {
  settle: (scored: ScoredContinuation) => void;
}

/**
 * Greedy rollouts of the target through verification rounds (see {@link verifiedLookahead}), with
 * the distribution after each rollout where its last round's draft completed it. `draftLength`
 * caps each draft (a saturation finish: a long rejected draft costs more positions than the call
 * it could save); without it a draft may fill the rest of its rollout (a lookahead of l tokens).
 * `wantsAfter` marks the rollouts whose following distribution is wanted: one that ends on the
 * target's own token (its draft fell short) has its last token evaluated in the next round that
 * is made anyway for the others, instead of in a call of its own after the rounds. `tails` are
 * scored in the first round and `keep` drops the rollouts whose tail it rejects (`dropped`).
 */
export async function verifiedRollouts(
  run: DealRun,
  session: SpeculationSession,
  requests: readonly RolloutRequest[],
  { draftLength, wantsAfter = [], tails = [], keep, onAfter }: VerifyOptions = {},
): Promise<{ rollout: Rollout; after?: NextTokenDistribution; dropped?: boolean }[]> {
  await session.prepare(run.model);
  const states: LookaheadState[] = requests.map((r) => {
    const length = r.maxTokens ?? run.options.lookahead;
    return {
      prefix: r.prefix,
      length,
      tokens: [],
      logprobs: [],
      stopReason: length <= 0 ? "max-tokens" : undefined,
      after: undefined,
      tail: 0,
      dropped: false,
    };
  });
  // A tail is scored in front of the first round's draft (a rollout of no length has no round).
  states.forEach((state, i) => {
    if (!state.stopReason) state.tail = tails[i] ?? 0;
  });
  let queued: Rider[] = [];
  const told = new Set<LookaheadState>();
  for (;;) {
    run.context.signal?.throwIfAborted();
    const live = states.filter((state) => !state.stopReason);
    if (live.length === 0) break;
    // Finished rollouts awaiting the distribution after them have their last token evaluated here.
    const awaiting = states.filter((state, i) => wantsAfter[i] && !state.dropped && awaitsAfter(state));
    const riders: Rider[] = [
      ...queued,
      ...awaiting.map((state) => ({
        prefix: [...state.prefix, ...state.tokens],
        continuation: [],
        settle: (scored: ScoredContinuation) => {
          state.after = scored.next;
        },
      })),
    ];
    queued = [];
    const scoredTails = await verifyRound(run, session, live, riders, draftLength);
    for (const [state, logprobs] of scoredTails)
      if (keep && !keep(states.indexOf(state), logprobs)) {
        state.dropped = true;
        state.stopReason ??= "max-tokens";
      }
    if (!onAfter || states.every((state) => state.stopReason)) continue;
    for (const [i, state] of states.entries())
      if (state.after && !state.dropped && !told.has(state)) {
        told.add(state);
        const rider = await onAfter(i, rolloutOf(state), state.after);
        if (rider) queued.push(rider);
      }
  }
  return states.map((state) => ({ rollout: rolloutOf(state), after: state.after, dropped: state.dropped }));
}

function rolloutOf({ tokens, logprobs, stopReason }: LookaheadState): Rollout {
  return {
    tokens: [...tokens],
    logprobs: [...logprobs],
    logprob: logprobs.reduce((a, b) => a + b, 0),
    stopReason: stopReason ?? "max-tokens",
  };
}

interface LookaheadState {
  prefix: readonly Token[];
  length: number;
  tokens: Token[];
  logprobs: number[];
  stopReason: StopReason | undefined;
  after: NextTokenDistribution | undefined;
  /** Trailing prefix tokens still to score (in the next round, in front of the draft). */
  tail: number;
  /** Dropped after its tail was scored (see `keep`): no further rounds. */
  dropped: boolean;
}

/** Whether a rollout ran its full length (no stop) on the target's own last token, so the distribution after it is unknown. */
function awaitsAfter(state: LookaheadState): boolean {
  return (
    state.stopReason === "max-tokens" &&
    state.after === undefined &&
    state.tokens.length > 0 &&
    state.tokens.length === state.length
  );
}

/**
 * One round: drafts for every live lookahead, verified in one target call; each keeps what the
 * target agrees with plus its own token. `riders` (finished rollouts awaiting the distribution
 * after them) have their last token evaluated in the same call; a state's `tail` is scored in
 * front of its draft (returned, by state).
 */
async function verifyRound(
  run: DealRun,
  session: SpeculationSession,
  live: readonly LookaheadState[],
  riders: readonly Rider[],
  draftLength: DraftLength | undefined,
): Promise<Map<LookaheadState, number[]>> {
  const { model } = run;
  const contexts = live.map((state) => [...state.prefix, ...state.tokens]);
  // A draft of n tokens is verified with the distribution after it: n + 1 positions past the context.
  const room = live.map((state, j) =>
    Math.max(
      0,
      Math.min(
        state.length - state.tokens.length,
        draftLength?.current ?? Number.POSITIVE_INFINITY,
        model.contextSize - 2 - contexts[j].length,
      ),
    ),
  );
  const proposed = await session.drafter.propose(
    contexts.map((context, j) => ({ context, n: room[j], random: () => 0.5 })),
    { sampling: { temperature: 0 }, ...run.calls },
  );
  const drafts = proposed.map((d, j) => validTokens(d?.tokens ?? [], room[j], model.vocabularySize));
  // The distribution after a draft is kept only where the draft may complete its rollout.
  const completes = drafts.some(
    (draft, j) => draft.length > 0 && draft.length === live[j].length - live[j].tokens.length,
  );
  // The wide distribution after a lookahead is read only where one may be completed.
  const after = completes || riders.some((r) => r.continuation.length === 0);
  const tails = live.map((state) => state.tail);
  const scored = await model.scoreContinuations(
    [
      ...live.map((_, j) => ({
        prefix: contexts[j].slice(0, contexts[j].length - tails[j]),
        continuation: [...contexts[j].slice(contexts[j].length - tails[j]), ...drafts[j]],
      })),
      ...riders.map(({ settle, ...request }) => request),
    ],
    after || tails.some((n) => n > 0) || riders.length > 0
      ? { topK: 1, nextTopK: after ? Math.min(AFTER_TOP_K, model.capabilities.maxTopK) : 1, ...run.calls }
      : // Only each position's argmax is read (kept tokens are the argmax, so their logprobs are exact).
        { topK: 1, nextTopK: 1, argmaxOnly: true, ...run.calls },
  );
  const scoredTails = new Map<LookaheadState, number[]>();
  live.forEach((state, j) => {
    if (tails[j] === 0) return;
    // The tail's positions come first: what follows is read as for a context that ends with it.
    scoredTails.set(state, scored[j].logprobs.slice(0, tails[j]));
    scored[j] = {
      ...scored[j],
      logprobs: scored[j].logprobs.slice(tails[j]),
      top: scored[j].top?.slice(tails[j]),
    };
    state.tail = 0;
  });
  session.stats.targetCalls++;
  riders.forEach((rider, r) => {
    rider.settle(scored[live.length + r]);
  });
  let whole = 0;
  live.forEach((state, j) => {
    const draft = drafts[j];
    const top = scored[j].top ?? [];
    let agreed = 0;
    while (agreed < draft.length && top[agreed]?.[0]?.token === draft[agreed]) agreed++;
    session.stats.drafted += draft.length;
    session.stats.accepted += agreed;
    if (draft.length > 0 && agreed === draft.length) whole++;
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
  draftLength?.update(drafts.filter((d) => d.length > 0).length, whole);
  return scoredTails;
}

/** A drafter's tokens cut to `n` and to valid token ids (a custom drafter may err). */
function validTokens(tokens: readonly Token[], n: number, vocabularySize: number): Token[] {
  let length = Math.min(tokens.length, n);
  for (let k = 0; k < length; k++)
    if (!(Number.isInteger(tokens[k]) && tokens[k] >= 0 && tokens[k] < vocabularySize)) length = k;
  return tokens.slice(0, length);
}

/**
 * Whether a drafter only looks text up (prompt or corpus lookup, or a chain of them): proposing
 * costs no model call, so drafting needs no payoff meter to decide whether it pays.
 */
export function looksUp(drafter: Drafter): boolean {
  if (drafter instanceof FallbackDrafter) return drafter.drafters.every(looksUp);
  return drafter instanceof PromptLookupDrafter || drafter instanceof CorpusLookupDrafter;
}
