import { TillerError } from "../errors.js";
import type { Rollout, SamplingOptions } from "../lm/types.js";
import type { Reward, RewardInput } from "../rewards/types.js";
import { scoreAll } from "../rewards/types.js";
import { callOptions } from "./calls.js";
import { type RolloutText, rolloutText } from "./rolloutText.js";
import { streamSeeds } from "./seeds.js";
import type { DraftingStats } from "./speculative/searchDrafting.js";
import { draftingStats, searchRollouts } from "./speculative/searchDrafting.js";
import { StepLog } from "./steps.js";
import type { DecodeOutput, Strategy } from "./strategy.js";
import { type DecodeContext, type GenerationResult, innerContext } from "./types.js";

export type Pick = "best" | "worst";

export interface BestOfNOptions {
  /** Candidates sampled (N ≥ 1). */
  n: number;
  /** The reward that picks among them (any Reward: raw, calibrated, transformed, mixed). */
  reward: Reward;
  /** "best" (Best-of-N, default) keeps the highest reward; "worst" (worst-of-N) the lowest. */
  pick?: Pick;
  /** How candidates are sampled; candidate i uses seed `streamSeed(seed, "bon", i)`. Default temperature 1. */
  sampling?: SamplingOptions;
}

/** One sampled candidate with its reward. */
export interface Candidate extends RolloutText {
  /** The raw rollout (stop token included, if any). */
  rollout: Rollout;
  reward: number;
  seed: number;
}

/** Validates N (an integer ≥ 1), with a clear error. */
export function checkN(n: number, what = "Best-of-N"): number {
  if (!Number.isInteger(n) || n < 1)
    throw new TillerError(`${what}: N must be an integer ≥ 1, got ${n}`, "bad-n");
  return n;
}

/** Index of the highest (best) or lowest (worst) value; ties go to the earliest. */
export function pickIndex(values: readonly number[], pick: Pick): number {
  let chosen = 0;
  for (let i = 1; i < values.length; i++) {
    const better = pick === "best" ? values[i] > values[chosen] : values[i] < values[chosen];
    // NaN never wins; a NaN incumbent loses to any number.
    if (better || (Number.isNaN(values[chosen]) && !Number.isNaN(values[i]))) chosen = i;
  }
  return chosen;
}

/**
 * Best-of-N (and worst-of-N): N samples drawn in one batched `rollouts` call (each with its own
 * seed), scored as finished texts in one `scoreAll` call, and the highest-reward one kept (lowest
 * for `pick: "worst"`, the red-team view). Ties go to the earliest candidate, so worst-of-N with r
 * picks exactly what Best-of-N with −r picks. With `context.trace`, the trace lists all N
 * candidates with their rewards. `score` is the chosen candidate's reward.
 */
