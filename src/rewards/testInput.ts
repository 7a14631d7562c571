import type { RewardInput } from "./types.js";

/** A RewardInput for tests: prompt "", no tokens, finished unless said otherwise. */
export function input(text: string, finished = true, extra: Partial<RewardInput> = {}): RewardInput {
  return { prompt: "", text, tokens: [], finished, ...extra };
}
