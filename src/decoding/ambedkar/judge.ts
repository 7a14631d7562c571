/**
 * D(c) for every candidate of a step: the verifier on the real text against the verifier on each
 * counterfactual, σ applied to the context (prompt and generated text) and to the candidate:
 *   p_v(c | x, y)  vs  p_v(σ(c) | σ(x), σ(y)).
 * A stated identity is swapped with its pronouns, so a pronoun that agrees with it costs nothing;
 * with nothing to swap in the context (a masked prompt) the candidate is compared with its own
 * swap in the same context, so guessing an identity costs. All requests of a step go to the
 * verifier as one `scoreContinuations` batch, duplicates merged (with `settles`, unlikely pool
 * words may follow in a second one, when their bounds do not settle the step).
 *
 * With `byGroup`, the scalar divergences judge an identity word by its group (groupPool.ts): p is
 * the verifier's probability that the next word is any term of that group (after the same text),
 * q that of their counterparts. Which word names the stated identity ("she" or the name "Lucy")
 * depends on how common the counterfactual's name is, not on the identity: after "a girl named
 * Lucy" the verifier gives "she" 0.69 and "Lucy" 0.11, after "a boy named Timmy" "he" 0.18 and
 * "Timmy" 0.73, so "she" alone differs by 1.4 nats while the group differs by 0.02.
 */
import type {
  ModelWarning,
  NextTokenDistribution,
  ScoredContinuation,
  ScoreOptions,
  ScoreRequest,
  Token,
} from "../../lm/types.js";
import { baselineContext, beyondBaseline, type ContextPair, stepBaseline } from "./baseline.js";
import type { JudgedUnit } from "./candidateWords.js";
import { aggregate, bernoulliJs, distributionJs, logRatio, mixture, toSparse } from "./divergence.js";
import { type GroupSite, groupSite, groupTexts, siteKey } from "./groupPool.js";
import { DEFER_BELOW, type Range, scalarRange } from "./poolBounds.js";
import { readBack, readBackMap } from "./readBack.js";
import { counterfactual, isBareTerm, shifts, termGroup } from "./sigma.js";
import type { SwapMap } from "./swapMap.js";
import { tokenKey } from "./tokenKey.js";
import { logprobOf } from "./tokenLookup.js";
import type { VerifierView } from "./verifierView.js";

export type DivergenceKind = "js" | "token" | "logratio";

export interface JudgeOptions {
  /**
   * "js": next-token distributions after c and σ(c); "token": JS of the two probabilities of c and
   * σ(c); "logratio": |ln p − ln q| of those probabilities.
   */
  divergence: DivergenceKind;
  /** Judge an identity word by the verifier's probability of any term of its group (scalar kinds only). */
  byGroup?: boolean;
  aggregate: "mean" | "max";
  /** Size of each next-token distribution compared by "js" (the rest of the mass is one outcome). */
  nextK: number;
  signal?: AbortSignal;
  onWarning?: (warning: ModelWarning) => void;
  /**
   * Requests scored in the same batch for their next-token distribution only (scalar kinds): the
   * draft's next step when the draft verifies itself, so that step needs no call of its own.
   * Sent only when the step calls the verifier anyway. Defaults to none.
   */
  prefetch?: readonly ScoreRequest[];
  /** Entries of each prefetched distribution (what the draft's step reads). Defaults to the whole vocabulary. */
  prefetchTopK?: number;
  /**
   * The verifier's whole next-token distribution after `prefix` when it is already known (the
   * draft's memo when the draft verifies itself: the previous step prefetched it), so that context
   * is read there instead of being scored again. Defaults to none.
   */
  known?: (prefix: readonly Token[]) => NextTokenDistribution | undefined;
  /**
   * The verifier's logprob of one token after `prefix` when it is known (with `known`): also where
   * only part of the distribution is, e.g. the argmax a free run read, when the token is that
   * argmax. Defaults to reading it off `known`.
   */
  knownToken?: (prefix: readonly Token[], token: Token) => number | undefined;
  /**
   * "step": a scalar D counts only beyond how far the counterfactual context moves the verifier on
   * identity-free tokens (baseline.ts); "none": D as measured. Ignored by "js". Defaults to "none".
   */
  baseline?: "step" | "none";
  /** Fail with `UnknownReading` instead of calling the verifier (judgeKnown). Defaults to false. */
  knownOnly?: boolean;
  /**
   * Whether divergences known only within [lo, hi] (per unit) settle the step: the choice is the
   * same for every value in them. Given this, `known` and a scalar D without a step baseline:
   *   1. every text is first bounded by the known distributions alone (a text whose positions are
   *      not all known lies between 0 and the product of those known before the first unknown
   *      one); when these bounds settle the step, nothing is called;
   *   2. otherwise a pool word whose first token is below DEFER_BELOW after its context is not
   *      read at first (poolBounds.ts); it is read, in a second call, only when the bounds do not
   *      settle the step.
   * A settled judgement returns each D at its lower bound. Defaults to none (every text is read).
   */
  settles?: (lo: readonly number[], hi: readonly number[]) => boolean;
}

