import { z } from "zod";
import { createStrategy, parseStrategySpec, type StrategySpec } from "../decoding/registry.js";
import { rolloutText } from "../decoding/rolloutText.js";
import { runStrategy } from "../decoding/run.js";
import { streamSeed } from "../decoding/seeds.js";
import { TillerError } from "../errors.js";
import { promptTokens } from "../lm/prompt.js";
import { samplerDistribution } from "../lm/sampling.js";
import type { LanguageModel, SamplingOptions, Token, TokenLogprob } from "../lm/types.js";
import type { Reward } from "../rewards/types.js";
import { scoreAll } from "../rewards/types.js";
import { throwIfAborted } from "../util/cooperative.js";
import { checkModel, fields, parseOptions, rewardField } from "../util/options.js";
import { ReferencePolicy, type ReferencePolicyOptions } from "./reference.js";
import {
  analyticBoNKL,
  analyticBoNWinRate,
  bonLogRatio,
  bootstrapMeanAsync,
  type Interval,
  maxWinRate,
  mean,
  minWinRate,
  type PromptScores,
} from "./winrate.js";

export interface WinRateTask {
  id: string;
  prompt: string;
  maxTokens: number;
}

/** What estimateWinRates() accepts, checked before any sampling (a bad option names itself). */
export const winRateOptionsSchema = z
  .object({
    tasks: z
      .array(z.object({ id: z.string().min(1), prompt: fields.prompt, maxTokens: fields.maxTokens }).loose())
      .min(1, "no tasks"),
    reward: z.union([rewardField, fields.callback<(task: WinRateTask) => Reward>()]),
    policy: z.string().min(1, "the policy spec is empty"),
    n: z.number().int().min(1).optional(),
    samples: z.number().int().min(1).optional(),
    reference: z
      .object({
        m: z.number().int().min(1),
        temperature: z.number().min(0).optional(),
        topK: z.number().int().min(0).optional(),
        topP: z.number().gt(0).max(1).optional(),
        seed: z.number().int().optional(),
        stopStrings: fields.stopStrings.optional(),
        modelPath: z.string().optional(),
        cacheDir: z.union([z.string(), z.literal(false)]).optional(),
        onWarning: fields.callback<(message: string) => void>().optional(),
      })
      .strict(),
    seed: z.number().int().optional(),
    resamples: z.number().int().min(1).optional(),
    klSamples: z.number().int().min(1).optional(),
    onProgress: fields.callback<(done: number, total: number, phase: string) => void>().optional(),
    signal: fields.signal.optional(),
  })
  .strict();

export interface WinRateOptions {
  tasks: readonly WinRateTask[];
  /** The reward r, per task (e.g. the task's keywords) — or one reward for all. */
  reward: Reward | ((task: WinRateTask) => Reward);
  /** The policy under test, a strategy spec ("sample:temperature=0.7", "bon:n=4", "deal:k=5"). */
  policy: string;
  /** Largest N for the Best-/worst-of-N win rates; N = 1, 2, 4, … up to it (default 16). */
  n?: number;
  /** Policy samples per prompt (default 16; 1 for a deterministic policy). */
  samples?: number;
  /** Reference: m, sampling settings, cache (maxTokens comes from each task). */
  reference: Omit<ReferencePolicyOptions, "maxTokens" | "maxTokensFor">;
  /** Seed of the policy samples and the bootstrap (default 0). */
  seed?: number;
  /** Bootstrap resamples (default 1000). */
  resamples?: number;
  /** Policy samples per prompt used for the exact per-token KL of sampling policies (default 4). */
  klSamples?: number;
  onProgress?: (done: number, total: number, phase: string) => void;
  /** Stops sampling, decoding and the bootstrap; the estimate then rejects with the abort error. */
  signal?: AbortSignal;
}

export interface WinRateRow {
  n: number;
  /** Best-of-N of the policy (by r) against one reference sample. */
  bonVsReference: Interval;
  /** N/(N+1): Best-of-N of the calibrated reward of the reference against the reference. */
  analyticBoN: number;
  /** The paper's Best-of-N win rate: BoN(policy) against BoN(reference). */
  bonVsBon: Interval;
  /** The paper's worst-of-N win rate: WoN(policy) against WoN(reference). */
  wonVsWon: Interval;
}

