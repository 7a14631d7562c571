import { AMBEDKAR_PARAMS, ambedkarFromSpec } from "./ambedkar/fromSpec.js";
import { beamSearch } from "./beam.js";
import { bestOfN } from "./bestOfN.js";
import { DEAL_DEFAULTS, DEAL_RAW, deal, PAPER_FAITHFUL } from "./deal/index.js";
import { lookaheadSourceParam } from "./deal/lookaheadSourceParam.js";
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
      lookahead:
        "who writes the lookaheads: target (default), draft (the drafter; the target scores all in one call) or draft-only (the drafter; the target checks only the kept ones)",
      lambda: "reward weight λ against log-probability",
      b: "beams kept",
      paper:
        "true: the paper's algorithm: all speed-ups off, and the raw settings (floor and bridging off) unless named",
      raw: "true: DeAL before the floor (floor and bridging off, l=8, patience 0.5): forces keywords in, word salad",
      natural: "true: the defaults (kept for older specs)",
      batch: "batch a step's rollouts (true/false)",
      commit: "commit several lookahead tokens per step (true/false)",
      commitTokens: "lookahead tokens committed when rewards differ",
      candidateSlack: "nats below the top token a plain candidate may cost (false: any of the k)",
      saturation: "finish greedily once the reward is saturated (true/false)",
      lexical: "also expand tokens that begin missing keywords (true/false)",
      slack: "nats a keyword may cost below the top token at first",
      patience: "share of the budget over which that allowance grows by λ (0: always)",
      floor: "logprob floor of committed tokens, reached after the patience share (false: none)",
      floorStart: "the floor at the start of the text",
      floorCurve: "power of the floor's relaxation (1: linear; above 1: relaxes late)",
      lexicalFloor: "keywords proposed only where each token clears the floor (true/false)",
      bridge: "weight of how well a missing keyword fits after the lookahead (0: off)",
      commitPlacing: "commit the winner's whole lookahead when it places a keyword (true/false)",
      bridgeScreen: "score a keyword in full only where its first token clears the floor (true/false)",
      reuseBridge: "reuse the distribution bridging read after a committed lookahead (true/false)",
      verifyAhead:
        "with drafting: one call verifies every drafted lookahead and reads what follows it (true/false)",
    },
    create: (spec, deps) => {
      const flag = speedUpFlag(spec);
      // `raw` (and the paper, which has neither a floor nor bridging): the settings before the
      // floor; named values still win.
      const raw = (booleanParam(spec, "raw") ?? false) || (booleanParam(spec, "paper") ?? false);
      const base = raw ? { ...DEAL_DEFAULTS, ...DEAL_RAW } : DEAL_DEFAULTS;
      // `natural` (the defaults since session 8) is still read, so a bad value is an error.
      booleanParam(spec, "natural");
      return deal({
        reward: deps.reward,
        vetoes: deps.vetoes,
        k: numberParam(spec, "k", base.k, { min: 1, integer: true }),
        lookahead: numberParam(spec, "l", base.lookahead, { min: 0, integer: true }),
        lambda: numberParam(spec, "lambda", base.lambda, { min: 0 }),
        beams: numberParam(spec, "b", base.beams, { min: 1, integer: true }),
        batch: flag("batch"),
        commit: flag("commit"),
        commitTokens: numberParam(spec, "commitTokens", base.commitTokens, { min: 0, integer: true }),
        candidateSlack:
          spec.params.candidateSlack === false
            ? Number.POSITIVE_INFINITY
            : numberParam(spec, "candidateSlack", base.candidateSlack, { min: 0 }),
        saturation: flag("saturation"),
        lexical: flag("lexical"),
        lexicalSlack: numberParam(spec, "slack", base.lexicalSlack, { min: 0 }),
        patience: numberParam(spec, "patience", base.patience, { min: 0 }),
        floor:
          spec.params.floor === false
            ? Number.NEGATIVE_INFINITY
            : numberParam(spec, "floor", base.floor, { max: 0 }),
        floorStart: numberParam(spec, "floorStart", base.floorStart, { max: 0 }),
        floorCurve: numberParam(spec, "floorCurve", base.floorCurve, { min: 0.1 }),
        lexicalFloor: booleanParam(spec, "lexicalFloor") ?? base.lexicalFloor,
        bridge: numberParam(spec, "bridge", base.bridge, { min: 0 }),
        commitPlacing: flag("commitPlacing"),
        bridgeScreen: flag("bridgeScreen"),
        reuseBridge: flag("reuseBridge"),
        verifyAhead: flag("verifyAhead"),
        lookaheadFrom: lookaheadSourceParam(spec),
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