export interface Judgement {
  /** Aggregated D per candidate (0 where nothing differs between the real and counterfactual text). */
  divergences: number[];
  /** Distinct texts the verifier judged this step. */
  requests: number;
  /** The whole next-token distribution after each `prefetch` request, when the verifier was called. */
  prefetched?: NextTokenDistribution[];
  /** Texts (pool words mostly) left unread because their bounds settled the step (`settles`); D is then each lower bound. */
  bounded: number;
}

/** One comparison: the real request and the counterfactual variants (weighed together). */
interface Comparison {
  candidate: number;
  shift: number;
  /** Where the comparison is pooled with others naming the same group (byGroup), else undefined. */
  pool?: string;
  /** Whether the unit is a bare term ("Lucy", not "Lucy's"), whose texts belong in the pool's sums. */
  bare?: boolean;
  real: number;
  variants: number[];
  /** The context pair (real, counterfactual) whose step baseline applies (baseline=step). */
  context?: string;
}

export async function judge(
  view: VerifierView,
  map: SwapMap,
  prompt: string,
  generated: string,
  units: readonly (JudgedUnit | undefined)[],
  options: JudgeOptions,
): Promise<Judgement> {
  const keys = new Map<string, number>();
  const texts: [string, string, string][] = [];
  const indexOf = (p: string, body: string, unit: string) => {
    const key = `${p}\u0000${body}\u0000${unit}`;
    let index = keys.get(key);
    if (index === undefined) {
      index = texts.length;
      keys.set(key, index);
      texts.push([p, body, unit]);
    }
    return index;
  };
  const comparisons: Comparison[] = [];
  const perCandidate: number[][] = units.map(() => []);
  const sites = new Map<string, GroupSite>();
  const withBaseline = options.baseline === "step" && options.divergence !== "js";
  const contexts = new Map<string, ContextPair | undefined>();
  units.forEach((judged, candidate) => {
    if (!judged) return;
    const body = generated.slice(0, judged.bodyEnd);
    for (const shift of shifts(map)) {
      const cf = counterfactual(map, [prompt, body, judged.unit], shift);
      // Nothing to swap anywhere: the counterfactual is the real text, D = 0.
      if (!cf.changed) {
        perCandidate[candidate].push(0);
        continue;
      }
      const group = options.byGroup && options.divergence !== "js" ? termGroup(map, judged.unit) : undefined;
      let pool: string | undefined;
      if (group !== undefined) {
        const site = groupSite(judged.unit, shift, group, judged.bodyEnd);
        pool = siteKey(site);
        sites.set(pool, site);
      }
      comparisons.push({
        candidate,
        shift,
        pool,
        bare: pool !== undefined && isBareTerm(map, judged.unit),
        real: indexOf(prompt, body, judged.unit),
        variants: cf.tail.map((variant) => indexOf(cf.segments[0], cf.segments[1], variant)),
        context: withBaseline ? contextOf(contexts, map, prompt, generated, shift) : undefined,
      });
    }
  });
  const groups = new Map<string, { real: number[]; counterparts: number[] }>();
  if (sites.size > 0) {
    const found = await groupTexts(view, map, prompt, generated, [...sites.values()]);
    [...sites.keys()].forEach((key, i) => {
      groups.set(key, {
        real: found[i].real.map((text) => indexOf(...text)),
        counterparts: found[i].counterparts.map((text) => indexOf(...text)),
      });
    });
  }
  const pairKeys = [...contexts].flatMap(([key, pair]) => (pair ? [key] : []));
  const pairs = pairKeys.map((key) => contexts.get(key) as ContextPair);
  const baselineRequests = await Promise.all(
    pairs.flatMap((pair) => [pair.real, pair.counterfactual].map(async (c) => contextRequest(view, ...c))),
  );
  const callerPrefetch = options.prefetch ?? [];
  const bounding =
    options.settles && options.known && !withBaseline && options.divergence !== "js"
      ? {
          kind: options.divergence,
          settles: options.settles,
          knownToken: knownTokenOf(options) as KnownToken,
        }
      : undefined;
  const aggregated = (values: readonly number[][]) =>
    perCandidate.map((zeros, i) => aggregate([...zeros, ...values[i]], options.aggregate));
  // Each text's request, tokenized once for the bounds and the reads.
  const requests = await Promise.all(texts.map(([p, body, unit]) => view.request(p, body, unit)));
  if (bounding && texts.length > 0) {
    // Settled on what is known (the memo's distributions) before any call: no call at all.
    const early = knownBounds(requests, bounding.knownToken);
    if (early.unread.size > 0) {
      const bounds = divergenceBounds(
        bounding.kind,
        early.readings,
        early.unread,
        comparisons,
        groups,
        units.length,
      );
      const lo = aggregated(bounds.lo);
      if (bounding.settles(lo, aggregated(bounds.hi)))
        return {
          divergences: lo,
          requests: texts.length - early.unread.size,
          prefetched: undefined,
          bounded: early.unread.size,
        };
    }
  }
  const deferrable = bounding ? poolOnlyTexts(comparisons, groups) : undefined;
  const {
    readings,
    prefetched: allPrefetched,
    deferred,
  } = texts.length > 0
    ? await readAll(
        view,
        requests,
        {
          ...options,
          prefetch: [...callerPrefetch, ...baselineRequests],
          // The baseline compares whole distributions (as much of them as the verifier serves).
          prefetchTopK: baselineRequests.length > 0 ? undefined : options.prefetchTopK,
        },
        deferrable,
      )
    : { readings: [], prefetched: undefined, deferred: new Map<number, number>() };
  const prefetched = allPrefetched?.slice(0, callerPrefetch.length);
  const shiftOf = new Map(
    pairKeys.map((key, i) => [
      key,
      allPrefetched
        ? stepBaseline(
            view.verifier,
            map,
            pairs[i].body,
            allPrefetched[callerPrefetch.length + 2 * i],
            allPrefetched[callerPrefetch.length + 2 * i + 1],
          )
        : 0,
    ]),
  );
  const readBacks = new Map<number, Map<number, number>>();
  if (options.divergence === "js")
    for (const shift of new Set(comparisons.map((c) => c.shift)))
      readBacks.set(shift, await readBackMap(view.verifier, map, shift));
  if (deferred.size > 0 && options.divergence !== "js") {
    const bounds = divergenceBounds(
      options.divergence,
      readings,
      deferred,
      comparisons,
      groups,
      units.length,
    );
    const lo = aggregated(bounds.lo);
    if (options.settles?.(lo, aggregated(bounds.hi)))
      return { divergences: lo, requests: texts.length - deferred.size, prefetched, bounded: deferred.size };
    const late = [...deferred.keys()];
    const more = await readAll(
      view,
      late.map((i) => requests[i]),
      { ...options, prefetch: [] },
    );
    late.forEach((text, j) => {
      readings[text] = more.readings[j];
    });
  }
  const pooled = groupProbabilities(readings, comparisons, groups);
  for (const c of comparisons) {
    const pool = c.pool === undefined ? undefined : pooled.get(c.pool);
    const shift = c.context === undefined ? 0 : (shiftOf.get(c.context) ?? 0);
    perCandidate[c.candidate].push(
      pool
        ? scalar(options.divergence, pool.p, pool.q, shift)
        : compare(readings, c, options.divergence, readBacks.get(c.shift), shift),
    );
  }
  return {
    divergences: perCandidate.map((values) => aggregate(values, options.aggregate)),
    requests: texts.length,
    prefetched,
    bounded: 0,
  };
}

