/**
 * AMBEDKAR (Mukhopadhyay et al., 2025, arXiv 2509.02133): a draft writes, a verifier judges each
 * candidate against counterfactual contexts, and a token whose probability leans on a protected
 * identity loses:
 *   c* = argmax_c [ log p_draft,T(c | x, y) − α · D(c) (+ λ · reward − veto penalties) ]
 * over the draft's top-k at temperature T (greedy, or seeded sampling from softmax of the score).
 * Unlike the public code, the counterfactual follows the generated text, σ works on words (so
 * draft and verifier may have different tokenizers), a candidate missing from the verifier's
 * vocabulary is scored through its text, and the verifier's calls of a step are one batch.
 */
import { TillerError } from "../../errors.js";
import { pickToken, seededRandom } from "../../lm/sampling.js";
import type { LanguageModel, ScoreRequest, StopReason, Token } from "../../lm/types.js";
import type { Reward } from "../../rewards/types.js";
import { scoreAll } from "../../rewards/types.js";
import type { DecodeOutput, Strategy } from "../strategy.js";
import { TextStream } from "../textStream.js";
import { type DecodeContext, type TraceStep, warn } from "../types.js";
import { type CandidateVeto, vetoPenalties } from "../veto.js";
import { type JudgedUnit, judgedUnits } from "./candidateWords.js";
import { judgeCheapestFirst } from "./cheapFirst.js";
import { divergenceBound } from "./divergence.js";
import { DraftMemo } from "./draftMemo.js";
import { FREE_RUN, termStops } from "./freeRun.js";
import { type DivergenceKind, type JudgeOptions, judge } from "./judge.js";
import { choiceSettled } from "./poolBounds.js";
import { counterfactual, shifts, swapsNothing } from "./sigma.js";
import type { SwapMap } from "./swapMap.js";
import { VerifierView } from "./verifierView.js";

export interface AmbedkarOptions {
  /** The identity groups and their counterparts (see docs/swaps.md). */
  swaps: SwapMap;
  /** Draft candidates per step. Defaults to 5. */
  k?: number;
  /** Weight α of the divergence against the draft's log-probability. Defaults to 1. */
  alpha?: number;
  /**
   * "token": JS between the probabilities of c and σ(c) (cheap: a one-token candidate is read off
   * its context's distribution, shared by all candidates); "js": JS between the next-token
   * distributions after c and after σ(c), the paper's definition (one request per candidate, and
   * pieces of multi-token identity words in those distributions cannot be read back through σ);
   * "logratio": |ln p − ln q| of the probabilities "token" compares, in nats like the draft's
   * log-probability (docs/ambedkar.md, "The scale of α"). Defaults to "token".
   */
  divergence?: DivergenceKind;
  /**
   * Judge an identity word by the verifier's probability of its whole group ("she" and "Lucy"
   * together against "he" and "Timmy"; groupPool.ts), for "token" and "logratio".
   * Defaults to true.
   */
  byGroup?: boolean;
  /**
   * "step": a scalar D ("token", "logratio") counts only beyond the step baseline, how far the
   * counterfactual context moves the verifier on tokens that cannot name an identity (the mass-
   * weighted median of their log-ratios; baseline.ts), so a verifier that shifts every token after
   * the swapped name does not make every candidate look identity-dependent. B = 0 where nothing
   * in the context is swapped (masked prompts). "none": D as measured. Ignored by "js".
   * Defaults to "none".
   */
  baseline?: "step" | "none";
  /** How the divergences of n-way groups combine. Defaults to the swap map's `aggregate` (mean unless it says). */
  aggregate?: "mean" | "max";
  /** Draft temperature T of the log-probabilities scored. Defaults to 0.7. */
  temperature?: number;
  /** Sample from softmax(score) instead of taking the best candidate. Defaults to false (greedy). */
  sample?: boolean;
  /** Seed of the sampler. Defaults to 0. */
  seed?: number;
  /** Draft tokens a candidate that begins a term-like word may be completed by. Defaults to 3. */
  lookahead?: number;
  /** Entries of each next-token distribution the "js" divergence compares. Defaults to 256. */
  nextK?: number;
  /** An instruction the verifier reads first (e.g. Articles 14–17). Defaults to none. */
  constitution?: string;
  /** A reward added to the score, weighted by `lambda`. Defaults to none. */
  reward?: Reward;
  /** Weight λ of `reward`. Defaults to 0 (the reward is ignored). */
  lambda?: number;
  vetoes?: readonly CandidateVeto[];
  /** Fail when the context names no verifier instead of letting the draft verify itself. Defaults to false. */
  requireVerifier?: boolean;
  /**
   * Skip model calls that cannot change the choice: a greedy step whose leader has D = 0 for
   * certain judges nothing else, and a self-verifying draft fetches its next step in the
   * verifier's batch, whose contexts it then reads from its memo, and judges its candidates
   * cheapest first, leaving out those that can no longer win (cheapFirst.ts). The skip is exact; a reused
   * distribution comes from another batch, so without the backend's paired evaluation
   * (`pairLoneTokens`) its logprobs may differ by ~1e-3 and a near-tie that close can flip
   * (docs/ambedkar.md, "Cost"); false judges every contender, for checking. Defaults to true.
   */
  shortcuts?: boolean;
}

