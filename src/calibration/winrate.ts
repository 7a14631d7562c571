/**
 * Win-rate estimators (PAPERS.md §2), all on raw reward scores of policy and reference samples
 * for one prompt. Win rates are invariant under calibration (C is a monotone map of r for a fixed
 * prompt), so calibrated and raw rewards give the same numbers; ties count ½ throughout.
 *
 * Every estimator is exact for the empirical distributions and unbiased where it can be: the
 * CDF of the max of N draws, F(v)^N, is estimated by the U-statistic C(#≤v, N) / C(n, N) when N
 * does not exceed the n samples available (draws without replacement), else by (#≤v / n)^N.
 */
import { seededRandom } from "../lm/sampling.js";
import { TimeSlice, throwIfAborted } from "../util/cooperative.js";

/** An estimate with a confidence interval. */
export interface Interval {
  estimate: number;
  lo: number;
  hi: number;
}

/** Unbiased estimate of P(max of `draws` samples ≤ v) given `countLE` of `total` samples are ≤ v. */
function maxCdf(countLE: number, total: number, draws: number): number {
  if (draws <= total) {
    if (countLE < draws) return 0;
    let p = 1;
    for (let j = 0; j < draws; j++) p *= (countLE - j) / (total - j);
    return p;
  }
  return (countLE / total) ** draws;
}

/**
 * P(max of `np` policy draws > max of `nq` reference draws) + ½·P(equal), from the samples.
 * `np = nq = 1`: the standard win rate. `np = N, nq = 1`: Best-of-N of the policy against one
 * reference sample (N/(N+1) when the policy is the reference). `np = nq = N`: the paper's
 * Best-of-N win rate.
 */
export function maxWinRate(
  policy: readonly number[],
  reference: readonly number[],
  np: number,
  nq: number,
): number {
  const p = [...policy].sort((a, b) => a - b);
  const q = [...reference].sort((a, b) => a - b);
  const values = [...new Set([...p, ...q])].sort((a, b) => a - b);
  let win = 0;
  let pi = 0;
  let qi = 0;
  for (const v of values) {
    const pBelow = pi;
    const qBelow = qi;
    while (pi < p.length && p[pi] <= v) pi++;
    while (qi < q.length && q[qi] <= v) qi++;
    const qEq = maxCdf(qi, q.length, nq) - maxCdf(qBelow, q.length, nq);
    if (qEq === 0) continue;
    const pLE = maxCdf(pi, p.length, np);
    const pLT = maxCdf(pBelow, p.length, np);
    win += qEq * (1 - pLE + 0.5 * (pLE - pLT));
  }
  return win;
}

/** The paper's worst-of-N win rate: P(min of N policy draws > min of N reference draws) + ½·P(equal). */
export function minWinRate(policy: readonly number[], reference: readonly number[], n: number): number {
  return (
    1 -
    maxWinRate(
      policy.map((v) => -v),
      reference.map((v) => -v),
      n,
      n,
    )
  );
}

/** Best-of-N of the calibrated reward against the reference: N/(N+1). */
export function analyticBoNWinRate(n: number): number {
  return n / (n + 1);
}

/** The Best-of-N KL bound in the calibrated setting: KL(BoN ‖ ref) ≤ log N − (N−1)/N. */
export function analyticBoNKL(n: number): number {
  return Math.log(n) - (n - 1) / n;
}

/**
 * log of π_BoN(y) / π_ref(y) for an output with reward `score`, when Best-of-N (or worst-of-N)
 * samples its N candidates from the reference itself: (F(≤s)^N − F(<s)^N) / (F(≤s) − F(<s)), with
 * F the reference's reward CDF (ties share the probability evenly). Worst-of-N uses 1 − F. A score
 * the reference samples never hit uses the continuous limit N·F^(N−1), F floored at 1/(2m).
 */
export function bonLogRatio(
  sortedReference: readonly number[],
  score: number,
  n: number,
  pick: "best" | "worst" = "best",
): number {
  const m = sortedReference.length;
  let below = 0;
  while (below < m && sortedReference[below] < score) below++;
  let notAbove = below;
  while (notAbove < m && sortedReference[notAbove] <= score) notAbove++;
  let lt = below / m;
  let le = notAbove / m;
  if (pick === "worst") [lt, le] = [1 - le, 1 - lt];
  if (le - lt > 0) return Math.log((le ** n - lt ** n) / (le - lt));
  const f = Math.min(1 - 1 / (2 * m), Math.max(lt, 1 / (2 * m)));
  return Math.log(n) + (n - 1) * Math.log(f);
}