export interface KLEstimate {
  /** Nats; null when the policy's likelihood is not available. */
  estimate: number | null;
  method: string;
  /** log N − (N−1)/N for Best-/worst-of-N policies. */
  analyticBound?: number;
}

export interface WinRateReport {
  policy: string;
  reward: string;
  tasks: number;
  m: number;
  samples: number;
  deterministic: boolean;
  standard: Interval;
  rows: WinRateRow[];
  kl: KLEstimate;
  ci: string;
  reference: { sampling: ReferencePolicy["sampling"]; stats: ReferencePolicy["stats"]; cache?: string };
  /** Mean reward of policy and reference samples (raw scale). */
  meanReward: { policy: number; reference: number };
  wallMs: number;
}

/** Powers of two up to `n`, and `n` itself. */
export function nGrid(n: number): number[] {
  const grid: number[] = [];
  for (let v = 1; v <= n; v *= 2) grid.push(v);
  if (grid[grid.length - 1] !== n) grid.push(n);
  return grid;
}

/** The spec with its `seed` set, or undefined when the strategy takes no seed (deterministic). */
function withSeed(spec: StrategySpec, seed: number): StrategySpec | undefined {
  const params = { ...spec.params, seed };
  const text = `${spec.name}:${Object.entries(params)
    .map(([key, value]) => `${key}=${value}`)
    .join(",")}`;
  try {
    return { ...parseStrategySpec(text), label: spec.label };
  } catch {
    return undefined;
  }
}

/**
 * Estimates win rates of a policy against the reference policy on a task set: the standard win
 * rate, Best-of-N (policy BoN vs one reference sample, and BoN vs BoN) and worst-of-N (WoN vs
 * WoN) for N = 1, 2, 4, …, with two-level bootstrap intervals, and KL(policy ‖ reference) where
 * the policy's likelihood is available.
 */
