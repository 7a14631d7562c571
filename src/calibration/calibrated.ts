import type { Reward, RewardInput } from "../rewards/types.js";
import { scoreAll } from "../rewards/types.js";
import type { ReferenceSource } from "./reference.js";

/**
 * C(x, y) from sorted reference scores: the fraction of reference samples z with r(x,z) < r,
 * ties counted ½. Always in [0, 1].
 */
export function calibratedValue(sortedReferenceScores: readonly number[], score: number): number {
  const n = sortedReferenceScores.length;
  if (n === 0) return 0.5;
  const below = lowerBound(sortedReferenceScores, score);
  const notAbove = upperBound(sortedReferenceScores, score);
  return (below + 0.5 * (notAbove - below)) / n;
}

/** First index with value ≥ x. */
function lowerBound(sorted: readonly number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index with value > x. */
function upperBound(sorted: readonly number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A calibrated reward, which can also show the reference scores it calibrates against. */
export interface CalibratedReward extends Reward {
  readonly base: Reward;
  readonly reference: ReferenceSource;
  /** r(x, z) of the prompt's reference samples, sorted ascending (computed once, cached). */
  referenceScores(prompt: string): Promise<readonly number[]>;
}

/**
 * InfAlign's calibrated reward: C(x, y) = P_{z ~ π_ref}[r(x, z) < r(x, y)] + ½·P[r(x, z) = r(x, y)],
 * estimated from the reference's m samples for x. It is on [0, 1] whatever r's scale (so it mixes
 * sanely with other rewards in `mix` and DeAL) and uniform on [0, 1] when y itself comes from the
 * reference (for a reward without ties).
 *
 * The reference's samples are scored as finished texts once per prompt and kept in memory.
 * `saturated` and `wantedWords` pass through: C is a monotone function of r for a fixed prompt.
 */
export function calibrated(
  reward: Reward,
  reference: ReferenceSource,
  options: { name?: string } = {},
): CalibratedReward {
  const scores = new Map<string, Promise<number[]>>();

  function referenceScores(prompt: string): Promise<number[]> {
    let cached = scores.get(prompt);
    if (!cached) {
      cached = (async () => {
        const samples = await reference.samples(prompt);
        const inputs: RewardInput[] = samples.map((sample) => ({
          prompt,
          text: sample.text,
          tokens: sample.tokens,
          finished: true,
        }));
        return (await scoreAll(reward, inputs)).sort((a, b) => a - b);
      })();
      scores.set(prompt, cached);
      cached.catch(() => scores.delete(prompt));
    }
    return cached;
  }

  const result: CalibratedReward = {
    name: options.name ?? `calibrated(${reward.name})`,
    description: `InfAlign-calibrated ${reward.name}: share of ${reference.m} reference samples it beats (ties ½), 0..1`,
    base: reward,
    reference,
    referenceScores,
    async score(input: RewardInput): Promise<number> {
      const [sorted, value] = await Promise.all([referenceScores(input.prompt), reward.score(input)]);
      return calibratedValue(sorted, value);
    },
    async scoreBatch(inputs: readonly RewardInput[]): Promise<number[]> {
      const prompts = [...new Set(inputs.map((input) => input.prompt))];
      await reference.prefetch?.(prompts.filter((prompt) => !scores.has(prompt)));
      const [sortedByPrompt, values] = await Promise.all([
        Promise.all(prompts.map(referenceScores)),
        scoreAll(reward, inputs),
      ]);
      const sorted = new Map(prompts.map((prompt, i) => [prompt, sortedByPrompt[i]]));
      return inputs.map((input, i) => calibratedValue(sorted.get(input.prompt) as number[], values[i]));
    },
  };
  if (reward.saturated) result.saturated = (input) => reward.saturated?.(input) ?? false;
  if (reward.wantedWords) result.wantedWords = (input) => reward.wantedWords?.(input) ?? [];
  return result;
}
