/**
 * `ambedkar:k=5,alpha=1,divergence=token|logratio|js,byGroup=true|false,baseline=step|none,aggregate=mean|max,…` — the strategy built from a
 * spec. The swap map and the constitution come from the caller (CLI `--swaps`, `--constitution`)
 * through the deps, or from the spec's `swaps=` (a built-in name or a path); the verifier comes
 * from the decode context (`--verifier`), else the draft verifies itself.
 */
import { TillerError } from "../../errors.js";
import type { Reward } from "../../rewards/types.js";
import type { Strategy } from "../strategy.js";
import type { CandidateVeto } from "../veto.js";
import { AMBEDKAR_DEFAULTS, ambedkar } from "./ambedkar.js";
import { loadSwapMap } from "./builtinSwaps.js";
import type { SwapMap } from "./swapMap.js";

export const AMBEDKAR_PARAMS = {
  k: "draft candidates per step (default 5)",
  alpha: "weight α of the divergence (default 1)",
  divergence:
    "token (JS of the probabilities of c and σ(c), default), logratio (|ln p − ln q| of them) or js (next-token distributions after them)",
  byGroup: "true: an identity word is judged by its group's mass (default true)",
  baseline:
    "step: D counts only beyond how far the counterfactual context moves identity-free tokens; none: as measured (default none)",
  aggregate: "mean or max over n-way counterfactuals (default: the swap map's, mean)",
  temperature: "draft temperature of the scored log-probabilities (default 0.7)",
  sample: "true: seeded sampling over the re-scored candidates (default false: greedy)",
  seed: "sampler seed (default 0)",
  lookahead: "draft tokens completing a word a candidate begins (default 3)",
  nextK: "entries per next-token distribution for divergence=js (default 256)",
  lambda: "weight λ of the reward, if one is given (default 0)",
  swaps: "built-in map (gender, religion, caste) or a swap file (default: --swaps, else gender)",
  requireVerifier: "true: fail without --verifier instead of self-verifying (default false)",
  shortcuts:
    "true: skip model calls that cannot change the choice (a leader with D = 0 for certain, the self verifier fetching the next draft step); false judges every contender as before (default true)",
};

/** What a spec's caller hands over beside the spec (the registry's deps). */
export interface AmbedkarDeps {
  reward?: Reward;
  vetoes?: readonly CandidateVeto[];
  /** From `--swaps`. */
  swaps?: SwapMap;
  /** From `--constitution` (the file's text). */
  constitution?: string;
  sampling?: { seed?: number };
}

type Params = Record<string, number | string | boolean>;

function numberOf(
  params: Params,
  key: string,
  fallback: number,
  ok: (v: number) => boolean,
  range: string,
): number {
  const value = params[key] ?? fallback;
  if (typeof value !== "number" || !ok(value))
    throw new TillerError(`ambedkar: ${key} must be ${range}, got "${String(value)}"`, "bad-strategy-param");
  return value;
}

function choiceOf<T extends string>(params: Params, key: string, choices: readonly T[]): T | undefined {
  const value = params[key];
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !choices.includes(value as T))
    throw new TillerError(
      `ambedkar: ${key} must be ${choices.join(" or ")}, got "${String(value)}"`,
      "bad-strategy-param",
    );
  return value as T;
}

function booleanOf(params: Params, key: string, fallback: boolean): boolean {
  const value = params[key] ?? fallback;
  if (typeof value !== "boolean")
    throw new TillerError(
      `ambedkar: ${key} must be true or false, got "${String(value)}"`,
      "bad-strategy-param",
    );
  return value;
}

export function ambedkarFromSpec(params: Params, deps: AmbedkarDeps): Strategy {
  const d = AMBEDKAR_DEFAULTS;
  const int = (v: number) => Number.isInteger(v);
  const swapsParam = params.swaps;
  if (swapsParam !== undefined && typeof swapsParam !== "string")
    throw new TillerError(
      `ambedkar: swaps must be a map name or a path, got "${swapsParam}"`,
      "bad-strategy-param",
    );
  return ambedkar({
    swaps: swapsParam !== undefined ? loadSwapMap(swapsParam) : (deps.swaps ?? loadSwapMap("gender")),
    constitution: deps.constitution,
    k: numberOf(params, "k", d.k, (v) => int(v) && v >= 1, "an integer ≥ 1"),
    alpha: numberOf(params, "alpha", d.alpha, (v) => v >= 0, "a number ≥ 0"),
    divergence: choiceOf(params, "divergence", ["js", "token", "logratio"] as const) ?? d.divergence,
    byGroup: booleanOf(params, "byGroup", d.byGroup),
    baseline: choiceOf(params, "baseline", ["step", "none"] as const) ?? d.baseline,
    aggregate: choiceOf(params, "aggregate", ["mean", "max"] as const),
    temperature: numberOf(params, "temperature", d.temperature, (v) => v > 0, "a number > 0"),
    sample: booleanOf(params, "sample", d.sample),
    seed: numberOf(params, "seed", deps.sampling?.seed ?? d.seed, int, "an integer"),
    lookahead: numberOf(params, "lookahead", d.lookahead, (v) => int(v) && v >= 0, "an integer ≥ 0"),
    nextK: numberOf(params, "nextK", d.nextK, (v) => int(v) && v >= 1, "an integer ≥ 1"),
    lambda: numberOf(params, "lambda", d.lambda, (v) => v >= 0, "a number ≥ 0"),
    reward: deps.reward,
    vetoes: deps.vetoes,
    requireVerifier: booleanOf(params, "requireVerifier", false),
    shortcuts: booleanOf(params, "shortcuts", d.shortcuts),
  });
}
