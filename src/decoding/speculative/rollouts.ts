import { rolloutStopReason } from "../../lm/rolloutStop.js";
import { seededRandom } from "../../lm/sampling.js";
import type {
  LanguageModel,
  NextTokenDistribution,
  Rollout,
  RolloutOptions,
  RolloutRequest,
  StopReason,
  Token,
} from "../../lm/types.js";
import { streamSeed } from "../seeds.js";
import { type AcceptanceRule, greedyAcceptance, residualAcceptance, type Verdict } from "./acceptance.js";
import type { Draft, Drafter } from "./drafter.js";
import { type SpeculationOptions, SpeculationSession } from "./session.js";

export interface SpeculativeRolloutOptions extends RolloutOptions, SpeculationOptions {
  /** State shared across calls (draft length, payoff, stats). Defaults to a fresh session per call. */
  session?: SpeculationSession;
  /** Which draft tokens are kept. Defaults to exact greedy agreement, or speculative sampling when sampling. */
  acceptance?: AcceptanceRule;
  /**
   * Receives every round of every request (traces, tests): the draft, the verdict, and the
   * target's logprob of each draft token. Defaults to none.
   */
  onRound?: (requestIndex: number, draft: Draft, verdict: Verdict, draftLogprobs: readonly number[]) => void;
}

interface State {
  request: RolloutRequest;
  maxTokens: number;
  prefix: Token[];
  tokens: Token[];
  logprobs: number[];
  stopReason?: StopReason;
  /** Draws of the acceptance rule (verification, resampling). */
  random: () => number;
  /** Draws of a sampling drafter: a stream of its own, so drafts do not shift the target's draws. */
  draftRandom: () => number;
}

/**
 * `model.rollouts`, sped up by a drafter: each round the drafter proposes tokens for every live
 * request, the target scores all drafts in one batched `scoreContinuations` call, and each
 * request keeps the accepted prefix of its draft plus one token of the target's. Greedy rollouts
 * are token for token those of `model.rollouts`, except at a near tie: llama.cpp computes a batch
 * of tokens in another float order than one token at a time, and the KV cache differs by as much,
 * so two tokens within ~1e-3 nats can swap (seen once in 24 stories of 128 tokens on
 * stories-heavy, gap 5e-4 nats; never on stories260K). Sampled ones have the target's
 * distribution (seeded, but not the same draws as `model.rollouts`). Same result shape, so any search that
 * rolls out (DeAL's lookaheads, Best-of-N's samples) can call this instead.
 */
export async function speculativeRollouts(
  model: LanguageModel,
  drafter: Drafter,
  requests: readonly RolloutRequest[],
  options: SpeculativeRolloutOptions,
): Promise<Rollout[]> {
  const session = options.session ?? new SpeculationSession(drafter, options);
  await session.prepare(model);
  options.signal?.throwIfAborted();
  const greedy = (options.temperature ?? 0) <= 0;
  const accept = options.acceptance ?? (greedy ? greedyAcceptance : residualAcceptance);
  // Greedy verification needs only each position's argmax; sampling needs all of p.
  const topK = greedy ? 1 : model.capabilities.maxTopK;
  if (!greedy && !(model.capabilities.exactDistributions && topK >= model.vocabularySize))
    options.onWarning?.({
      code: "inexact-distribution",
      message: `${model.id} returns at most ${topK} logprobs per position: speculative sampling verifies against that truncated distribution`,
    });
  const states: State[] = requests.map((request) => {
    const seed = request.seed ?? options.seed ?? 0;
    const maxTokens = request.maxTokens ?? options.maxTokens;
    return {
      request,
      maxTokens,
      prefix: [...request.prefix],
      tokens: [],
      logprobs: [],
      stopReason: maxTokens <= 0 ? "max-tokens" : undefined,
      random: seededRandom(seed),
      draftRandom: seededRandom(streamSeed(seed, "draft", 0)),
    };
  });
  let first = true;
  for (;;) {
    const live = states.map((_, i) => i).filter((i) => !states[i].stopReason);
    if (live.length === 0) break;
    if (options.signal?.aborted) {
      for (const i of live) states[i].stopReason = "aborted";
      break;
    }
    await round(model, session, states, live, accept, options, first);
    first = false;
  }
  session.stats.draftTokens = session.length.current;
  session.stats.switchOffs = session.meter?.switchOffs ?? 0;
  session.stats.estimatedSpeedup = session.meter?.speedup;
  return states.map((state) => ({
    tokens: state.tokens,
    logprobs: state.logprobs,
    logprob: state.logprobs.reduce((a, b) => a + b, 0),
    stopReason: state.stopReason ?? "max-tokens",
  }));
}

