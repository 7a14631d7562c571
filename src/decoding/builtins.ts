import { AMBEDKAR_PARAMS, ambedkarFromSpec } from "./ambedkar/fromSpec.js";
import { beamSearch } from "./beam.js";
import { bestOfN } from "./bestOfN.js";
import { DEAL_DEFAULTS, DEAL_NATURAL, deal, PAPER_FAITHFUL } from "./deal/index.js";
import {
  booleanParam,
  numberParam,
  SAMPLING_PARAMS,
  type StrategyDefinition,
  type StrategySpec,
  samplingFrom,
} from "./definition.js";
import { plainDecoding } from "./greedy.js";
import { SPECULATIVE_STRATEGY } from "./speculative/register.js";

/** The built-in strategies, in the order help lists them; the registry starts with these. */
export const BUILTIN_STRATEGIES: readonly StrategyDefinition[] = [
  {
    name: "greedy",
    params: {},
    create: (_spec, deps) => plainDecoding({ temperature: 0 }, deps.vetoes),
  },
  {
    name: "sample",
    params: SAMPLING_PARAMS,
    create: (spec, deps) => plainDecoding(samplingFrom(spec, deps, 1), deps.vetoes),
  },
  {
    name: "beam",
    params: { width: "beams kept (b)", alpha: "length-normalisation exponent" },
    create: (spec, deps) =>
      beamSearch({
        width: numberParam(spec, "width", 4, { min: 1, integer: true }),
        lengthPenalty: numberParam(spec, "alpha", 1, { min: 0 }),
        vetoes: deps.vetoes,
      }),
  },
  {
    name: "deal",
    needsReward: true,
    params: {
      k: "candidates expanded per beam",
      l: "greedy lookahead tokens per candidate",
      lambda: "reward weight λ against log-probability",
      b: "beams kept",
      paper: "true: the paper's algorithm, all speed-ups, the floor and bridging off unless named",
      natural:
        "true: place keywords where they fit (floor −6.5 from −4, bridging, l=5) — no word salad, lower coverage",
      batch: "batch a step's rollouts (true/false)",
      commit: "commit several lookahead tokens per step (true/false)",
      commitTokens: "lookahead tokens committed when rewards differ",
      saturation: "finish greedily once the reward is saturated (true/false)",
      lexical: "also expand tokens that begin missing keywords (true/false)",
      slack: "nats a keyword may cost below the top token at first",
      patience: "share of the budget over which that allowance grows by λ (0: always)",
      floor: "logprob floor of committed tokens, reached after the patience share (false: none)",
      floorStart: "the floor at the start of the text",
      lexicalFloor: "keywords proposed only where each token clears the floor (true/false)",
      bridge: "weight of how well a missing keyword fits after the lookahead (0: off)",
    },
    create: (spec, deps) => {
      const flag = speedUpFlag(spec);
      // The paper has neither a floor nor bridging; named values still win.
      const paper = booleanParam(spec, "paper") ?? false;
      // `natural`: the floor and bridging on, with the lookahead measured for them.
      const natural = booleanParam(spec, "natural") ?? false;
      return deal({
        reward: deps.reward,
        vetoes: deps.vetoes,
        k: numberParam(spec, "k", DEAL_DEFAULTS.k, { min: 1, integer: true }),
        lookahead: numberParam(spec, "l", natural ? DEAL_NATURAL.lookahead : DEAL_DEFAULTS.lookahead, {
          min: 0,
          integer: true,
        }),
        lambda: numberParam(spec, "lambda", DEAL_DEFAULTS.lambda, { min: 0 }),
        beams: numberParam(spec, "b", DEAL_DEFAULTS.beams, { min: 1, integer: true }),
        batch: flag("batch"),
        commit: flag("commit"),
        commitTokens: numberParam(spec, "commitTokens", DEAL_DEFAULTS.commitTokens, {
          min: 0,
          integer: true,
        }),
        saturation: flag("saturation"),
        lexical: flag("lexical"),
        lexicalSlack: numberParam(spec, "slack", DEAL_DEFAULTS.lexicalSlack, { min: 0 }),
        patience: numberParam(spec, "patience", DEAL_DEFAULTS.patience, { min: 0 }),
        floor:
          spec.params.floor === false
            ? Number.NEGATIVE_INFINITY
            : numberParam(spec, "floor", natural && !paper ? DEAL_NATURAL.floor : DEAL_DEFAULTS.floor, {
                max: 0,
              }),
        floorStart: numberParam(spec, "floorStart", DEAL_DEFAULTS.floorStart, { max: 0 }),
        lexicalFloor: booleanParam(spec, "lexicalFloor") ?? DEAL_DEFAULTS.lexicalFloor,
        bridge: numberParam(spec, "bridge", natural && !paper ? DEAL_NATURAL.bridge : DEAL_DEFAULTS.bridge, {
          min: 0,
        }),
      });
    },
  },
  ...(["best", "worst"] as const).map(
    (pick): StrategyDefinition => ({
      name: pick === "best" ? "bon" : "won",
      needsReward: true,
      params: { n: "samples drawn (N ≥ 1)", ...SAMPLING_PARAMS },
      create: (spec, deps) =>
        bestOfN({
          n: numberParam(spec, "n", 4, { min: 1, integer: true }),
          reward: deps.reward,
          pick,
          sampling: samplingFrom(spec, deps, 1),
        }),
    }),
  ),
  SPECULATIVE_STRATEGY,
  {
    name: "ambedkar",
    params: AMBEDKAR_PARAMS,
    create: (spec, deps) => ambedkarFromSpec(spec.params, deps),
  },
];

/** A DeAL speed-up flag: as written, else off under `paper`, else the default (on). */
function speedUpFlag(spec: StrategySpec): (key: keyof typeof PAPER_FAITHFUL) => boolean {
  const paper = booleanParam(spec, "paper") ?? false;
  return (key) => booleanParam(spec, key) ?? (paper ? PAPER_FAITHFUL[key] : DEAL_DEFAULTS[key]);
}
