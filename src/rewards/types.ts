import { TillerError } from "../errors.js";
import type { Token } from "../lm/types.js";

/** What a reward judges: a continuation of `prompt`, possibly unfinished. */
export interface RewardInput {
  prompt: string;
  /** The generated continuation so far (not including the prompt). */
  text: string;
  /** Its tokens, when known (rewards that count tokens use them; may be empty otherwise). */
  tokens: readonly Token[];
  /** True when generation has ended; an unfinished text may still become right. */
  finished: boolean;
}

/**
 * A reward maps a (prompt, continuation) to a number, higher is better. Programmatic rewards are
 * synchronous; model-judged ones return a promise and should implement `scoreBatch`.
 */
export interface Reward {
  /** Short identifier, used as the key in `{rewards: {name: value}}` outputs. */
  readonly name: string;
  /** One line saying what it measures and its range. */
  readonly description: string;
  score(input: RewardInput): number | Promise<number>;
  /** Optional batched form (one model call for many texts). Same order as `inputs`. */
  scoreBatch?(inputs: readonly RewardInput[]): Promise<number[]>;
  /**
   * Optional: true when no further continuation of this (unfinished) text can change its score,
   * so a search may stop consulting the reward and fall back to plain decoding.
   */
  saturated?(input: RewardInput): boolean;
  /**
   * Optional: words the reward still wants to see in the text (e.g. missing keywords). A search
   * may add candidate tokens that begin one of them (lexical lookahead).
   */
  wantedWords?(input: RewardInput): string[];
  /** Optional: the components of a composite reward, to report each one's value. */
  readonly components?: readonly { reward: Reward; weight: number }[];
}

/**
 * `value` when it is a finite number; otherwise a TillerError naming the reward. A NaN or
 * infinite reward would spread through a mix into every search score and silently decide it.
 */
export function checkedScore(reward: Reward, value: unknown): number {
  if (typeof value === "number" && Number.isFinite(value)) return value;
  const shown =
    typeof value === "number" ? String(value) : `${typeof value} ${JSON.stringify(value) ?? ""}`.trim();
  throw new TillerError(
    `reward "${reward.name}" returned ${shown}; a reward must return a finite number`,
    "bad-reward-value",
  );
}

/** Scores many inputs, using the reward's batched form when it has one; every value checked finite. */
export async function scoreAll(reward: Reward, inputs: readonly RewardInput[]): Promise<number[]> {
  if (reward.scoreBatch) {
    const values = await reward.scoreBatch(inputs);
    if (!Array.isArray(values) || values.length !== inputs.length)
      throw new TillerError(
        `reward "${reward.name}": scoreBatch returned ${Array.isArray(values) ? values.length : "no"} values for ${inputs.length} inputs`,
        "bad-reward-value",
      );
    return values.map((value) => checkedScore(reward, value));
  }
  return Promise.all(inputs.map(async (input) => checkedScore(reward, await reward.score(input))));
}