export async function estimateWinRates(
  model: LanguageModel,
  options: WinRateOptions,
): Promise<WinRateReport> {
  checkModel("estimateWinRates", model);
  parseOptions("estimateWinRates", winRateOptionsSchema, options);
  const started = performance.now();
  const maxN = options.n ?? 16;
  if (!Number.isInteger(maxN) || maxN < 1)
    throw new TillerError(`--n must be an integer ≥ 1, got ${maxN}`, "bad-n");
  const k = options.samples ?? 16;
  if (!Number.isInteger(k) || k < 1)
    throw new TillerError(`policy samples must be an integer ≥ 1, got ${k}`, "bad-samples");
  if (options.tasks.length === 0) throw new TillerError("no tasks", "bad-task-file");
  const seed = options.seed ?? 0;
  const rewardFor = typeof options.reward === "function" ? options.reward : () => options.reward as Reward;
  const maxTokensOf = new Map(options.tasks.map((t) => [t.prompt, t.maxTokens]));
  const reference = new ReferencePolicy(model, {
    ...options.reference,
    maxTokensFor: (p) => maxTokensOf.get(p),
  });
  const policySpec = parseStrategySpec(options.policy);
  const sampling: SamplingOptions = {
    temperature: reference.sampling.temperature,
    topK: reference.sampling.topK,
    topP: reference.sampling.topP,
  };
  // Fail on a bad spec before any sampling.
  createStrategy(policySpec, { reward: rewardFor(options.tasks[0]), sampling: { ...sampling, seed } });
  const seeded = withSeed(policySpec, seed) !== undefined;
  const perPrompt = seeded ? k : 1;
  const progress = options.onProgress ?? (() => {});

  const signal = options.signal;
  progress(0, options.tasks.length, "reference");
  await reference.prefetch(
    options.tasks.map((t) => t.prompt),
    signal,
  );
  const prompts: (PromptScores & {
    policyTexts: { tokens: Token[]; prefix: Token[] }[];
    referenceSorted: number[];
  })[] = [];
  let done = 0;
  for (const task of options.tasks) {
    throwIfAborted(signal);
    const reward = rewardFor(task);
    const refSamples = await reference.samples(task.prompt);
    const refScores = await scoreAll(
      reward,
      refSamples.map((s) => ({ prompt: task.prompt, text: s.text, tokens: s.tokens, finished: true })),
    );
    const tokens = await promptTokens(model, task.prompt);
    const outputs: { text: string; tokens: Token[] }[] = [];
    if (policySpec.name === "sample") {
      // Plain sampling: all k samples in one batched call, per-request seeds.
      const s = samplingOf(policySpec, sampling);
      const rollouts = await model.rollouts(
        Array.from({ length: perPrompt }, (_, i) => ({
          prefix: tokens,
          seed: streamSeed(s.seed ?? seed, "policy", i),
        })),
        { ...s, maxTokens: task.maxTokens, signal },
      );
      for (const r of rollouts) outputs.push(rolloutText(model, tokens, r));
    } else {
      for (let i = 0; i < perPrompt; i++) {
        const spec = seeded
          ? (withSeed(policySpec, streamSeed(seed, "policy", i)) as StrategySpec)
          : policySpec;
        const strategy = createStrategy(spec, {
          reward,
          sampling: { ...sampling, seed: streamSeed(seed, "policy", i) },
        });
        const result = await runStrategy(strategy, {
          model,
          prompt: task.prompt,
          promptTokens: tokens,
          maxTokens: task.maxTokens,
          signal,
        });
        throwIfAborted(signal); // strategies that stop early return their partial text
        outputs.push({ text: result.text, tokens: result.tokens });
      }
    }
    const policyScores = await scoreAll(
      reward,
      outputs.map((o) => ({ prompt: task.prompt, text: o.text, tokens: o.tokens, finished: true })),
    );
    prompts.push({
      policy: policyScores,
      reference: refScores,
      policyTexts: outputs.map((o) => ({ tokens: o.tokens, prefix: tokens })),
      referenceSorted: [...refScores].sort((a, b) => a - b),
    });
    progress(++done, options.tasks.length, "policy");
  }

  const boot = { resamples: options.resamples ?? 1000, seed, signal };
  progress(done, options.tasks.length, "bootstrap");
  const standard = await bootstrapMeanAsync(prompts, (p, q) => maxWinRate(p, q, 1, 1), boot);
  const rows: WinRateRow[] = [];
  for (const n of nGrid(maxN))
    rows.push({
      n,
      bonVsReference: await bootstrapMeanAsync(prompts, (p, q) => maxWinRate(p, q, n, 1), boot),
      analyticBoN: analyticBoNWinRate(n),
      bonVsBon: await bootstrapMeanAsync(prompts, (p, q) => maxWinRate(p, q, n, n), boot),
      wonVsWon: await bootstrapMeanAsync(prompts, (p, q) => minWinRate(p, q, n), boot),
    });

  progress(done, options.tasks.length, "kl");
  const kl = await estimateKL(
    model,
    policySpec,
    sampling,
    reference,
    prompts,
    options.klSamples ?? 4,
    seeded,
    signal,
  );
  return {
    policy: policySpec.label,
    reward: typeof options.reward === "function" ? "per-task reward" : options.reward.name,
    tasks: options.tasks.length,
    m: reference.m,
    samples: perPrompt,
    deterministic: !seeded,
    standard,
    rows,
    kl,
    ci: `95% percentile bootstrap, ${boot.resamples} resamples, two-level (prompts, then samples within each prompt)`,
    reference: { sampling: reference.sampling, stats: reference.stats, cache: reference.cacheFolder },
    meanReward: {
      policy: mean(prompts.flatMap((p) => p.policy)),
      reference: mean(prompts.flatMap((p) => p.reference)),
    },
    wallMs: Math.round(performance.now() - started),
  };
}

function samplingOf(spec: StrategySpec, fallback: SamplingOptions): SamplingOptions {
  const get = (key: string, value: number | undefined) =>
    typeof spec.params[key] === "number" ? (spec.params[key] as number) : value;
  return {
    temperature: get("temperature", fallback.temperature),
    topK: get("topK", fallback.topK),
    topP: get("topP", fallback.topP),
    seed: get("seed", undefined),
  };
}

