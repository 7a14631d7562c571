import { existsSync } from "node:fs";
import { createStrategy, parseStrategySpec, type StrategySpec } from "../decoding/registry.js";
import type { Strategy } from "../decoding/strategy.js";
import type { CandidateVeto } from "../decoding/veto.js";
import type { LanguageModel, SamplingOptions } from "../lm/types.js";
import { PROV_DECODE_RECOMMENDED, ProvDecodeVeto } from "../provenance/prov-decode.js";
import { SHIELD_DEFAULTS, shielded } from "../provenance/shield.js";
import type { TraceIndex } from "../provenance/trace-index.js";
import { mix } from "../rewards/mix.js";
import { parseRewardSpecs } from "../rewards/spec.js";
import type { Reward } from "../rewards/types.js";
import { ApiError, toApiError } from "./errors.js";
import { checkLimit, checkStrategyLimits, type ServerLimits } from "./limits.js";
import type { Profile } from "./profiles.js";
import type { AlignmentSettings } from "./schemas.js";

/** The OpenAI sampling fields of a request, as sent (null/undefined = not sent). */
export interface RequestSampling {
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  seed?: number | null;
}

/** The settings a request decodes with, after its profile and its own `alignment` are merged. */
export interface EffectiveAlignment {
  profile: string | null;
  strategy: string;
  rewards: string[];
  weights?: number[];
  provenance: false | (Required<Omit<ProvenanceSettings, "max_count">> & { max_count?: number });
  shield: false | { tau: number; regenerate: number; refusal?: string; min_len: number; max_count: number };
  trace: boolean;
  /** What the sampling strategies draw with (after OpenAI defaults: temperature 1, a random seed). */
  sampling: { temperature: number; top_p: number; top_k: number; seed: number };
}

type ProvenanceSettings = Exclude<NonNullable<AlignmentSettings["provenance"]>, boolean>;

/** Everything a request needs to decode its choices. */
export interface DecodePlan {
  settings: EffectiveAlignment;
  reward: Reward;
  /** The strategy for choice `i` (sampling strategies get seed + i). */
  strategyFor(choice: number): Strategy;
  /** Why parts of the request were not used as sent. */
  warnings: string[];
  /** Whether the strategy samples (so n > 1 choices differ). */
  samples: boolean;
}

export interface PlanContext {
  /** The request's view of the model (judge rewards score through it). */
  model: LanguageModel;
  index?: TraceIndex;
  limits: ServerLimits;
  /** Picks the seed when the request sends none. */
  randomSeed: () => number;
}

const SAMPLING_STRATEGIES = new Set(["sample", "bon", "won"]);

/** Merges profile ← request alignment field by field (nested provenance/shield too). */
export function mergeAlignment(profile: Profile | undefined, request: AlignmentSettings | null | undefined) {
  const base: AlignmentSettings = profile ? { ...profile } : {};
  delete (base as { description?: string; name?: string }).description;
  delete (base as { name?: string }).name;
  const over = request ?? {};
  const nested = <T extends object>(
    a: boolean | T | undefined,
    b: boolean | T | undefined,
  ): boolean | T | undefined => {
    if (b === undefined) return a;
    if (typeof b === "boolean" || a === undefined || typeof a === "boolean") return b;
    return { ...a, ...b };
  };
  return {
    rewards: over.rewards ?? base.rewards,
    weights: over.weights ?? base.weights,
    strategy: over.strategy ?? base.strategy,
    provenance: nested(base.provenance, over.provenance),
    shield: nested(base.shield, over.shield),
    trace: over.trace ?? base.trace,
  } satisfies AlignmentSettings;
}

/**
 * Resolves a request's alignment: merges it over its profile, fills the defaults, checks limits,
 * builds the reward and the strategy, and lists every sampling field the strategy will not use.
 * `trusted` settings (from the profiles file) may name lexicon files; a request's may not.
 */