/** One prompt's samples: reward scores of the policy's outputs and of the reference's. */
export interface PromptScores {
  policy: readonly number[];
  reference: readonly number[];
}

export interface BootstrapOptions {
  resamples?: number;
  /** Two-sided level, default 0.95. */
  level?: number;
  seed?: number;
}

export interface AsyncBootstrapOptions extends BootstrapOptions {
  /** Checked between resamples; the bootstrap rejects with the abort error once it fires. */
  signal?: AbortSignal;
}

/**
 * Mean over prompts of `statistic(policy, reference)`, with a percentile-bootstrap interval
 * that resamples at two levels: prompts (with replacement), then within each drawn prompt its
 * policy and its reference samples (with replacement) — so both the prompt-to-prompt spread
 * and the finite samples per prompt are in the interval. Seeded: the same data give the same
 * interval.
 */
export function bootstrapMean(
  prompts: readonly PromptScores[],
  statistic: (policy: readonly number[], reference: readonly number[]) => number,
  options: BootstrapOptions = {},
): Interval {
  const steps = bootstrapSteps(prompts, statistic, options);
  let step = steps.next();
  while (!step.done) step = steps.next();
  return step.value;
}

/**
 * {@link bootstrapMean} that gives way to the event loop every few milliseconds (so a signal
 * handler runs) and stops when `signal` fires. Same numbers as the synchronous form.
 */
export async function bootstrapMeanAsync(
  prompts: readonly PromptScores[],
  statistic: (policy: readonly number[], reference: readonly number[]) => number,
  options: AsyncBootstrapOptions = {},
): Promise<Interval> {
  const slice = new TimeSlice(options.signal);
  const steps = bootstrapSteps(prompts, statistic, options);
  let step = steps.next();
  while (!step.done) {
    if (slice.due) await slice.yield();
    step = steps.next();
  }
  throwIfAborted(options.signal);
  return step.value;
}

/** The bootstrap as a generator: one `yield` per resample, the interval as its return value. */
function* bootstrapSteps(
  prompts: readonly PromptScores[],
  statistic: (policy: readonly number[], reference: readonly number[]) => number,
  options: BootstrapOptions,
): Generator<void, Interval> {
  const resamples = options.resamples ?? 1000;
  const level = options.level ?? 0.95;
  const random = seededRandom(options.seed ?? 12345);
  const estimate = mean(prompts.map((p) => statistic(p.policy, p.reference)));
  const draw = <T>(list: readonly T[]): T[] => list.map(() => list[Math.floor(random() * list.length)]);
  const stats: number[] = [];
  for (let b = 0; b < resamples; b++) {
    const chosen = draw(prompts);
    stats.push(mean(chosen.map((p) => statistic(draw(p.policy), draw(p.reference)))));
    yield;
  }
  stats.sort((a, b) => a - b);
  const alpha = (1 - level) / 2;
  return {
    estimate,
    lo: quantile(stats, alpha),
    hi: quantile(stats, 1 - alpha),
  };
}

/** Wilson score interval for a proportion `successes / n` (ties may count ½). */
export function wilson(successes: number, n: number, z = 1.959964): Interval {
  if (n === 0) return { estimate: Number.NaN, lo: 0, hi: 1 };
  const p = successes / n;
  const denominator = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / denominator;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / denominator;
  return { estimate: p, lo: Math.max(0, centre - half), hi: Math.min(1, centre + half) };
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const position = q * (sorted.length - 1);
  const low = Math.floor(position);
  const high = Math.ceil(position);
  return sorted[low] + (sorted[high] - sorted[low]) * (position - low);
}

/**
 * Kolmogorov–Smirnov distance between the empirical distribution of `values` and U[0, 1]:
 * sup_u |F̂(u) − u|.
 */
export function ksUniform(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  let d = 0;
  for (let i = 0; i < n; i++) {
    const u = Math.min(1, Math.max(0, sorted[i]));
    d = Math.max(d, (i + 1) / n - u, u - i / n);
  }
  return d;
}
