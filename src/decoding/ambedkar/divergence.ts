/**
 * The divergences D(c) that AMBEDKAR charges a candidate with: Jensen–Shannon (natural log, so
 * 0 ≤ D ≤ ln 2; symmetric, bounded, defined where one side gives a token no mass), or the
 * absolute log-ratio of the two probabilities (nats, the scale of the draft's log-probabilities).
 */
import type { NextTokenDistribution } from "../../lm/types.js";

/** x · ln x, with 0 · ln 0 = 0. */
function xlogx(x: number): number {
  return x > 0 ? x * Math.log(x) : 0;
}

/** Clamps a probability into [0, 1] (float noise can leave a sum a hair above 1). */
function clamp(p: number): number {
  return Math.min(1, Math.max(0, p));
}

/**
 * Token-level D: JS between Bernoulli(p) and Bernoulli(q), the probabilities the verifier gives
 * the candidate in the real context and its counterpart in the counterfactual one.
 */
export function bernoulliJs(p: number, q: number): number {
  p = clamp(p);
  q = clamp(q);
  return Math.max(0, term(p, q) + term(1 - p, 1 - q));
}

/** Probability floor of the log-ratio (a side with no mass counts as this much). */
export const LOG_RATIO_FLOOR = 1e-6;

/**
 * |ln p − ln q|, each side floored at LOG_RATIO_FLOOR: the ε of ε-counterfactual fairness, in
 * nats like the draft's log-probability it is weighed against. Unlike the Bernoulli JS it does
 * not vanish for improbable tokens or for close probabilities (JS ≈ (p − q)² / 8p(1 − p)).
 */
export function logRatio(p: number, q: number): number {
  return Math.abs(Math.log(Math.max(p, LOG_RATIO_FLOOR)) - Math.log(Math.max(q, LOG_RATIO_FLOOR)));
}

/** The largest D a divergence kind can give (what branch and bound may rely on). */
export function divergenceBound(kind: "js" | "token" | "logratio"): number {
  return kind === "logratio" ? -Math.log(LOG_RATIO_FLOOR) : Math.LN2;
}

/** A sparse distribution: token → probability (need not sum to 1: the rest is "other"). */
export type SparseDistribution = Map<number, number>;

export function toSparse(distribution: NextTokenDistribution): SparseDistribution {
  const sparse: SparseDistribution = new Map();
  for (const { token, logprob } of distribution) sparse.set(token, Math.exp(logprob));
  return sparse;
}

/** Σ wᵢ · dᵢ / Σ wᵢ: the distribution after an ambiguous counterpart, weighted by how likely each reading is. */
export function mixture(
  distributions: readonly SparseDistribution[],
  weights: readonly number[],
): SparseDistribution {
  const total = weights.reduce((a, b) => a + b, 0);
  const w = total > 0 ? weights.map((x) => x / total) : weights.map(() => 1 / weights.length);
  const out: SparseDistribution = new Map();
  distributions.forEach((d, i) => {
    for (const [token, p] of d) out.set(token, (out.get(token) ?? 0) + w[i] * p);
  });
  return out;
}

/**
 * Distribution-level D: JS between two next-token distributions. Each may be a top-k truncation;
 * the mass outside it is one "other" outcome on each side, so the value is a lower bound of the
 * JS of the full distributions (exact when both hold the whole vocabulary).
 */
export function distributionJs(p: SparseDistribution, q: SparseDistribution): number {
  let sum = 0;
  let restP = 1;
  let restQ = 1;
  const tokens = new Set([...p.keys(), ...q.keys()]);
  for (const token of tokens) {
    const a = p.get(token) ?? 0;
    const b = q.get(token) ?? 0;
    restP -= a;
    restQ -= b;
    sum += term(a, b);
  }
  sum += term(clamp(restP), clamp(restQ));
  return Math.max(0, sum);
}

/** One outcome's share of JS: ½ a ln(a/m) + ½ b ln(b/m), m = (a + b) / 2. */
function term(a: number, b: number): number {
  const m = (a + b) / 2;
  return (xlogx(a) + xlogx(b)) / 2 - xlogx(m);
}

/** Combines the divergences of several counterfactuals (one per shift). */
export function aggregate(values: readonly number[], how: "mean" | "max"): number {
  if (values.length === 0) return 0;
  return how === "max" ? Math.max(...values) : values.reduce((a, b) => a + b, 0) / values.length;
}
