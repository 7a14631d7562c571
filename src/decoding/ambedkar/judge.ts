/**
 * D(c) for every candidate of a step: the verifier on the real text against the verifier on each
 * counterfactual, σ applied to the context (prompt and generated text) and to the candidate:
 *   p_v(c | x, y)  vs  p_v(σ(c) | σ(x), σ(y)).
 * A stated identity is swapped with its pronouns, so a pronoun that agrees with it costs nothing;
 * with nothing to swap in the context (a masked prompt) the candidate is compared with its own
 * swap in the same context, so guessing an identity costs. All requests of a step go to the
 * verifier as one `scoreContinuations` batch, duplicates merged.
 */
import type {
  ModelWarning,
  NextTokenDistribution,
  ScoredContinuation,
  ScoreRequest,
} from "../../lm/types.js";
import type { JudgedUnit } from "./candidateWords.js";
import { aggregate, bernoulliJs, distributionJs, mixture, toSparse } from "./divergence.js";
import { readBack, readBackMap } from "./readBack.js";
import { counterfactual, shifts } from "./sigma.js";
import type { SwapMap } from "./swapMap.js";
import type { VerifierView } from "./verifierView.js";

export type DivergenceKind = "js" | "token";

export interface JudgeOptions {
  /** "js": next-token distributions after c and σ(c); "token": the two probabilities of c and σ(c). */
  divergence: DivergenceKind;
  aggregate: "mean" | "max";
  /** Size of each next-token distribution compared by "js" (the rest of the mass is one outcome). */
  nextK: number;
  signal?: AbortSignal;
  onWarning?: (warning: ModelWarning) => void;
}

export interface Judgement {
  /** Aggregated D per candidate (0 where nothing differs between the real and counterfactual text). */
  divergences: number[];
  /** Distinct texts the verifier judged this step. */
  requests: number;
}

/** One comparison: the real request and the counterfactual variants (weighed together). */
interface Comparison {
  candidate: number;
  shift: number;
  real: number;
  variants: number[];
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
      comparisons.push({
        candidate,
        shift,
        real: indexOf(prompt, body, judged.unit),
        variants: cf.tail.map((variant) => indexOf(cf.segments[0], cf.segments[1], variant)),
      });
    }
  });
  const readings = texts.length > 0 ? await readAll(view, texts, options) : [];
  const readBacks = new Map<number, Map<number, number>>();
  if (options.divergence === "js")
    for (const shift of new Set(comparisons.map((c) => c.shift)))
      readBacks.set(shift, await readBackMap(view.verifier, map, shift));
  for (const c of comparisons)
    perCandidate[c.candidate].push(compare(readings, c, options.divergence, readBacks.get(c.shift)));
  return {
    divergences: perCandidate.map((values) => aggregate(values, options.aggregate)),
    requests: texts.length,
  };
}

/** What the verifier said about one (prompt, body, unit): the unit's logprob and what follows it. */
interface Reading {
  logprob: number;
  next?: NextTokenDistribution;
}

/**
 * Scores every text in one `scoreContinuations` batch. For the token-level D a unit that is one
 * verifier token after its context is read off that context's next-token distribution (one
 * position for all the candidates sharing the context) when the verifier returns whole
 * distributions; everything else is a request of its own.
 */
async function readAll(
  view: VerifierView,
  texts: readonly [string, string, string][],
  options: JudgeOptions,
): Promise<Reading[]> {
  const { verifier } = view;
  const resolved = await Promise.all(texts.map(([p, body, unit]) => view.request(p, body, unit)));
  const shareContexts =
    options.divergence === "token" && verifier.capabilities.maxTopK >= verifier.vocabularySize;
  const planned: ScoreRequest[] = [];
  const plannedIndex = new Map<string, number>();
  const plan = (request: ScoreRequest) => {
    const key = `${request.prefix.join(",")}|${request.continuation.join(",")}`;
    let index = plannedIndex.get(key);
    if (index === undefined) {
      index = planned.length;
      plannedIndex.set(key, index);
      planned.push(request);
    }
    return index;
  };
  const sources = resolved.map((request) =>
    shareContexts && request.continuation.length === 1
      ? { index: plan({ prefix: request.prefix, continuation: [] }), token: request.continuation[0] }
      : { index: plan(request), token: undefined },
  );
  const shared = sources.some((source) => source.token !== undefined);
  const scored: ScoredContinuation[] = await verifier.scoreContinuations(planned, {
    nextTopK: options.divergence === "js" ? options.nextK : shared ? verifier.vocabularySize : 0,
    signal: options.signal,
    onWarning: options.onWarning,
  });
  const maps = new Map<number, Map<number, number>>();
  return sources.map(({ index, token }) => {
    if (token === undefined) return { logprob: scored[index].logprob, next: scored[index].next };
    let map = maps.get(index);
    if (!map) {
      map = new Map((scored[index].next ?? []).map((entry) => [entry.token, entry.logprob]));
      maps.set(index, map);
    }
    return { logprob: map.get(token) ?? Number.NEGATIVE_INFINITY };
  });
}

function compare(
  readings: readonly Reading[],
  c: Comparison,
  kind: DivergenceKind,
  readBackMapping: ReadonlyMap<number, number> = new Map(),
): number {
  const real = readings[c.real];
  const variants = c.variants.map((v) => readings[v]);
  // An ambiguous counterpart (her → his / him) stands for the union of its readings.
  const weights = variants.map((v) => Math.exp(v.logprob));
  if (kind === "token")
    return bernoulliJs(
      Math.exp(real.logprob),
      weights.reduce((a, b) => a + b, 0),
    );
  const counterfactualNext = mixture(
    variants.map((v) => toSparse(v.next ?? [])),
    weights,
  );
  return distributionJs(toSparse(real.next ?? []), readBack(counterfactualNext, readBackMapping));
}
