/**
 * Issue 9, class 5 (the rewards part): a reward value that is not a finite number is an error
 * naming the reward, wherever it is used (mix, scoreAll, custom rewards, a real decode), instead of
 * a NaN spreading through the mix into every search score.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { align } from "../src/align.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { defineReward } from "../src/rewards/custom.js";
import { keywordsReward } from "../src/rewards/keywords.js";
import { mix, scoreComponents } from "../src/rewards/mix.js";
import { type Reward, scoreAll } from "../src/rewards/types.js";
import { loadTestModel } from "./helpers.js";

let model: LlamaCppModel;
beforeAll(async () => {
  model = await loadTestModel();
});
afterAll(async () => {
  await model?.dispose();
});

const input = { prompt: "p", text: "a dog", tokens: [], finished: true };

/** A plain Reward object (not through defineReward) returning `value`. */
const raw = (name: string, value: unknown): Reward => ({
  name,
  description: "test",
  score: () => value as number,
});

describe("non-finite reward values", () => {
  it("mix rejects NaN, ±Infinity and non-numbers from a component, naming it", async () => {
    for (const value of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, "1", undefined]) {
      const mixed = mix([
        { reward: keywordsReward(["dog"]), weight: 1 },
        { reward: raw("broken", value), weight: 0.5 },
      ]);
      expect(() => mixed.score(input), String(value)).toThrow(
        /reward "broken" returned .*must return a finite number/,
      );
      await expect(mixed.scoreBatch?.([input])).rejects.toMatchObject({ code: "bad-reward-value" });
    }
  });

  it("async components are checked too", async () => {
    const late: Reward = { name: "late", description: "", score: async () => Number.NaN };
    const mixed = mix([{ reward: late, weight: 1 }]);
    await expect(mixed.score(input)).rejects.toThrow(/reward "late" returned NaN/);
    await expect(scoreComponents(mixed, input)).rejects.toThrow(/reward "late" returned NaN/);
  });

  it("scoreAll checks single and batched scores, and the batch length", async () => {
    await expect(scoreAll(raw("solo", Number.NaN), [input])).rejects.toThrow(/reward "solo" returned NaN/);
    const batch: Reward = {
      name: "batchy",
      description: "",
      score: () => 0,
      scoreBatch: async () => [1, Number.POSITIVE_INFINITY],
    };
    await expect(scoreAll(batch, [input, input])).rejects.toThrow(/reward "batchy" returned Infinity/);
    await expect(scoreAll(batch, [input])).rejects.toThrow(/scoreBatch returned 2 values for 1 inputs/);
  });

  it("defineReward checks what the user's function returns", async () => {
    const sync = defineReward({ name: "mine", description: "", score: () => Number.NaN });
    expect(() => sync.score(input)).toThrow(/reward "mine" returned NaN/);
    const promised = defineReward({ name: "mine-async", description: "", score: async () => 2 });
    await expect(promised.score(input)).resolves.toBe(2);
    const fine = defineReward({ name: "ok", description: "", score: () => 0.25 });
    expect(fine.score(input)).toBe(0.25);
  });

  it("a NaN reward stops a real DeAL decode with the reward's name", async () => {
    const nan = defineReward({ name: "nan-reward", description: "", score: () => Number.NaN });
    await expect(
      align(model, {
        prompt: "Once upon a time",
        reward: mix([
          { reward: keywordsReward(["dog"]), weight: 1 },
          { reward: nan, weight: 1 },
        ]),
        strategy: "deal",
        maxTokens: 8,
      }),
    ).rejects.toMatchObject({ code: "bad-reward-value", message: expect.stringContaining("nan-reward") });
  });
});