/** What the verifier said about one (prompt, body, unit): the unit's logprob and what follows it. */
interface Reading {
  logprob: number;
  next?: NextTokenDistribution;
}

/**
 * Scores every text's request in one `scoreContinuations` batch, but those `deferrable` leaves unread
 * (returned as `deferred`, read as −∞ meanwhile). For the token-level D a unit that is one
 * verifier token after its context is read off that context's next-token distribution (one
 * position for all the candidates sharing the context) when the verifier returns whole
 * distributions; everything else is a request of its own.
 */
async function readAll(
  view: VerifierView,
  resolved: readonly ScoreRequest[],
  options: JudgeOptions,
  deferrable?: ReadonlySet<number>,
): Promise<{ readings: Reading[]; prefetched?: NextTokenDistribution[]; deferred: Map<number, number> }> {
  const { verifier } = view;
  const deferred = deferrable
    ? deferredTexts(resolved, deferrable, options.known)
    : new Map<number, number>();
  const shareContexts =
    options.divergence !== "js" && verifier.capabilities.maxTopK >= verifier.vocabularySize;
  const planned: ScoreRequest[] = [];
  const plannedIndex = new Map<string, number>();
  const plan = (request: ScoreRequest) => {
    const key = `${request.prefix.length}:${tokenKey(request.prefix)}${tokenKey(request.continuation)}`;
    let index = plannedIndex.get(key);
    if (index === undefined) {
      index = planned.length;
      plannedIndex.set(key, index);
      planned.push(request);
    }
    return index;
  };
  // The scalar kinds read `next` only of a shared context (or a prefetch), never after a scored
  // unit: the backend may skip that distribution.
  const wantsNext = options.divergence === "js";
  // A longer unit's first token is read off its context's distribution too, when that context is
  // read anyway (for a one-token unit, or known): the unit's request then starts one token later
  // and reads one position fewer.
  const contextKeys = resolved.map((request) => (shareContexts ? tokenKey(request.prefix) : ""));
  const contexts = new Set(contextKeys.filter((_, i) => resolved[i].continuation.length === 1));
  const headRead = (request: ScoreRequest, i: number) =>
    shareContexts &&
    request.continuation.length > 1 &&
    (contexts.has(contextKeys[i]) || options.known?.(request.prefix) !== undefined);
  const sources: (Source | undefined)[] = resolved.map((request, i) => {
    if (deferred.has(i)) return undefined;
    const [head, ...rest] = request.continuation;
    if (shareContexts && request.continuation.length === 1)
      return { index: plan({ prefix: request.prefix, continuation: [] }), token: head };
    if (!headRead(request, i)) return { index: plan({ ...request, wantsNext }) };
    return {
      index: plan({ prefix: [...request.prefix, head], continuation: rest, wantsNext }),
      head: { index: plan({ prefix: request.prefix, continuation: [] }), token: head },
    };
  });
  const shared = sources.some((source) => source?.token !== undefined || source?.head !== undefined);
  // Prefetched distributions ride along only with the scalar kinds (whose readings never use `next`
  // of a scored unit, so asking for it changes none of them).
  const prefetch = options.divergence === "js" ? [] : (options.prefetch ?? []).map(plan);
  const scored = await scoreUnknown(
    verifier,
    planned,
    options,
    {
      nextTopK:
        options.divergence === "js"
          ? options.nextK
          : shared
            ? verifier.vocabularySize
            : prefetch.length > 0
              ? Math.min(options.prefetchTopK ?? verifier.vocabularySize, verifier.capabilities.maxTopK)
              : 0,
      signal: options.signal,
      onWarning: options.onWarning,
    },
    options.knownOnly,
  );
  const prefetched = prefetch.length > 0 ? prefetch.map((index) => scored[index].next ?? []) : undefined;
  const read = (index: number, token: Token) => logprobOf(scored[index].next ?? [], token);
  const readings = sources.map((source): Reading => {
    // A deferred text's lower bound (its upper one is in `deferred`).
    if (source === undefined) return { logprob: Number.NEGATIVE_INFINITY };
    const { index, token, head } = source;
    if (token !== undefined) return { logprob: read(index, token) };
    if (head === undefined) return { logprob: scored[index].logprob, next: scored[index].next };
    // Summed in the order the backend sums a continuation's logprobs.
    const logprobs = [read(head.index, head.token), ...scored[index].logprobs];
    return { logprob: logprobs.reduce((a, b) => a + b, 0) };
  });
  return { readings, prefetched, deferred };
}