/** One round: draft for every live request, verify all drafts in one target call, append. */
async function round(
  model: LanguageModel,
  session: SpeculationSession,
  states: State[],
  live: readonly number[],
  accept: AcceptanceRule,
  options: SpeculativeRolloutOptions,
  first: boolean,
): Promise<void> {
  const { stats, length, meter } = session;
  const drafting = meter?.shouldDraft() ?? true;
  const contexts = live.map((i) => [...states[i].prefix, ...states[i].tokens]);
  const started = performance.now();
  const drafts = drafting
    ? await proposeDrafts(
        model,
        session,
        live.map((i, j) => ({ state: states[i], context: contexts[j] })),
        options,
      )
    : live.map(() => ({ tokens: [] }));
  const greedy = (options.temperature ?? 0) <= 0;
  const topK = greedy ? 1 : model.capabilities.maxTopK;
  const scored = await model.scoreContinuations(
    live.map((_, j) => ({ prefix: contexts[j], continuation: drafts[j].tokens })),
    {
      topK,
      nextTopK: topK,
      // Greedy verification reads each position's argmax only; `onRound` also reports the
      // target's logprob of a rejected draft token, which needs the full distribution there.
      argmaxOnly: greedy && !options.onRound,
      signal: options.signal,
      onWarning: options.onWarning,
    },
  );
  const ms = performance.now() - started;
  let added = 0;
  let whole = 0;
  live.forEach((i, j) => {
    const target: NextTokenDistribution[] = [...(scored[j].top ?? []), scored[j].next ?? []];
    const verdict = accept({ draft: drafts[j], target, sampling: options, random: states[i].random });
    stats.drafted += drafts[j].tokens.length;
    stats.accepted += verdict.accepted;
    if (drafts[j].tokens.length > 0 && verdict.accepted === drafts[j].tokens.length) whole++;
    options.onRound?.(i, drafts[j], verdict, scored[j].logprobs);
    added += append(model, states[i], i, verdict, options);
  });
  length.update(drafts.filter((d) => d.tokens.length > 0).length, whole);
  stats.targetCalls++;
  if (drafting) stats.draftedRounds++;
  meter?.record({ drafted: drafting, ms, tokens: added / live.length, first });
}

/** Asks the drafter for every request, each within the round's limit (the token budget, the context). */
async function proposeDrafts(
  model: LanguageModel,
  session: SpeculationSession,
  requests: readonly { state: State; context: Token[] }[],
  options: SpeculativeRolloutOptions,
): Promise<Draft[]> {
  // A round adds up to n + 1 tokens.
  const limits = requests.map(({ state, context }) =>
    Math.max(
      0,
      Math.min(
        session.length.current,
        state.maxTokens - state.tokens.length - 1,
        model.contextSize - 1 - context.length,
      ),
    ),
  );
  const drafts: Draft[] = requests.map(() => ({ tokens: [] }));
  const asked = requests.map((_, j) => j).filter((j) => limits[j] > 0);
  if (asked.length === 0) return drafts;
  const proposed = await session.drafter.propose(
    asked.map((j) => ({ context: requests[j].context, n: limits[j], random: requests[j].state.draftRandom })),
    { sampling: options, signal: options.signal, onWarning: options.onWarning },
  );
  asked.forEach((j, k) => {
    drafts[j] = checkedDraft(proposed[k], limits[j], model.vocabularySize);
  });
  return drafts;
}

/** Appends a verdict's tokens until the rollout stops; returns how many were appended. */
function append(
  model: LanguageModel,
  state: State,
  index: number,
  verdict: Verdict,
  options: SpeculativeRolloutOptions,
): number {
  let added = 0;
  for (let k = 0; k < verdict.tokens.length && !state.stopReason; k++) {
    state.tokens.push(verdict.tokens[k]);
    state.logprobs.push(verdict.logprobs[k]);
    added++;
    options.onToken?.(index, verdict.tokens[k]);
    state.stopReason = rolloutStopReason(model, state.prefix, state.tokens, state.maxTokens, options);
  }
  return added;
}

/** A drafter's proposal cut to the round's limit and to valid token ids (a custom drafter may err). */
function checkedDraft(draft: Draft | undefined, limit: number, vocabularySize: number): Draft {
  const tokens = draft?.tokens ?? [];
  let n = Math.min(tokens.length, limit);
  for (let k = 0; k < n; k++)
    if (!(Number.isInteger(tokens[k]) && tokens[k] >= 0 && tokens[k] < vocabularySize)) n = k;
  return { tokens: tokens.slice(0, n), q: draft?.q?.slice(0, n) };
}