export const AMBEDKAR_DEFAULTS = {
  k: 5,
  alpha: 1,
  divergence: "token" as DivergenceKind,
  byGroup: true,
  baseline: "none" as "step" | "none",
  temperature: 0.7,
  sample: false,
  seed: 0,
  lookahead: 3,
  nextK: 256,
  lambda: 0,
  shortcuts: true,
};

/** Candidates fetched per step when vetoes may drop some of the top k. */
const VETO_POOL = 32;

interface Candidate {
  token: Token;
  logprob: number;
  penalty: number;
  text: string;
  unit?: string;
  /** Whether D was computed (a candidate that cannot win is not judged). */
  judged: boolean;
  divergence: number;
  reward: number;
  score: number;
}

export function ambedkar(options: AmbedkarOptions): Strategy {
  const o = { ...AMBEDKAR_DEFAULTS, ...options };
  if (!Number.isInteger(o.k) || o.k < 1)
    throw new TillerError(`ambedkar: k must be an integer ≥ 1, got ${o.k}`, "bad-strategy-param");
  if (!(o.alpha >= 0))
    throw new TillerError(`ambedkar: alpha must be ≥ 0, got ${o.alpha}`, "bad-strategy-param");
  if (!(o.temperature > 0))
    throw new TillerError(`ambedkar: temperature must be > 0, got ${o.temperature}`, "bad-strategy-param");
  return { name: "ambedkar", decode: (context) => runAmbedkar(context, o) };
}

type Resolved = typeof AMBEDKAR_DEFAULTS & AmbedkarOptions;

/**
 * Whether a decode judges cheapest first (cheapFirst.ts): greedy, a scalar D, a draft verifying
 * itself on the very tokens it reads (no constitution or chat template before them: the verifier's
 * real context is then the draft's prefix, in the memo), and steps that judge at all (α > 0, k > 1).
 * With `baseline=step` it settles fewer steps (on 8 stated prompts it left out 124 candidates
 * against 355 without): the baseline reads the real context cut before a growing word, which the
 * memo holds less often.
 */
function cheapFirstApplies(
  o: Resolved,
  verifier: LanguageModel,
  selfMemo: boolean,
  exhaustive: boolean,
): boolean {
  return (
    selfMemo &&
    !exhaustive &&
    o.divergence !== "js" &&
    o.alpha > 0 &&
    o.k > 1 &&
    o.constitution === undefined &&
    !verifier.capabilities.chatTemplate
  );
}

function verifierOf(context: DecodeContext, o: Resolved): LanguageModel {
  if (!context.model)
    throw new TillerError("ambedkar needs a draft model that writes the output (--model)", "no-draft-model");
  if (context.verifier) return context.verifier;
  if (o.requireVerifier)
    throw new TillerError("ambedkar: no verifier model was given (--verifier M)", "no-verifier-model");
  return context.model;
}

