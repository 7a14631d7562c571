import { TillerError } from "../errors.js";
import type { Reward, RewardInput } from "./types.js";
import { countWords } from "./words.js";

export type LengthUnit = "words" | "tokens";

export interface LengthWindow {
  min: number;
  max: number;
  unit: LengthUnit;
}

/**
 * Length reward: 0 inside [min, max], a linear penalty outside it, relative to the window:
 *
 *   n < min:  −(min − n) / scale      (finished texts only; an unfinished text below the window
 *                                      is not yet wrong and scores 0)
 *   n > max:  −(n − max) / scale      (finished or not: more text cannot make it shorter)
 *
 * with scale = max(1, (min + max) / 2), the window's centre. So missing the window by 10% of
 * its target length costs 0.1, whatever the window's size. Range: (−∞, 0]; below the window the
 * penalty is at most 2 (n = 0 with min = max).
 *
 * Words are counted as in words.ts; tokens are `input.tokens.length` (the caller must supply
 * the tokens of a non-empty text, else this throws).
 */
export function lengthPenalty(n: number, window: LengthWindow, finished: boolean): number {
  const scale = Math.max(1, (window.min + window.max) / 2);
  if (n > window.max) return -(n - window.max) / scale;
  if (n < window.min && finished) return -(window.min - n) / scale;
  return 0;
}

export function lengthOf(input: RewardInput, unit: LengthUnit): number {
  if (unit === "words") return countWords(input.text);
  if (input.tokens.length === 0 && input.text.length > 0) {
    throw new Error("length reward in tokens needs RewardInput.tokens for a non-empty text");
  }
  return input.tokens.length;
}

export function lengthReward(window: LengthWindow, options: { name?: string } = {}): Reward {
  const { min, max, unit } = window;
  if (!Number.isInteger(min) || !Number.isInteger(max) || min < 0 || max < min) {
    throw new TillerError(
      `length window ${min}-${max} must be whole numbers with 0 <= MIN <= MAX`,
      "bad-reward-spec",
    );
  }
  return {
    name: options.name ?? "length",
    description: `length within ${min}-${max} ${unit}; 0 inside, -(distance / ${Math.max(1, (min + max) / 2)}) outside`,
    score(input: RewardInput): number {
      return lengthPenalty(lengthOf(input, unit), window, input.finished);
    },
  };
}
