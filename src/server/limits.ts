import { VOCABULARY_BOUNDED } from "../decoding/limits.js";
import type { StrategySpec } from "../decoding/registry.js";
import { ApiError } from "./errors.js";

/**
 * What one request may ask for. A request over a limit gets 400 naming the limit and its value,
 * before any decoding starts, so one client cannot tie the model up for minutes or exhaust memory.
 */
export interface ServerLimits {
  /** Most tokens one choice may generate. Defaults to the model's context size. */
  maxTokens: number;
  /** Most choices per request (`n` × prompts). Defaults to 16. */
  choices: number;
  /** Most samples a Best-of-N / worst-of-N strategy draws (`bon:n`). Defaults to 64. */
  samples: number;
  /** Widest beam (`beam:width`, `deal:b`). Defaults to 32. */
  beams: number;
  /** Most candidates DeAL expands per beam (`deal:k`). Defaults to 32. */
  candidates: number;
  /** Longest DeAL lookahead (`deal:l`). Defaults to 64. */
  lookahead: number;
  /** Most reward specs. Defaults to 16. */
  rewards: number;
  /** Most TraceShield regenerations. Defaults to 4. */
  regenerate: number;
  /** Most (prompt, completion) pairs per /v1/rewards/score call. Defaults to 256. */
  scorePairs: number;
  /** Most reference samples per prompt for /v1/rewards/score. Defaults to 256. */
  referenceSamples: number;
  /** Most prompts per /v1/provenance/pairs call. Defaults to 64. */
  pairPrompts: number;
  /** Most completions sampled per prompt for /v1/provenance/pairs. Defaults to 32. */
  pairSamples: number;
}

export function defaultLimits(contextSize: number): ServerLimits {
  return {
    maxTokens: contextSize,
    choices: 16,
    samples: 64,
    beams: 32,
    candidates: 32,
    lookahead: 64,
    rewards: 16,
    regenerate: 4,
    scorePairs: 256,
    referenceSamples: 256,
    pairPrompts: 64,
    pairSamples: 32,
  };
}

/** 400 naming the limit when `value` exceeds it. */
export function checkLimit(
  limits: ServerLimits,
  name: keyof ServerLimits,
  value: number,
  what: string,
  param: string,
): void {
  const limit = limits[name];
  if (value > limit)
    throw new ApiError(
      400,
      `${what} is ${value}, over this server's limit of ${limit} (limit "${name}")`,
      "limit_exceeded",
      param,
    );
}

/**
 * Which strategy parameters are bounded by which limit: the server's own policy, configurable; the
 * vocabulary bound (decoding/limits.ts, also enforced by the library) applies on top.
 */
const STRATEGY_LIMITS: Record<string, Record<string, keyof ServerLimits>> = {
  bon: { n: "samples" },
  won: { n: "samples" },
  beam: { width: "beams" },
  deal: { k: "candidates", l: "lookahead", b: "beams" },
};

export function checkStrategyLimits(
  spec: StrategySpec,
  limits: ServerLimits,
  vocabularySize: number,
  param = "alignment.strategy",
): void {
  for (const [key, limit] of Object.entries(STRATEGY_LIMITS[spec.name] ?? {})) {
    const value = spec.params[key];
    if (typeof value === "number") checkLimit(limits, limit, value, `${spec.name}:${key}`, param);
  }
  const bounded = VOCABULARY_BOUNDED[spec.name];
  const width = bounded === undefined ? undefined : spec.params[bounded];
  if (typeof width === "number" && vocabularySize > 0 && width > vocabularySize)
    throw new ApiError(
      400,
      `${spec.label}: ${width} exceeds the model's vocabulary of ${vocabularySize} tokens`,
      "limit_exceeded",
      param,
    );
}
