import { TillerError } from "../errors.js";
import type { SamplingOptions } from "../lm/types.js";
import type { Reward } from "../rewards/types.js";
import type { SwapMap } from "./ambedkar/swapMap.js";
import type { Strategy } from "./strategy.js";
import type { CandidateVeto } from "./veto.js";

/**
 * Strategy specs, as the CLI and task files write them: `NAME[:key=value,key=value…]`, e.g.
 * `greedy`, `sample:temperature=0.8,seed=3`, `beam:width=4`, `bon:n=8`, `deal:k=5,l=8,lambda=10`.
 */
export interface StrategySpec {
  name: string;
  params: Record<string, number | string | boolean>;
  /** The spec as written, used as the strategy's label in tables. */
  label: string;
}

/** What a strategy may be built with. */
export interface StrategyDeps {
  /** The reward that reward-guided strategies (bon, won, deal) steer by. */
  reward?: Reward;
  /** Hooks that drop or demote candidate tokens. Defaults to none. */
  vetoes?: readonly CandidateVeto[];
  /** Defaults for sampling-based strategies (CLI --temperature/--top-k/--top-p/--seed). */
  sampling?: SamplingOptions;
  /** Speculative decoding's drafter (CLI --draft prompt|index:DIR|model; a draft model itself comes as DecodeContext.draft). */
  drafter?: string;
  /** Speculative decoding's draft length (CLI --draft-tokens N|auto). */
  draftTokens?: number | "auto";
  /** AMBEDKAR's identity swap map (CLI --swaps); defaults to the built-in gender map. */
  swaps?: SwapMap;
  /** AMBEDKAR's constitution text for the verifier (CLI --constitution); defaults to none. */
  constitution?: string;
}

/** The deps of a strategy that steers by a reward: the reward is there. */
export interface RewardedDeps extends StrategyDeps {
  reward: Reward;
}

interface DefinitionBase {
  name: string;
  /** Parameter names the strategy accepts, with a one-line meaning each (for errors and --help). */
  params: Record<string, string>;
}

/**
 * A strategy the registry can build from a spec. One that steers by a reward says so
 * (`needsReward: true`) and its factory receives deps whose `reward` is set.
 */
export type StrategyDefinition =
  | (DefinitionBase & { needsReward?: false; create(spec: StrategySpec, deps: StrategyDeps): Strategy })
  | (DefinitionBase & { needsReward: true; create(spec: StrategySpec, deps: RewardedDeps): Strategy });

/** Reads a numeric parameter, checking its range; `fallback` when absent. */
export function numberParam(
  spec: StrategySpec,
  key: string,
  fallback: number,
  check: { min?: number; max?: number; integer?: boolean } = {},
): number {
  const value = spec.params[key] ?? fallback;
  const ok =
    typeof value === "number" &&
    (check.min === undefined || value >= check.min) &&
    (check.max === undefined || value <= check.max) &&
    (!check.integer || Number.isInteger(value));
  if (!ok) {
    const range = [
      check.integer ? "an integer" : "a number",
      check.min !== undefined ? `≥ ${check.min}` : "",
      check.max !== undefined ? `≤ ${check.max}` : "",
    ]
      .filter(Boolean)
      .join(" ");
    throw new TillerError(
      `${spec.name}: ${key} must be ${range}, got "${String(value)}"`,
      "bad-strategy-param",
    );
  }
  return value as number;
}

/** Reads a true/false parameter; undefined when absent. */
export function booleanParam(spec: StrategySpec, key: string): boolean | undefined {
  const value = spec.params[key];
  if (value !== undefined && typeof value !== "boolean")
    throw new TillerError(`${spec.name}: ${key} must be true or false, got "${value}"`, "bad-strategy-param");
  return value;
}

export const SAMPLING_PARAMS = {
  temperature: "sampling temperature, > 0",
  topK: "keep the k most likely tokens (0: all)",
  topP: "nucleus mass, 0 < p ≤ 1",
  seed: "sampler seed",
};

/** Sampling options from a spec's parameters, falling back to the deps' defaults. */
export function samplingFrom(
  spec: StrategySpec,
  deps: StrategyDeps,
  temperatureDefault: number,
): SamplingOptions {
  return {
    temperature: numberParam(spec, "temperature", deps.sampling?.temperature ?? temperatureDefault, {
      min: 0,
    }),
    topK: numberParam(spec, "topK", deps.sampling?.topK ?? 0, { min: 0, integer: true }),
    topP: numberParam(spec, "topP", deps.sampling?.topP ?? 1, { min: 0, max: 1 }),
    seed: numberParam(spec, "seed", deps.sampling?.seed ?? 0, { integer: true }),
  };
}