/** What one decode carries from step to step. */
interface Run {
  context: DecodeContext;
  o: Resolved;
  verifier: LanguageModel;
  view: VerifierView;
  memo: DraftMemo;
  aggregate: "mean" | "max";
  /** Draft entries fetched per step (k, more when vetoes may drop some). */
  pool: number;
  divergenceSum: number;
  judged: number;
  requests: number;
  /** Steps whose leader was certified D = 0 without judging the others (leaderIsFree). */
  skipped: number;
  /** Draft distributions fetched in a verifier batch for the next step (nextDraftRequest). */
  prefetched: number;
  /**
   * Whether the draft verifies itself with shortcuts on a backend serving whole distributions: its
   * memo then keeps whole ones, which the verifier reads (same model, same tokens).
   */
  selfMemo: boolean;
  /**
   * Whether a greedy self-verifying step first judges the candidates that need no lookahead from
   * the memo (cheapFirst): they are, when the step's counterfactual contexts were fetched with
   * its draft distribution.
   */
  cheapFirst: boolean;
  /** Whether every candidate is judged (sampling, or a reward: neither has a bound). */
  exhaustive: boolean;
  /** Candidates left unjudged because their best possible score lost to a judged one (cheapFirst). */
  pruned: number;
  /** Nobody watches the steps' candidates (no trace, no stream): their D may be left as bounds. */
  unwatched: boolean;
  /**
   * Whether a step with nothing to swap first reads only the draft's argmax (`freeArgmax`): greedy,
   * shortcuts, α > 0, k > 1, no vetoes and no reward (the argmax is then the leader), unwatched.
   */
  argmaxFirst: boolean;
  /** Steps decided on the draft's argmax alone (freeArgmax). */
  argmaxSteps: number;
  /**
   * Whether `freeArgmax` reads ahead in free runs (freeRun.ts): only where whole distributions are
   * served in one pass (llama.cpp in process, also behind tiller's own server), whose greedy
   * rollout reads the argmax a distribution read gives. A remote server's sampler and logprobs
   * need not be those of its distribution reads.
   */
  freeRun: boolean;
  /** Rollout calls reading a free run's argmaxes ahead (freeRun.ts). */
  freeRuns: number;
  /** `swapFree`'s last answer and the generated text it was for. */
  swapFreeAt?: { generated: string; value: boolean };
  /** Texts (pool words mostly) left unread because bounds on them settled the step (judge's `settles`). */
  bounded: number;
}

async function runAmbedkar(context: DecodeContext, o: Resolved): Promise<DecodeOutput> {
  const verifier = verifierOf(context, o);
  const { model: draft, promptTokens } = context;
  const selfMemo = o.shortcuts && verifier === draft && draft.capabilities.maxTopK >= draft.vocabularySize;
  const exhaustive = o.sample || (o.reward !== undefined && o.lambda > 0);
  const unwatched = !context.trace && !context.streaming;
  const run: Run = {
    context,
    o,
    verifier,
    view: new VerifierView(verifier, o.constitution),
    memo: new DraftMemo(selfMemo ? draft.vocabularySize : 0),
    aggregate: o.aggregate ?? o.swaps.aggregate,
    pool: Math.min(o.vetoes?.length ? Math.max(o.k, VETO_POOL) : o.k, draft.capabilities.maxTopK),
    divergenceSum: 0,
    judged: 0,
    requests: 0,
    skipped: 0,
    prefetched: 0,
    selfMemo,
    cheapFirst: cheapFirstApplies(o, verifier, selfMemo, exhaustive),
    exhaustive,
    pruned: 0,
    bounded: 0,
    unwatched,
    argmaxFirst: unwatched && o.shortcuts && !exhaustive && o.alpha > 0 && o.k > 1 && !o.vetoes?.length,
    argmaxSteps: 0,
    freeRun: draft.capabilities.maxTopK >= draft.vocabularySize && draft.capabilities.singlePassScoring,
    freeRuns: 0,
  };
  const random = seededRandom(o.seed);
  const stream = context.emit
    ? new TextStream(
        draft,
        promptTokens,
        (text) => context.emit?.({ type: "text", text }),
        context.stopStrings,
      )
    : undefined;
  const verifierBefore = verifier.usage.evaluatedTokens;
  const tokens: Token[] = [];
  const logprobs: number[] = [];
  const steps: TraceStep[] = [];
  let stopReason: StopReason = "max-tokens";
  let overridden = 0;
  while (tokens.length < context.maxTokens) {
    if (context.signal?.aborted) {
      stopReason = "aborted";
      break;
    }
    const prefix = [...promptTokens, ...tokens];
    if (prefix.length >= draft.contextSize) {
      stopReason = "context-full";
      break;
    }
    const generated = draft.detokenize(tokens, { context: promptTokens.slice(-8) });
    const contexts = run.cheapFirst ? await stepContexts(run, generated, "") : [];
    run.memo.retain([prefix, ...contexts]);
    let chosen = run.argmaxFirst ? await freeArgmax(run, prefix, generated) : undefined;
    if (!chosen) {
      const candidates = await draftCandidates(run, prefix, contexts);
      if (candidates.length === 0) {
        stopReason = "end-of-generation";
        break;
      }
      await judgeCandidates(run, prefix, generated, candidates);
      await rewardCandidates(run, tokens, generated, candidates);
      scoreCandidates(candidates, o);
      chosen = choose(candidates, o, random);
      if (chosen !== candidates[0]) overridden++;
      const step = traceStep(tokens.length, candidates, chosen);
      if (context.trace) steps.push(step);
      context.emit?.({ type: "step", step });
    }
    tokens.push(chosen.token);
    logprobs.push(chosen.logprob);
    if (draft.isStopToken(chosen.token)) {
      stopReason = "end-of-generation";
      break;
    }
    stream?.push(chosen.token);
    if (context.stopStrings?.length) {
      const text = draft.detokenize(tokens, { context: promptTokens.slice(-8) });
      if (context.stopStrings.some((stop) => text.includes(stop))) {
        stopReason = "stop-string";
        break;
      }
    }
  }
  stream?.end();
  return {
    tokens,
    logprobs,
    stopReason,
    score: logprobs.reduce((a, b) => a + b, 0),
    trace: context.trace ? { strategy: "ambedkar", options: traceOptions(run, draft), steps } : undefined,
    details: {
      strategy: "ambedkar",
      steps: tokens.length,
      meanDivergence: run.judged > 0 ? run.divergenceSum / run.judged : 0,
      overridden,
      verifierRequests: run.requests,
      freeLeaderSteps: run.skipped,
      argmaxSteps: run.argmaxSteps,
      freeRuns: run.freeRuns,
      prunedCandidates: run.pruned,
      boundedPoolWords: run.bounded,
      verifierEvaluatedTokens: verifier.usage.evaluatedTokens - verifierBefore,
      verifier: verifier === draft ? "self" : verifier.id,
    },
  };
}