/**
 * The texts of `deferrable` left unread at first, each with the log-probability of its first
 * token after its context (an upper bound on its own): several tokens long, context known, first
 * token below DEFER_BELOW.
 */
function deferredTexts(
  resolved: readonly ScoreRequest[],
  deferrable: ReadonlySet<number>,
  known: JudgeOptions["known"],
): Map<number, number> {
  const deferred = new Map<number, number>();
  resolved.forEach((request, i) => {
    if (!deferrable.has(i) || request.continuation.length < 2) return;
    const context = known?.(request.prefix);
    const bound = context ? logprobOf(context, request.continuation[0]) : 0;
    if (bound < Math.log(DEFER_BELOW)) deferred.set(i, bound);
  });
  return deferred;
}

/**
 * What the known distributions alone say of each text: its logprob where every position it reads
 * is known, else −∞ as its lower bound and, in `unread`, the summed logprobs of the positions
 * known before the first unknown one as its upper bound (0 when even its context is unknown).
 */
function knownBounds(
  resolved: readonly ScoreRequest[],
  known: KnownToken,
): { readings: Reading[]; unread: Map<number, number> } {
  const unread = new Map<number, number>();
  const readings = resolved.map((request, i): Reading => {
    const logprobs = knownLeading(request, known);
    const logprob = logprobs.reduce((a, b) => a + b, 0);
    if (logprobs.length === request.continuation.length) return { logprob };
    unread.set(i, logprob);
    return { logprob: Number.NEGATIVE_INFINITY };
  });
  return { readings, unread };
}

