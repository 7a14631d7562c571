import { samplerDistribution } from "../../lm/sampling.js";
import type { NextTokenDistribution, SamplingOptions, Token } from "../../lm/types.js";
import type { Draft } from "./drafter.js";
import { draw } from "./draw.js";

/** What the target said about one draft. */
export interface RoundInput {
  draft: Draft;
  /**
   * The target's distributions: `target[i]` predicts `draft.tokens[i]`, `target[draft.tokens.length]`
   * is the one after the whole draft. Most likely first; full (sampling) or the argmax only (greedy).
   */
  target: readonly NextTokenDistribution[];
  sampling: SamplingOptions;
  random: () => number;
}

export interface Verdict {
  /** How many draft tokens were accepted (a prefix of the draft). */
  accepted: number;
  /** What the round adds: the accepted draft tokens, then one token of the target's own. */
  tokens: Token[];
  /** The target's logprob (full softmax, temperature 1) of each of `tokens`. */
  logprobs: number[];
}

/** Decides which draft tokens to keep and which token the target adds. */
export type AcceptanceRule = (input: RoundInput) => Verdict;

/**
 * Greedy: keep the longest prefix of the draft that equals the target's argmax at every position,
 * then add the target's argmax where they first differ (or after the whole draft) — exactly the
 * tokens plain greedy decoding of the target writes.
 */
export const greedyAcceptance: AcceptanceRule = ({ draft, target }) => {
  const tokens: Token[] = [];
  const logprobs: number[] = [];
  for (let i = 0; i <= draft.tokens.length; i++) {
    const best = target[i][0];
    tokens.push(best.token);
    logprobs.push(best.logprob);
    if (i === draft.tokens.length || best.token !== draft.tokens[i]) return { accepted: i, tokens, logprobs };
  }
  throw new Error("unreachable");
};

/**
 * Speculative sampling (Leviathan et al. 2023; Chen et al. 2023): keep draft token x with
 * probability min(1, p(x)/q(x)); at the first rejection draw from norm(max(0, p − q)) and stop;
 * after a fully accepted draft draw from p. Every token is then distributed exactly as sampling the
 * target would draw it. p is the target's sampler distribution (temperature, top-k, top-p applied),
 * q the drafter's (a point mass for a deterministic drafter).
 */
export const residualAcceptance: AcceptanceRule = ({ draft, target, sampling, random }) => {
  const tokens: Token[] = [];
  const logprobs: number[] = [];
  const add = (i: number, token: Token) => {
    tokens.push(token);
    logprobs.push(logprobOf(target[i], token));
  };
  for (let i = 0; i < draft.tokens.length; i++) {
    const p = samplerMap(target[i], sampling);
    const x = draft.tokens[i];
    const q = draft.q?.[i];
    const qx = q ? (q.get(x) ?? 0) : 1;
    if (qx > 0 && random() * qx < (p.get(x) ?? 0)) {
      add(i, x);
      continue;
    }
    add(i, draw(residual(p, q ?? new Map([[x, 1]])), random));
    return { accepted: i, tokens, logprobs };
  }
  const last = draft.tokens.length;
  add(last, draw(samplerMap(target[last], sampling), random));
  return { accepted: last, tokens, logprobs };
};

/** norm(max(0, p − q)); p itself when that is empty (p = q up to rounding: nothing to correct). */
export function residual(p: ReadonlyMap<Token, number>, q: ReadonlyMap<Token, number>): Map<Token, number> {
  const out = new Map<Token, number>();
  let total = 0;
  for (const [token, probability] of p) {
    const excess = probability - (q.get(token) ?? 0);
    if (excess > 0) {
      out.set(token, excess);
      total += excess;
    }
  }
  if (!(total > 1e-12)) return new Map(p);
  for (const [token, excess] of out) out.set(token, excess / total);
  return out;
}

/** The sampler distribution (temperature, top-k, top-p) of a full distribution, as token → probability. */
export function samplerMap(
  distribution: NextTokenDistribution,
  sampling: SamplingOptions,
): Map<Token, number> {
  return new Map(samplerDistribution(distribution, sampling));
}

/** A token's logprob in a distribution; −Infinity when the distribution does not list it. */
export function logprobOf(distribution: NextTokenDistribution, token: Token): number {
  for (const entry of distribution) if (entry.token === token) return entry.logprob;
  return Number.NEGATIVE_INFINITY;
}
