import { TillerError } from "../errors.js";
import type { SamplingOptions } from "../lm/types.js";
import type { Reward } from "../rewards/types.js";
import type { SwapMap } from "./ambedkar/swapMap.js";
import { beamSearch } from "./beam.js";
import { DEAL_DEFAULTS, deal, PAPER_FAITHFUL } from "./deal.js";
import { plainDecoding } from "./greedy.js";
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

export interface StrategyDeps {
  /** The reward that reward-guided strategies (bon, won, deal) steer by. */
  reward?: Reward;
  vetoes?: readonly CandidateVeto[];
  /** Defaults for sampling-based strategies (CLI --temperature/--top-k/--top-p/--seed). */
  sampling?: SamplingOptions;
  /** AMBEDKAR's identity swap map (CLI --swaps); defaults to the built-in gender map. */
  swaps?: SwapMap;
  /** AMBEDKAR's constitution text for the verifier (CLI --constitution); defaults to none. */
  constitution?: string;
}

type Factory = (spec: StrategySpec, deps: StrategyDeps) => Strategy;

interface Registration {
  factory: Factory;
  /** Parameter names the strategy accepts, with a one-line meaning each (for errors and --help). */
  params: Record<string, string>;
  needsReward: boolean;
}

const registry = new Map<string, Registration>();

/** Adds a strategy to the registry (built-ins register below; a library user may add more). */
export function registerStrategy(
  name: string,
  factory: Factory,
  params: Record<string, string>,
  options: { needsReward?: boolean } = {},
): void {
  registry.set(name, { factory, params, needsReward: options.needsReward ?? false });
}

export function strategyNames(): string[] {
  return [...registry.keys()];
}

/** One line per strategy with its parameters, for help and error messages. */
export function strategyHelp(): string {
  return [...registry.entries()]
    .map(
      ([name, r]) =>
        `${name}${
          Object.keys(r.params).length
            ? `:${Object.keys(r.params)
                .map((k) => `${k}=…`)
                .join(",")}`
            : ""
        }`,
    )
    .join(" | ");
}

export function parseStrategySpec(text: string): StrategySpec {
  const trimmed = text.trim();
  const colon = trimmed.indexOf(":");
  const name = (colon < 0 ? trimmed : trimmed.slice(0, colon)).trim();
  const registration = registry.get(name);
  if (!registration)
    throw new TillerError(
      `unknown strategy "${name}" in "${text}"; valid: ${strategyHelp()}`,
      "unknown-strategy",
    );
  const params: StrategySpec["params"] = {};
  const rest = colon < 0 ? "" : trimmed.slice(colon + 1);
  for (const part of rest
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = part.indexOf("=");
    const key = (eq < 0 ? part : part.slice(0, eq)).trim();
    if (!Object.hasOwn(registration.params, key)) {
      const valid = Object.entries(registration.params).map(([k, v]) => `${k} (${v})`);
      throw new TillerError(
        `strategy "${name}" has no parameter "${key}"; ${valid.length ? `valid: ${valid.join(", ")}` : "it takes none"}`,
        "bad-strategy-param",
      );
    }
    const raw = eq < 0 ? "true" : part.slice(eq + 1).trim();
    const number = Number(raw);
    params[key] =
      raw === "true" ? true : raw === "false" ? false : raw !== "" && Number.isFinite(number) ? number : raw;
  }
  return { name, params, label: trimmed };
}

/** Splits a comma-separated list of specs where commas inside `name:…` params belong to the spec. */
export function parseStrategyList(text: string): StrategySpec[] {
  const names = new Set(strategyNames());
  const specs: string[] = [];
  for (const piece of text.split(",")) {
    // A piece that starts with a strategy name starts a new spec; anything else (`l=8`) is a
    // parameter of the spec before it.
    const head = piece.trim().split(":")[0].trim();
    if (specs.length === 0 || names.has(head)) specs.push(piece.trim());
    else specs[specs.length - 1] += `,${piece.trim()}`;
  }
  return specs.filter(Boolean).map(parseStrategySpec);
}

export function createStrategy(spec: StrategySpec | string, deps: StrategyDeps = {}): Strategy {
  const parsed = typeof spec === "string" ? parseStrategySpec(spec) : spec;
  const registration = registry.get(parsed.name);
  if (!registration)
    throw new TillerError(`unknown strategy "${parsed.name}"; valid: ${strategyHelp()}`, "unknown-strategy");
  if (registration.needsReward && !deps.reward)
    throw new TillerError(
      `strategy "${parsed.name}" steers by a reward; give at least one --reward`,
      "no-reward",
    );
  return registration.factory(parsed, deps);
}

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