/** The logprobs of a request's continuation tokens that are known, up to the first that is not. */
function knownLeading({ prefix, continuation }: ScoreRequest, known: KnownToken): number[] {
  const logprobs: number[] = [];
  for (let j = 0; j < continuation.length; j++) {
    const read = known(j === 0 ? prefix : [...prefix, ...continuation.slice(0, j)], continuation[j]);
    if (read === undefined) break;
    logprobs.push(read);
  }
  return logprobs;
}

/** A token's known logprob after a prefix (JudgeOptions' `knownToken`), undefined when not known. */
type KnownToken = (prefix: readonly Token[], token: Token) => number | undefined;

/** `knownToken`, or a reading off `known`'s distributions. */
function knownTokenOf(options: Pick<JudgeOptions, "known" | "knownToken">): KnownToken | undefined {
  const { known, knownToken } = options;
  if (knownToken) return knownToken;
  if (!known) return undefined;
  return (prefix, token) => {
    const before = known(prefix);
    return before ? logprobOf(before, token) : undefined;
  };
}

/** Where a text's reading comes from: a scored request, a token of a context's distribution, or both. */
interface Source {
  index: number;
  /** The unit is this one token of request `index`'s next-token distribution. */
  token?: Token;
  /** The unit's first token, read off a context's distribution; request `index` scores the rest. */
  head?: { index: number; token: Token };
}

/** The first `k` entries of a distribution: the distribution itself (not a copy) when it has no more. */
function firstEntries(distribution: NextTokenDistribution, k: number): NextTokenDistribution {
  return distribution.length <= k ? distribution : distribution.slice(0, k);
}

/** Thrown inside `judgeKnown` when a reading is not known (the verifier would have to be called). */
class UnknownReading extends Error {}

/**
 * `judge` answered from `options.known` alone: undefined when any reading would need a verifier
 * call. Units that name no term (no group texts) of contexts already computed cost nothing.
 */