/**
 * Sets D on the candidates whose divergence can change the choice. Greedy choice is a branch and
 * bound: D lies in [0, Dmax] (ln 2 for JS), so a candidate whose best possible score is below another's worst
 * possible score can never win and is not judged, and a step with a single contender needs no
 * verifier at all. Sampling (and a reward, which has no bound) judges every candidate.
 */
async function judgeCandidates(
  run: Run,
  prefix: readonly Token[],
  generated: string,
  candidates: Candidate[],
) {
  const { o, context, exhaustive } = run;
  if (o.alpha === 0) return;
  const base = candidates.map((c) => c.logprob / o.temperature - c.penalty);
  const bestLower = Math.max(...base) - o.alpha * divergenceBound(o.divergence);
  const contenders = candidates.map((_, i) => exhaustive || base[i] >= bestLower);
  if (contenders.filter(Boolean).length < 2) return;
  const leader = candidates[base.indexOf(Math.max(...base))];
  if (o.shortcuts && !exhaustive && (await leaderIsFree(run, prefix, generated, leader))) return;
  const draftNext = o.shortcuts ? nextDraftRequest(run, prefix, leader) : undefined;
  const prefetch = [...(draftNext ? [draftNext] : []), ...(await nextContexts(run, generated, leader))];
  const ahead = () => contextsAhead(run, generated, leader, prefetch);
  if (run.cheapFirst) {
    const ruledOut = await judgeCheapestFirst({
      draft: context.model,
      swaps: o.swaps,
      view: run.view,
      prompt: context.prompt,
      prefix,
      generated,
      tokens: candidates.map((c) => c.token),
      base,
      contenders,
      alpha: o.alpha,
      lookahead: o.lookahead,
      memo: run.memo,
      pool: run.pool,
      judge: judgeOptions(run),
      ahead,
      settle: (i, unit, divergence) => setJudged(run, candidates[i], unit, divergence),
    });
    if (ruledOut !== undefined) {
      run.pruned += ruledOut;
      return;
    }
  }
  const units = await judgedUnits(
    context.model,
    o.swaps,
    prefix,
    generated,
    candidates.map((c, i) => (contenders[i] ? c.token : undefined)),
    {
      lookahead: o.lookahead,
      memo: run.memo,
      topK: run.pool,
      alongside: run.selfMemo ? await ahead() : undefined,
      signal: context.signal,
    },
  );
  const judgement = await judge(run.view, o.swaps, context.prompt, generated, units, {
    ...judgeOptions(run),
    prefetch,
    // The whole distribution (what the next step's verifier reads too) costs what the top k does.
    prefetchTopK: run.selfMemo ? undefined : run.pool,
    // Bounds settle the choice but not the D a trace or stream shows: only when nobody watches.
    settles:
      o.shortcuts && !exhaustive && run.unwatched
        ? (lo, hi) =>
            choiceSettled(
              base,
              candidates.map((c, i) => (contenders[i] ? lo[i] : c.divergence)),
              candidates.map((c, i) => (contenders[i] ? hi[i] : c.divergence)),
              o.alpha,
            )
        : undefined,
  });
  run.requests += judgement.requests;
  run.bounded += judgement.bounded;
  prefetch.forEach((request, i) => {
    const next = judgement.prefetched?.[i];
    if (next && next.length >= run.pool) run.memo.set(request.prefix, next);
  });
  if (draftNext && run.memo.has(draftNext.prefix, run.pool)) run.prefetched++;
  candidates.forEach((c, i) => {
    if (contenders[i]) setJudged(run, c, units[i], judgement.divergences[i], judgement.bounded === 0);
  });
}