export function planDecode(
  profile: Profile | undefined,
  request: AlignmentSettings | null | undefined,
  sampling: RequestSampling,
  context: PlanContext,
): DecodePlan {
  const merged = mergeAlignment(profile, request);
  const warnings: string[] = [];
  const rewards = typeof merged.rewards === "string" ? [merged.rewards] : [...(merged.rewards ?? [])];
  checkLimit(context.limits, "rewards", rewards.length, "the number of rewards", "alignment.rewards");
  if (request?.rewards !== undefined) for (const spec of rewards) refuseFileAccess(spec);
  const reward = buildReward(rewards, merged.weights, context.model);

  const strategyText =
    merged.strategy ?? (rewards.length > 0 ? "deal" : (sampling.temperature ?? 1) > 0 ? "sample" : "greedy");
  const spec = atParam("alignment.strategy", () => parseStrategySpec(strategyText));
  checkStrategyLimits(spec, context.limits, context.model.vocabularySize);
  const samples = SAMPLING_STRATEGIES.has(spec.name);
  warnings.push(...ignoredSampling(spec, sampling, samples));

  const effectiveSampling = {
    temperature: sampling.temperature ?? 1,
    top_p: sampling.top_p ?? 1,
    top_k: sampling.top_k ?? 0,
    seed: sampling.seed ?? context.randomSeed(),
  };
  const provenance = provenanceSettings(merged.provenance);
  const shield = shieldSettings(merged.shield);
  if (shield)
    checkLimit(context.limits, "regenerate", shield.regenerate, "shield.regenerate", "alignment.shield");
  if ((provenance || shield) && !context.index)
    throw new ApiError(
      400,
      "provenance and shield need a corpus index; start tiller serve with --index DIR",
      "no_index",
      provenance ? "alignment.provenance" : "alignment.shield",
    );

  const settings: EffectiveAlignment = {
    profile: profile?.name ?? null,
    strategy: spec.label,
    rewards,
    ...(merged.weights ? { weights: merged.weights } : {}),
    provenance,
    shield,
    trace: merged.trace ?? false,
    sampling: effectiveSampling,
  };
  const strategyFor = strategyFactory(spec, reward, settings, context);
  // Build choice 0 now so a bad parameter is a 400 before anything is decoded.
  strategyFor(0);
  return { settings, reward, strategyFor, warnings, samples };
}

function buildReward(
  specs: readonly string[],
  weights: readonly number[] | undefined,
  model: LanguageModel,
): Reward {
  if (specs.length === 0) {
    if (weights?.length)
      throw new ApiError(400, "weights given without rewards", "invalid_value", "alignment.weights");
    return mix([]);
  }
  return atParam("alignment.rewards", () =>
    parseRewardSpecs(specs, weights?.map(String), { judgeModel: model }),
  );
}

/** A request may not make the server read its files (a lexicon spec that names a path). */
export function refuseFileAccess(spec: string, param = "alignment.rewards"): void {
  const form = spec.slice(spec.indexOf("*") + 1).trim();
  if (!form.startsWith("lexicon:")) return;
  const arg = form.slice("lexicon:".length).trim();
  if (!arg.includes(",") && (existsSync(arg) || /[/\\]|\.\w+$/.test(arg)))
    throw new ApiError(
      400,
      `${spec}: lexicon files cannot be named in a request; list the words (lexicon:w1,w2) or use a profile`,
      "file_access_refused",
      param,
    );
}

/** Warnings for the sampling fields a request sent that its strategy will not use as sent. */
function ignoredSampling(spec: StrategySpec, sampling: RequestSampling, samples: boolean): string[] {
  const sent: [keyof RequestSampling, string, boolean][] = [
    ["temperature", "temperature", (sampling.temperature ?? 0) > 0],
    ["top_p", "topP", (sampling.top_p ?? 1) < 1],
    ["top_k", "topK", (sampling.top_k ?? 0) > 0],
    ["seed", "seed", sampling.seed !== undefined && sampling.seed !== null],
  ];
  const warnings: string[] = [];
  for (const [field, param, matters] of sent) {
    if (sampling[field] === undefined || sampling[field] === null) continue;
    if (!samples) {
      if (matters) warnings.push(`${field} is ignored: strategy "${spec.label}" does not sample`);
    } else if (Object.hasOwn(spec.params, param))
      warnings.push(`${field} is ignored: strategy "${spec.label}" sets ${param}=${spec.params[param]}`);
  }
  return warnings;
}