export async function judgeKnown(
  view: VerifierView,
  map: SwapMap,
  prompt: string,
  generated: string,
  units: readonly (JudgedUnit | undefined)[],
  options: JudgeOptions,
): Promise<Judgement | undefined> {
  if (!options.known) return undefined;
  try {
    return await judge(view, map, prompt, generated, units, { ...options, prefetch: [], knownOnly: true });
  } catch (error) {
    if (error instanceof UnknownReading) return undefined;
    throw error;
  }
}

/**
 * `scoreContinuations` of the requests whose answer is not `known` already (a bare context whose
 * whole next-token distribution was computed before); the known ones are answered from it.
 */
async function scoreUnknown(
  verifier: VerifierView["verifier"],
  requests: readonly ScoreRequest[],
  knowing: Pick<JudgeOptions, "known" | "knownToken">,
  options: ScoreOptions,
  knownOnly = false,
): Promise<ScoredContinuation[]> {
  const { known } = knowing;
  const knownToken = knownTokenOf(knowing);
  const answers = requests.map((request) =>
    known && knownToken ? fromKnown(request, known, knownToken, options.nextTopK ?? 0) : undefined,
  );
  const asked = requests.filter((_, i) => answers[i] === undefined);
  if (knownOnly && asked.length > 0) throw new UnknownReading();
  const scored = asked.length > 0 ? await verifier.scoreContinuations(asked, options) : [];
  let next = 0;
  return answers.map((answer) => answer ?? scored[next++]);
}

/**
 * A request answered from known distributions: every position it reads (and the one after it,
 * when its `next` is asked for) is known, e.g. a word the draft's lookahead completed. Undefined
 * when one is not.
 */
function fromKnown(
  request: ScoreRequest,
  known: NonNullable<JudgeOptions["known"]>,
  knownToken: KnownToken,
  nextTopK: number,
): ScoredContinuation | undefined {
  const { prefix, continuation } = request;
  const logprobs = knownLeading(request, knownToken);
  if (logprobs.length < continuation.length) return undefined;
  const scored: ScoredContinuation = { logprobs, logprob: logprobs.reduce((a, b) => a + b, 0) };
  // A bare context is asked for its distribution alone.
  if (continuation.length === 0 || (nextTopK > 0 && request.wantsNext !== false)) {
    const after = known(continuation.length === 0 ? prefix : [...prefix, ...continuation]);
    if (!after) return undefined;
    scored.next = firstEntries(after, nextTopK);
  }
  return scored;
}

/** p and q of a comparison: the real unit's probability and the summed probabilities of its counterparts. */
function probabilities(readings: readonly Reading[], c: Comparison): { p: number; q: number } {
  const q = c.variants.reduce((a, v) => a + Math.exp(readings[v].logprob), 0);
  return { p: Math.exp(readings[c.real].logprob), q };
}

/**
 * Per pool: p, the summed probabilities of the group's terms in the real text, and q, those of
 * their counterparts in the counterfactual (each distinct text once). A judged bare term is in
 * it even where the pool's rule (groupPool.ts) leaves it out, so a word is never judged on a pool
 * without it; a suffixed one ("Lucy's") is not added, as "Lucy" counts it where the text uses it.
 */
function groupProbabilities(
  readings: readonly Reading[],
  comparisons: readonly Comparison[],
  groups: ReadonlyMap<string, { real: readonly number[]; counterparts: readonly number[] }>,
): Map<string, { p: number; q: number }> {
  const sets = new Map<string, { real: Set<number>; counterparts: Set<number> }>();
  for (const c of comparisons) {
    if (c.pool === undefined) continue;
    let set = sets.get(c.pool);
    if (!set) {
      const group = groups.get(c.pool);
      set = { real: new Set(group?.real), counterparts: new Set(group?.counterparts) };
      sets.set(c.pool, set);
    }
    if (!c.bare) continue;
    set.real.add(c.real);
    for (const v of c.variants) set.counterparts.add(v);
  }
  const sum = (indices: Set<number>) => [...indices].reduce((a, i) => a + Math.exp(readings[i].logprob), 0);
  return new Map([...sets].map(([key, set]) => [key, { p: sum(set.real), q: sum(set.counterparts) }]));
}

/** The scalar D of (p, q), counting only the log-ratio beyond the step baseline `shift` (0: none). */
function scalar(kind: DivergenceKind, p: number, q: number, shift = 0): number {
  const beyond = beyondBaseline(p, q, shift);
  return kind === "logratio" ? logRatio(beyond.p, beyond.q) : bernoulliJs(beyond.p, beyond.q);
}