/** The judge's options of a run (what every judgement of a step shares). */
function judgeOptions(run: Run): JudgeOptions {
  const { o, context } = run;
  return {
    divergence: o.divergence,
    byGroup: o.byGroup,
    baseline: o.baseline,
    aggregate: run.aggregate,
    nextK: o.nextK,
    signal: context.signal,
    onWarning: (warning) => warn(context, warning),
    known: run.selfMemo ? (p) => run.memo.get(p, run.verifier.vocabularySize) : undefined,
    knownToken: run.selfMemo ? (p, token) => run.memo.logprob(p, token) : undefined,
  };
}

/** Records candidate c's unit and D; an inexact D (a lower bound, judge's `settles`) stays out of the mean. */
function setJudged(
  run: Run,
  c: Candidate,
  unit: JudgedUnit | undefined,
  divergence: number,
  exact = true,
): void {
  c.unit = unit?.unit;
  c.judged = true;
  c.divergence = divergence;
  if (!exact) return;
  run.divergenceSum += divergence;
  run.judged++;
}

/**
 * Whether the greedy leader (the first candidate of the highest draft score) has D = 0 for
 * certain: nothing in the context can be swapped, and the leader's judged unit (its whole word
 * when it could become a term) is no term either. Then no candidate can beat it (D ≥ 0 only
 * lowers scores, and ties keep the first), so the step needs neither the others' lookaheads nor
 * the verifier — the choice is the one judging every contender would make. Most steps of a
 * masked prompt are such. A context holding a term (a stated identity) is left to the full
 * judgement at once, so this check never adds a round trip there.
 */
async function leaderIsFree(
  run: Run,
  prefix: readonly Token[],
  generated: string,
  leader: Candidate,
  argmaxOnly = false,
): Promise<boolean> {
  const { o, context } = run;
  if (!swapFree(run, generated)) return false;
  const [unit] = await judgedUnits(context.model, o.swaps, prefix, generated, [leader.token], {
    lookahead: o.lookahead,
    memo: run.memo,
    topK: argmaxOnly ? 1 : run.pool,
    argmaxOnly,
    signal: context.signal,
  });
  // A stop token is never judged (D = 0).
  if (
    unit !== undefined &&
    !swapsNothing(o.swaps, [context.prompt, generated.slice(0, unit.bodyEnd), unit.unit])
  )
    return false;
  run.skipped++;
  return true;
}

/**
 * Whether nothing in the prompt and `generated` can be swapped; kept for the last text asked, as
 * a step asks more than once (freeArgmax, then leaderIsFree) and σ reads the whole text.
 */
function swapFree(run: Run, generated: string): boolean {
  if (run.swapFreeAt?.generated !== generated)
    run.swapFreeAt = { generated, value: swapsNothing(run.o.swaps, [run.context.prompt, generated]) };
  return run.swapFreeAt.value;
}

/**
 * A step whose text swaps nothing, decided on the draft's argmax alone: its leader, which wins
 * when it is free (leaderIsFree: D = 0 for certain, so no other candidate can beat it), as it is
 * on most steps of a masked prompt. Reading the argmax costs a fraction of reading the whole
 * distribution (one number back instead of the vocabulary's entries, their Map and objects).
 * Undefined when the memo already holds the step's distribution (the full path costs nothing
 * then) or the leader is not free: the full path then reads the distribution again (the position
 * is evaluated once more). The argmax comes in a free run (freeRun.ts) with the next steps'.
 */