function provenanceSettings(value: AlignmentSettings["provenance"]): EffectiveAlignment["provenance"] {
  if (value === undefined || value === false) return false;
  const given = value === true ? {} : value;
  return {
    veto: given.veto ?? "hard",
    tau: given.tau ?? PROV_DECODE_RECOMMENDED.tau,
    gamma: given.gamma ?? PROV_DECODE_RECOMMENDED.gamma,
    window: given.window ?? PROV_DECODE_RECOMMENDED.n,
    min_match: given.min_match ?? PROV_DECODE_RECOMMENDED.minLength,
    normalize: given.normalize ?? true,
    ...(given.max_count !== undefined ? { max_count: given.max_count } : {}),
  };
}

function shieldSettings(value: AlignmentSettings["shield"]): EffectiveAlignment["shield"] {
  if (value === undefined || value === false) return false;
  const given = value === true ? {} : value;
  return {
    tau: given.tau ?? SHIELD_DEFAULTS.tau,
    regenerate: given.regenerate ?? 1,
    ...(given.refusal !== undefined ? { refusal: given.refusal } : {}),
    min_len: given.min_len ?? SHIELD_DEFAULTS.minLen,
    max_count: given.max_count ?? SHIELD_DEFAULTS.maxCount,
  };
}

/** The strategy of each choice: the spec with the request's reward, vetoes and sampling. */
function strategyFactory(
  spec: StrategySpec,
  reward: Reward,
  settings: EffectiveAlignment,
  context: PlanContext,
): (choice: number) => Strategy {
  const { provenance, shield, sampling } = settings;
  const veto = (mode: "hard" | "soft"): CandidateVeto => {
    if (!provenance) return hardVetoForShield(context, shield);
    return new ProvDecodeVeto(context.index as TraceIndex, {
      n: provenance.window,
      tau: provenance.tau,
      mode,
      gamma: provenance.gamma,
      minLength: provenance.min_match,
      maxCount: provenance.max_count,
      normalize: provenance.normalize ? { model: context.model } : undefined,
    });
  };
  const samplingFor = (seed: number): SamplingOptions => ({
    temperature: sampling.temperature,
    topP: sampling.top_p,
    topK: sampling.top_k,
    seed,
  });
  return (choice) =>
    atParam("alignment", () => {
      const vetoes = provenance ? [veto(provenance.veto)] : [];
      const seed = sampling.seed + choice;
      if (!shield) return createStrategy(spec, { reward, vetoes, sampling: samplingFor(seed) });
      return shielded(
        (attempt) =>
          createStrategy(spec, {
            reward,
            vetoes: attempt === 0 ? vetoes : [...vetoes, veto("hard")],
            sampling: samplingFor(seed + 1000 * attempt),
          }),
        context.index as TraceIndex,
        {
          tau: shield.tau,
          regenerate: shield.regenerate,
          refusal: shield.refusal,
          minLen: shield.min_len,
          maxCount: shield.max_count,
        },
      );
    });
}

/** TraceShield's retries veto copies with the recommended Prov-Decode settings when provenance is off. */
function hardVetoForShield(context: PlanContext, shield: EffectiveAlignment["shield"]): CandidateVeto {
  return new ProvDecodeVeto(context.index as TraceIndex, {
    ...PROV_DECODE_RECOMMENDED,
    tau: shield ? shield.tau : PROV_DECODE_RECOMMENDED.tau,
    mode: "hard",
    normalize: { model: context.model },
  });
}

/** Runs `fn`, turning a TillerError into a 400 that names `param`. */
function atParam<T>(param: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw toApiError(error, param);
  }
}