function samplingFrom(spec: StrategySpec, deps: StrategyDeps, temperatureDefault: number): SamplingOptions {
  return {
    temperature: numberParam(spec, "temperature", deps.sampling?.temperature ?? temperatureDefault, {
      min: 0,
    }),
    topK: numberParam(spec, "topK", deps.sampling?.topK ?? 0, { min: 0, integer: true }),
    topP: numberParam(spec, "topP", deps.sampling?.topP ?? 1, { min: 0, max: 1 }),
    seed: numberParam(spec, "seed", deps.sampling?.seed ?? 0, { integer: true }),
  };
}

const SAMPLING_PARAMS = {
  temperature: "sampling temperature, > 0",
  topK: "keep the k most likely tokens (0: all)",
  topP: "nucleus mass, 0 < p ≤ 1",
  seed: "sampler seed",
};

registerStrategy("greedy", (_spec, deps) => plainDecoding({ temperature: 0 }, deps.vetoes), {});
registerStrategy(
  "sample",
  (spec, deps) => plainDecoding(samplingFrom(spec, deps, 1), deps.vetoes),
  SAMPLING_PARAMS,
);
registerStrategy(
  "beam",
  (spec, deps) =>
    beamSearch({
      width: numberParam(spec, "width", 4, { min: 1, integer: true }),
      lengthPenalty: numberParam(spec, "alpha", 1, { min: 0 }),
      vetoes: deps.vetoes,
    }),
  { width: "beams kept (b)", alpha: "length-normalisation exponent" },
);

export { SAMPLING_PARAMS, samplingFrom };

registerStrategy(
  "deal",
  (spec, deps) => {
    const boolean = (key: string): boolean | undefined => {
      const value = spec.params[key];
      if (value !== undefined && typeof value !== "boolean")
        throw new TillerError(`deal: ${key} must be true or false, got "${value}"`, "bad-strategy-param");
      return value;
    };
    const paper = boolean("paper") ?? false;
    const flag = (key: keyof typeof PAPER_FAITHFUL, fallback: boolean) =>
      boolean(key) ?? (paper ? PAPER_FAITHFUL[key] : fallback);
    return deal({
      reward: deps.reward as Reward,
      vetoes: deps.vetoes,
      k: numberParam(spec, "k", DEAL_DEFAULTS.k, { min: 1, integer: true }),
      lookahead: numberParam(spec, "l", DEAL_DEFAULTS.lookahead, { min: 0, integer: true }),
      lambda: numberParam(spec, "lambda", DEAL_DEFAULTS.lambda, { min: 0 }),
      beams: numberParam(spec, "b", DEAL_DEFAULTS.beams, { min: 1, integer: true }),
      batch: flag("batch", DEAL_DEFAULTS.batch),
      commit: flag("commit", DEAL_DEFAULTS.commit),
      commitTokens: numberParam(spec, "commitTokens", DEAL_DEFAULTS.commitTokens, { min: 0, integer: true }),
      saturation: flag("saturation", DEAL_DEFAULTS.saturation),
      lexical: flag("lexical", DEAL_DEFAULTS.lexical),
      lexicalSlack: numberParam(spec, "slack", DEAL_DEFAULTS.lexicalSlack, { min: 0 }),
      patience: numberParam(spec, "patience", DEAL_DEFAULTS.patience, { min: 0 }),
    });
  },
  {
    k: "candidates expanded per beam",
    l: "greedy lookahead tokens per candidate",
    lambda: "reward weight λ against log-probability",
    b: "beams kept",
    paper: "true: the paper's algorithm, all speed-ups off unless named",
    batch: "batch a step's rollouts (true/false)",
    commit: "commit several lookahead tokens per step (true/false)",
    commitTokens: "lookahead tokens committed when rewards differ",
    saturation: "finish greedily once the reward is saturated (true/false)",
    lexical: "also expand tokens that begin missing keywords (true/false)",
    slack: "nats a keyword may cost below the top token at first",
    patience: "share of the budget over which that allowance grows by λ (0: always)",
  },
  { needsReward: true },
);

// Best-of-N / worst-of-N (InfAlign): registered by their own module.
import { registerBestOfN } from "./bestOfN.js";

registerBestOfN({ registerStrategy, numberParam, samplingFrom, SAMPLING_PARAMS });

// ---- AMBEDKAR (counterfactual verifier decoding): registered here until built-ins move. ----
import { AMBEDKAR_PARAMS, ambedkarFromSpec } from "./ambedkar/fromSpec.js";

registerStrategy("ambedkar", (spec, deps) => ambedkarFromSpec(spec.params, deps), AMBEDKAR_PARAMS);
