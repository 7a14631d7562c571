import { TillerError } from "../errors.js";
import { checkedScore, type Reward, type RewardInput, scoreAll } from "./types.js";

export interface WeightedReward {
  reward: Reward;
  weight: number;
}

/**
 * A weighted sum of rewards, Σ wᵢ·Rᵢ, itself a Reward (every trade-off is a weight vector).
 * Weights may be negative; components with weight 0 are not scored at all.
 * - `score` stays synchronous when every scored component is.
 * - `scoreBatch` scores each component over all inputs with its batched form (one judge call
 *   per judge, not one per input), components concurrently.
 * - `saturated` is true iff every component with a non-zero weight is saturated (a component
 *   without `saturated` never is).
 * - `wantedWords` is the union of the positive-weight components' wanted words.
 */
export function mix(parts: readonly WeightedReward[], options: { name?: string } = {}): Reward {
  if (!Array.isArray(parts)) throw new TillerError("mix needs an array of { reward, weight }", "bad-reward");
  for (const part of parts) {
    if (typeof part?.reward?.score !== "function" || typeof part.reward.name !== "string")
      throw new TillerError(
        "each part of a mix needs { reward, weight } with a Reward (name, score)",
        "bad-reward",
      );
  }
  for (const { reward, weight } of parts) {
    if (!Number.isFinite(weight)) {
      throw new TillerError(
        `weight of reward ${reward.name} must be a finite number, got ${weight}`,
        "bad-weight",
      );
    }
  }
  const components = parts.map(({ reward, weight }) => ({ reward, weight }));
  const active = components.filter((part) => part.weight !== 0);
  const names = uniqueNames(components.map((part) => part.reward));
  return {
    name: options.name ?? "mix",
    description:
      components.length === 0
        ? "empty mix: always 0"
        : components.map((part, i) => `${part.weight}*${names[i]}`).join(" + "),
    components,
    score(input: RewardInput): number | Promise<number> {
      const values = active.map((part) => part.reward.score(input));
      const checked = (settled: readonly unknown[]) =>
        weightedSum(settled.map((value, i) => checkedScore(active[i].reward, value)));
      if (values.some((value) => value instanceof Promise)) return Promise.all(values).then(checked);
      return checked(values);
    },
    async scoreBatch(inputs: readonly RewardInput[]): Promise<number[]> {
      const perPart = await Promise.all(active.map((part) => scoreAll(part.reward, inputs)));
      return inputs.map((_, i) => weightedSum(perPart.map((values) => values[i])));
    },
    saturated(input: RewardInput): boolean {
      return active.every((part) => part.reward.saturated?.(input) ?? false);
    },
    wantedWords(input: RewardInput): string[] {
      const words = new Set<string>();
      for (const part of active) {
        if (part.weight > 0) for (const word of part.reward.wantedWords?.(input) ?? []) words.add(word);
      }
      return [...words];
    },
  };

  function weightedSum(values: readonly number[]): number {
    return values.reduce((sum, value, i) => sum + active[i].weight * value, 0);
  }
}

/** Reward names made unique in order: "keywords", "length", "keywords#2", … */
export function uniqueNames(rewards: readonly Reward[]): string[] {
  const seen = new Map<string, number>();
  return rewards.map((reward) => {
    const count = (seen.get(reward.name) ?? 0) + 1;
    seen.set(reward.name, count);
    return count === 1 ? reward.name : `${reward.name}#${count}`;
  });
}

/**
 * Each component's own (unweighted) value by name, for `{rewards: {name: value}}` outputs. A
 * reward without components reports itself. Repeated names get "#2", "#3", … suffixes.
 */
export async function scoreComponents(reward: Reward, input: RewardInput): Promise<Record<string, number>> {
  return (await scoreComponentsAll(reward, [input]))[0];
}

/** `scoreComponents` over many inputs, using each component's batched form. */
export async function scoreComponentsAll(
  reward: Reward,
  inputs: readonly RewardInput[],
): Promise<Record<string, number>[]> {
  const parts = reward.components?.map((part) => part.reward) ?? [reward];
  const names = uniqueNames(parts);
  const perPart = await Promise.all(parts.map((part) => scoreAll(part, inputs)));
  return inputs.map((_, i) => Object.fromEntries(names.map((name, j) => [name, perPart[j][i]])));
}