export function bestOfN(
  options: BestOfNOptions,
): Strategy & { candidates(context: DecodeContext): Promise<Candidate[]> } {
  const n = checkN(options.n, options.pick === "worst" ? "worst-of-N" : "Best-of-N");
  const pick = options.pick ?? "best";
  const sampling: SamplingOptions = { temperature: 1, ...options.sampling };
  if (!((sampling.temperature ?? 0) > 0))
    throw new TillerError(
      `${pick === "best" ? "bon" : "won"}: temperature must be > 0 (N greedy samples are all the same), got ${sampling.temperature}`,
      "bad-strategy-param",
    );
  const name = pick === "best" ? "bon" : "won";

  async function candidates(context: DecodeContext): Promise<Candidate[]> {
    return (await sampleCandidates(context)).candidates;
  }

  /** The N samples (drafted when the context drafts: same distribution, fewer target calls). */
  async function sampleCandidates(
    context: DecodeContext,
  ): Promise<{ candidates: Candidate[]; drafting?: DraftingStats }> {
    const { model } = context;
    const seeds = streamSeeds(sampling.seed ?? 0, "bon", n);
    const { rollouts: rollout, sessions } = searchRollouts(context);
    const rollouts = await rollout(
      seeds.map((seed) => ({ prefix: context.promptTokens, seed })),
      {
        temperature: sampling.temperature,
        topK: sampling.topK,
        topP: sampling.topP,
        maxTokens: context.maxTokens,
        stopStrings: context.stopStrings,
        ...callOptions(context),
      },
    );
    const texts = rollouts.map((rollout) =>
      rolloutText(model, context.promptTokens, rollout, context.stopStrings),
    );
    const inputs: RewardInput[] = texts.map((t) => ({
      prompt: context.prompt,
      text: t.text,
      tokens: t.tokens,
      finished: true,
    }));
    const rewards = await scoreAll(options.reward, inputs);
    return {
      candidates: texts.map((t, i) => ({ ...t, rollout: rollouts[i], reward: rewards[i], seed: seeds[i] })),
      drafting: draftingStats(sessions),
    };
  }

  return {
    name,
    candidates,
    async decode(context: DecodeContext): Promise<DecodeOutput> {
      const { candidates: all, drafting } = await sampleCandidates(context);
      const rewards = all.map((c) => c.reward);
      const chosen = pickIndex(rewards, pick);
      const best = all[chosen];
      context.emit?.({ type: "text", text: best.text });
      const log = new StepLog(context);
      if (log.active)
        log.add({
          step: 0,
          prefixLength: 0,
          candidates: all.map((c, i) => ({
            token: c.rollout.tokens[0] ?? -1,
            text: c.text,
            logprob: c.logprob,
            rollout: c.text,
            reward: c.reward,
            score: c.reward,
            kept: i === chosen,
          })),
          note: `${n} samples; kept the ${pick === "best" ? "highest" : "lowest"} ${options.reward.name} (candidate ${chosen})`,
        });
      return {
        tokens: best.rollout.tokens,
        logprobs: best.rollout.logprobs,
        stopReason: best.rollout.stopReason,
        score: best.reward,
        trace: log.trace(name, { n, pick, reward: options.reward.name, ...sampling }),
        details: { strategy: name, n, chosen, rewards, ...(drafting ? { drafting } : {}) },
      };
    },
  };
}

/** The outcome of `selectByReward`. */
export interface Selection<T extends Pick = Pick> {
  index: number;
  result: GenerationResult;
  reward: number;
  /** Every result's reward, in order. */
  rewards: number[];
  pick: T;
}

/**
 * Picks among finished generations of any strategies (greedy, beam, DeAL, …) by reward: the
 * highest for "best", the lowest for "worst"; ties go to the earliest. `prompt` is what they
 * continue (calibrated rewards look up its reference).
 */
export async function selectByReward(
  results: readonly GenerationResult[],
  reward: Reward,
  pick: Pick = "best",
  prompt = "",
): Promise<Selection> {
  if (results.length === 0) throw new TillerError("selectByReward: no results to choose from", "bad-n");
  const rewards = await scoreAll(
    reward,
    results.map((r) => ({ prompt, text: r.text, tokens: r.tokens, finished: true })),
  );
  const index = pickIndex(rewards, pick);
  return { index, result: results[index], reward: rewards[index], rewards, pick };
}

/**
 * A strategy that runs other strategies on the same context and keeps the output with the
 * highest (lowest) reward: Best-of-N on top of any strategies' outputs. The candidates' steps
 * and warnings stream live; only the chosen text is committed.
 */
export function selectAmong(strategies: readonly Strategy[], reward: Reward, pick: Pick = "best"): Strategy {
  checkN(strategies.length, "selectAmong");
  return {
    name: `${pick === "best" ? "bon" : "won"}(${strategies.map((s) => s.name).join(",")})`,
    async decode(context: DecodeContext): Promise<DecodeOutput> {
      const outputs: DecodeOutput[] = [];
      // Candidates do not stream their text: only the chosen one is committed.
      for (const strategy of strategies) outputs.push(await strategy.decode(innerContext(context)));
      const texts = outputs.map((o) =>
        rolloutText(context.model, context.promptTokens, o, context.stopStrings),
      );
      const rewards = await scoreAll(
        reward,
        texts.map((t) => ({ prompt: context.prompt, text: t.text, tokens: t.tokens, finished: true })),
      );
      const chosen = pickIndex(rewards, pick);
      context.emit?.({ type: "text", text: texts[chosen].text });
      return {
        ...outputs[chosen],
        score: rewards[chosen],
        details: { strategy: pick === "best" ? "bon" : "won", n: strategies.length, chosen, rewards },
      };
    },
  };
}