async function freeArgmax(
  run: Run,
  prefix: readonly Token[],
  generated: string,
): Promise<Candidate | undefined> {
  const { context } = run;
  const draft = context.model;
  if (run.memo.has(prefix, run.pool) || !swapFree(run, generated)) return undefined;
  if (run.freeRun && !run.memo.has(prefix, 1)) await readFreeRun(run, prefix);
  // The previous step's lookahead or free run may have read this argmax already.
  const [[top]] = await run.memo.next(draft, [prefix], 1, context.signal, true);
  if (top === undefined) return undefined;
  const leader = newCandidate(draft, prefix, top, 0);
  // Its word's lookahead reads argmaxes too: the next step, if free, needs no more.
  if (!(await leaderIsFree(run, prefix, generated, leader, true))) return undefined;
  run.argmaxSteps++;
  return leader;
}

/** Reads the argmaxes of a free run from `prefix` into the memo (freeRun.ts), as far as the decode may go. */
async function readFreeRun(run: Run, prefix: readonly Token[]): Promise<void> {
  const { context } = run;
  const length = Math.min(
    FREE_RUN,
    context.maxTokens - (prefix.length - context.promptTokens.length),
    context.model.contextSize - 1 - prefix.length,
  );
  if (length <= 1) return;
  await run.memo.rollAhead(context.model, prefix, length, {
    stopStrings: termStops(run.o.swaps),
    signal: context.signal,
  });
  run.freeRuns++;
}

/**
 * When the draft verifies itself, the step's verifier batch can also hold the draft's next step
 * after the leader (the candidate most likely chosen): if it is chosen, that step reads its
 * distribution from the memo instead of calling the model again. Undefined when the verifier is
 * another model, when sampling, or when the memo already holds it (the leader's word lookahead).
 */
function nextDraftRequest(run: Run, prefix: readonly Token[], leader: Candidate): ScoreRequest | undefined {
  const { context, o } = run;
  if (run.verifier !== context.model || o.sample || context.model.isStopToken(leader.token)) return undefined;
  const after = [...prefix, leader.token];
  if (after.length >= context.model.contextSize || run.memo.has(after, run.pool)) return undefined;
  return { prefix: after, continuation: [] };
}

/**
 * The next step's counterfactual contexts (after the leader), fetched with what this step asks of
 * the draft or verifier so the next step finds them in the memo (cheapFirst); none otherwise or
 * when the memo holds them.
 */
async function nextContexts(run: Run, generated: string, leader: Candidate): Promise<ScoreRequest[]> {
  if (!run.cheapFirst || run.context.model.isStopToken(leader.token)) return [];
  const contexts = await stepContexts(run, generated + leader.text, "");
  return contexts
    .filter((tokens) => !run.memo.has(tokens, run.verifier.vocabularySize))
    .map((tokens) => ({ prefix: tokens, continuation: [] }));
}

/**
 * What a self-verifying draft's verifier batch will most likely ask for that no lookahead gives:
 * the prefetches (the next step's draft distribution and contexts) and the step's counterfactual
 * contexts (the leader's text after them resolving a trailing ambiguous word). When the step looks
 * ahead, they ride along with the first lookahead call, and a verifier batch left with nothing
 * else to score is not sent. A context the judge then asks for otherwise is scored as before.
 */
async function contextsAhead(
  run: Run,
  generated: string,
  leader: Candidate,
  prefetch: readonly ScoreRequest[],
): Promise<Token[][]> {
  return [
    ...prefetch.map((request) => [...request.prefix]),
    ...(await stepContexts(run, generated, leader.text)),
  ];
}

/**
 * The verifier's counterfactual contexts of a step, σ of the prompt and the generated text for
 * every shift that changes them (`next`, the text that will follow, resolves a trailing ambiguous
 * word); none for a masked prompt.
 */
async function stepContexts(run: Run, generated: string, next: string): Promise<Token[][]> {
  const { o, context, view } = run;
  const contexts: Token[][] = [];
  for (const shift of shifts(o.swaps)) {
    const cf = counterfactual(o.swaps, [context.prompt, generated, next], shift);
    if (cf.changed && cf.segments[0] !== "") contexts.push(await view.tokens(cf.segments[0], cf.segments[1]));
  }
  return contexts.filter((tokens) => tokens.length < context.model.contextSize);
}