/**
 * KL(policy ‖ reference), where the policy's likelihood is known:
 * - `sample` policies: Σ_t KL(π_t ‖ ref_t) along each policy sample, with both next-token
 *   distributions computed exactly from the model's full softmax (temperature, top-k, top-p
 *   applied as the sampler does) — an unbiased estimate of the sequence-level KL. Infinite when
 *   the policy puts mass where the reference has none.
 * - `bon`/`won` whose candidates are reference samples: the mean of log π_BoN(y)/π_ref(y) over the
 *   chosen outputs, with the exact Best-of-N likelihood ratio under the reference's empirical
 *   reward CDF (ties shared), beside the analytic bound log N − (N−1)/N.
 * - anything else (greedy, beam, DeAL): not available.
 */
async function estimateKL(
  model: LanguageModel,
  spec: StrategySpec,
  referenceSampling: SamplingOptions,
  reference: ReferencePolicy,
  prompts: readonly (PromptScores & {
    policyTexts: { tokens: Token[]; prefix: Token[] }[];
    referenceSorted: number[];
  })[],
  klSamples: number,
  seeded: boolean,
  signal?: AbortSignal,
): Promise<KLEstimate> {
  if (spec.name === "sample") {
    const policy = samplingOf(spec, referenceSampling);
    if (
      policy.temperature === referenceSampling.temperature &&
      (policy.topK ?? 0) === (referenceSampling.topK ?? 0) &&
      (policy.topP ?? 1) === (referenceSampling.topP ?? 1)
    )
      return { estimate: 0, method: "the policy samples exactly as the reference does" };
    const totals: number[] = [];
    for (const prompt of prompts) {
      for (const sample of prompt.policyTexts.slice(0, klSamples)) {
        const prefixes = sample.tokens.map((_, t) => [...sample.prefix, ...sample.tokens.slice(0, t)]);
        if (prefixes.length === 0) {
          totals.push(0);
          continue;
        }
        const dists = await model.nextTokenDistributions(prefixes, { topK: model.vocabularySize, signal });
        totals.push(dists.reduce((sum, d) => sum + stepKL(d, policy, referenceSampling), 0));
      }
    }
    return {
      estimate: mean(totals),
      method: `Σ_t exact per-token KL along ${totals.length} policy samples (full next-token distributions)`,
    };
  }
  if ((spec.name === "bon" || spec.name === "won") && seeded) {
    const n = typeof spec.params.n === "number" ? spec.params.n : 4;
    const policy = samplingOf(spec, referenceSampling);
    const same =
      policy.temperature === reference.sampling.temperature &&
      (policy.topK ?? 0) === reference.sampling.topK &&
      (policy.topP ?? 1) === reference.sampling.topP;
    if (!same)
      return {
        estimate: null,
        method: "Best-of-N over a sampler other than the reference: likelihood ratio not available",
        analyticBound: analyticBoNKL(n),
      };
    const ratios = prompts.flatMap((p) =>
      p.policy.map((score) =>
        bonLogRatio(p.referenceSorted, score, n, spec.name === "won" ? "worst" : "best"),
      ),
    );
    return {
      estimate: mean(ratios),
      method: `mean log π_${spec.name}(y)/π_ref(y), exact ${spec.name} likelihood ratio under the reference's empirical reward CDF`,
      analyticBound: analyticBoNKL(n),
    };
  }
  return { estimate: null, method: `not available: ${spec.name} has no tractable likelihood` };
}

function stepKL(
  sorted: readonly TokenLogprob[],
  policy: SamplingOptions,
  reference: SamplingOptions,
): number {
  const p = samplerDistribution(sorted, policy);
  const q = new Map(samplerDistribution(sorted, reference));
  let kl = 0;
  for (const [token, pt] of p) {
    if (pt <= 0) continue;
    const qt = q.get(token) ?? 0;
    if (qt <= 0) return Number.POSITIVE_INFINITY;
    kl += pt * Math.log(pt / qt);
  }
  return kl;
}