/**
 * The key of the step's context pair for counterfactual `shift` (registered on first sight), or
 * undefined when the swap leaves that context as it is (then B = 0).
 */
function contextOf(
  contexts: Map<string, ContextPair | undefined>,
  map: SwapMap,
  prompt: string,
  generated: string,
  shift: number,
): string | undefined {
  const key = String(shift);
  if (!contexts.has(key)) contexts.set(key, baselineContext(map, prompt, generated, shift));
  return contexts.get(key) ? key : undefined;
}

/** The request for the verifier's next-token distribution after (prompt, body). */
async function contextRequest(view: VerifierView, prompt: string, body: string): Promise<ScoreRequest> {
  return { prefix: await view.tokens(prompt, body), continuation: [] };
}

function compare(
  readings: readonly Reading[],
  c: Comparison,
  kind: DivergenceKind,
  readBackMapping: ReadonlyMap<number, number> = new Map(),
  shift = 0,
): number {
  // An ambiguous counterpart (her → his / him) stands for the union of its readings.
  if (kind !== "js") {
    const { p, q } = probabilities(readings, c);
    return scalar(kind, p, q, shift);
  }
  const real = readings[c.real];
  const variants = c.variants.map((v) => readings[v]);
  const weights = variants.map((v) => Math.exp(v.logprob));
  const counterfactualNext = mixture(
    variants.map((v) => toSparse(v.next ?? [])),
    weights,
  );
  return distributionJs(toSparse(real.next ?? []), readBack(counterfactualNext, readBackMapping));
}

/** The pools' texts that are no comparison's own (the group words read for the pool's sums only). */
function poolOnlyTexts(
  comparisons: readonly Comparison[],
  groups: ReadonlyMap<string, { real: readonly number[]; counterparts: readonly number[] }>,
): Set<number> {
  const own = new Set(comparisons.flatMap((c) => [c.real, ...c.variants]));
  return new Set(
    [...groups.values()].flatMap((g) => [...g.real, ...g.counterparts]).filter((t) => !own.has(t)),
  );
}

/**
 * Each comparison's D over every value the unread (`deferred`) texts may take: a text's
 * probability from 0 up to its bound (the first token's probability for a deferred pool word, the
 * product of the known leading positions in `knownBounds`), per candidate in comparison order. A
 * comparison that reads no unread text is exact; one off the pools that does gets scalarRange of
 * its own p and q.
 */
function divergenceBounds(
  kind: "token" | "logratio",
  readings: readonly Reading[],
  deferred: ReadonlyMap<number, number>,
  comparisons: readonly Comparison[],
  groups: ReadonlyMap<string, { real: readonly number[]; counterparts: readonly number[] }>,
  candidates: number,
): { lo: number[][]; hi: number[][] } {
  const upper = readings.map((reading, i) => {
    const bound = deferred.get(i);
    return bound === undefined ? reading : { logprob: bound };
  });
  const low = groupProbabilities(readings, comparisons, groups);
  const high = groupProbabilities(upper, comparisons, groups);
  const lo: number[][] = Array.from({ length: candidates }, () => []);
  const hi: number[][] = Array.from({ length: candidates }, () => []);
  for (const c of comparisons) {
    let range: Range;
    if (c.pool !== undefined)
      range = scalarRange(
        kind,
        [low.get(c.pool)?.p ?? 0, high.get(c.pool)?.p ?? 0],
        [low.get(c.pool)?.q ?? 0, high.get(c.pool)?.q ?? 0],
      );
    else if ([c.real, ...c.variants].some((text) => deferred.has(text))) {
      const [pLow, pHigh] = [probabilities(readings, c), probabilities(upper, c)];
      range = scalarRange(kind, [pLow.p, pHigh.p], [pLow.q, pHigh.q]);
    } else {
      const exact = compare(readings, c, kind);
      range = [exact, exact];
    }
    const [l, h] = range;
    lo[c.candidate].push(l);
    hi[c.candidate].push(h);
  }
  return { lo, hi };
}