/** Adds λ · reward of the text each candidate would make (only with a reward and λ > 0). */
async function rewardCandidates(
  run: Run,
  tokens: readonly Token[],
  generated: string,
  candidates: Candidate[],
) {
  const { o, context } = run;
  if (o.reward && o.lambda > 0) {
    const rewards = await scoreAll(
      o.reward,
      candidates.map((c) => ({
        prompt: context.prompt,
        text: generated + c.text,
        tokens: [...tokens, c.token],
        finished: false,
      })),
    );
    candidates.forEach((c, i) => {
      c.reward = rewards[i];
    });
  }
}

/**
 * The draft's top-k (after vetoes), most likely first. When the draft is called, the step's
 * counterfactual `contexts` (cheapFirst) come in the same call, so the judge finds them in the memo.
 */
async function draftCandidates(
  run: Run,
  prefix: readonly Token[],
  contexts: readonly (readonly Token[])[],
): Promise<Candidate[]> {
  const { context, o, memo } = run;
  const draft = context.model;
  const along = memo.has(prefix, run.pool)
    ? []
    : contexts.filter((tokens) => !memo.has(tokens, run.verifier.vocabularySize));
  const [distribution] = await memo.next(draft, [prefix, ...along], run.pool, context.signal);
  const penalties = await vetoPenalties(
    o.vetoes,
    prefix,
    distribution.map((entry) => entry.token),
  );
  return distribution
    .map((entry, i) => ({ ...entry, penalty: penalties[i] }))
    .filter((entry) => Number.isFinite(entry.penalty))
    .slice(0, o.k)
    .map((entry) => newCandidate(draft, prefix, entry, entry.penalty));
}

/** A draft candidate not yet judged (D 0, no reward, no score). */
function newCandidate(
  draft: LanguageModel,
  prefix: readonly Token[],
  entry: { token: Token; logprob: number },
  penalty: number,
): Candidate {
  return {
    token: entry.token,
    logprob: entry.logprob,
    penalty,
    text: draft.detokenize([entry.token], { context: prefix.slice(-8) }),
    judged: false,
    divergence: 0,
    reward: 0,
    score: 0,
  };
}

/** score = log p_T(c) − α·D(c) + λ·reward − penalty, p_T the draft at temperature T over the candidates. */
function scoreCandidates(candidates: Candidate[], o: Resolved): void {
  const scaled = candidates.map((c) => c.logprob / o.temperature);
  const max = Math.max(...scaled);
  const norm = max + Math.log(scaled.reduce((a, s) => a + Math.exp(s - max), 0));
  candidates.forEach((c, i) => {
    c.score = scaled[i] - norm - o.alpha * c.divergence + o.lambda * c.reward - c.penalty;
  });
}

function choose(candidates: readonly Candidate[], o: Resolved, random: () => number): Candidate {
  if (!o.sample) return candidates.reduce((best, c) => (c.score > best.score ? c : best), candidates[0]);
  const sorted = [...candidates].sort((a, b) => b.score - a.score);
  const token = pickToken(
    sorted.map((c) => ({ token: c.token, logprob: c.score })),
    { temperature: 1 },
    random,
  );
  return sorted.find((c) => c.token === token) ?? sorted[0];
}

function traceStep(position: number, candidates: readonly Candidate[], chosen: Candidate): TraceStep {
  return {
    step: position,
    prefixLength: position,
    candidates: candidates.map((c) => ({
      token: c.token,
      text: c.text,
      logprob: c.logprob,
      rollout: c.unit,
      divergence: c.judged ? c.divergence : undefined,
      reward: c.reward,
      score: c.score,
      kept: c === chosen,
      vetoed: c.penalty > 0,
    })),
  };
}

function traceOptions(run: Run, draft: LanguageModel) {
  const { o, verifier } = run;
  return {
    k: o.k,
    alpha: o.alpha,
    divergence: o.divergence,
    byGroup: o.byGroup,
    baseline: o.baseline,
    aggregate: run.aggregate,
    temperature: o.temperature,
    sample: o.sample,
    seed: o.seed,
    lookahead: o.lookahead,
    shortcuts: o.shortcuts,
    swaps: o.swaps.name,
    constitution: o.constitution !== undefined,
    verifier: verifier === draft ? "self" : verifier.id,
  };
}
