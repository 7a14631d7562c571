import { keywordsReward } from "../rewards/keywords.js";
import { lengthReward } from "../rewards/length.js";
import { mix, type WeightedReward } from "../rewards/mix.js";
import type { Reward, RewardInput } from "../rewards/types.js";
import { countWords } from "../rewards/words.js";
import type { EvalTask } from "./tasks.js";

/**
 * The reward an eval task implies, which reward-guided strategies (bon, won, deal) steer by:
 *
 *   R = 1 · keywords(soft coverage, inflections on)          — in [0, 1], when the task has keywords
 *     + 1 · length(minWords..maxWords words)                 — in (−∞, 0], when minWords/maxWords is set
 *
 * The keyword term uses the same matching as the eval's coverage metric (whole-word,
 * case-insensitive, regular inflections). The length term is 0 inside the window and
 * −distance/centre outside it (see `lengthReward`); with only one bound the
 * other side is free and the penalty is relative to that bound. With weight 1 each, missing one
 * keyword of four (−0.25) costs as much as overshooting the window's centre by 25%.
 */
export function taskReward(task: EvalTask): Reward {
  const parts: WeightedReward[] = [];
  if (task.keywords.length > 0)
    parts.push({ reward: keywordsReward(task.keywords, { mode: "soft", inflections: true }), weight: 1 });
  if (task.minWords !== undefined && task.maxWords !== undefined)
    parts.push({
      reward: lengthReward({ min: task.minWords, max: task.maxWords, unit: "words" }),
      weight: 1,
    });
  else if (task.minWords !== undefined || task.maxWords !== undefined)
    parts.push({ reward: oneSidedLength(task.minWords, task.maxWords), weight: 1 });
  return mix(parts, { name: `task:${task.id}` });
}

/** A window with one bound: the penalty is relative to that bound (the other side is free). */
function oneSidedLength(min: number | undefined, max: number | undefined): Reward {
  const bound = (min ?? max) as number;
  const scale = Math.max(1, bound);
  return {
    name: "length",
    description:
      min !== undefined
        ? `at least ${min} words; -(shortfall / ${scale}) when finished below it`
        : `at most ${max} words; -(excess / ${scale}) above it`,
    score(input: RewardInput): number {
      const n = countWords(input.text);
      if (min !== undefined) return input.finished && n < min ? -(min - n) / scale : 0;
      return n > bound ? -(n - bound) / scale : 0;
    },
  };
}
