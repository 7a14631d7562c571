import { describe, expect, it } from "vitest";
import { TillerError } from "../errors.js";
import { defineReward } from "./custom.js";
import { keywordsReward } from "./keywords.js";
import { lengthReward } from "./length.js";
import { mix, scoreComponents, scoreComponentsAll } from "./mix.js";
import { input } from "./testInput.js";
import { type RewardInput, scoreAll } from "./types.js";

const chars = defineReward({ name: "chars", description: "text length", score: ({ text }) => text.length });
const asyncChars = defineReward({
  name: "async",
  description: "text length, async, with a batch form that counts its calls",
  score: async ({ text }) => text.length,
  scoreBatch: async (inputs: readonly RewardInput[]) => {
    batchCalls++;
    return inputs.map(({ text }) => text.length * 10);
  },
});
let batchCalls = 0;

describe("mix", () => {
  it("is the weighted sum of its components", async () => {
    const kw = keywordsReward(["dog", "ball"]);
    const m = mix([
      { reward: kw, weight: 2 },
      { reward: chars, weight: -0.5 },
    ]);
    expect(m.score(input("a dog"))).toBeCloseTo(2 * 0.5 - 0.5 * 5);
    expect(m.components?.map((c) => c.weight)).toEqual([2, -0.5]);
    expect(m.description).toBe("2*keywords + -0.5*chars");
    expect(await scoreAll(m, [input("dog"), input("ball dog")])).toEqual([2 * 0.5 - 1.5, 2 - 4]);
  });

  it("stays synchronous when its components are, and awaits async ones", async () => {
    expect(typeof mix([{ reward: chars, weight: 1 }]).score(input("ab"))).toBe("number");
    const m = mix([
      { reward: chars, weight: 1 },
      { reward: asyncChars, weight: 3 },
    ]);
    const value = m.score(input("ab"));
    expect(value).toBeInstanceOf(Promise);
    expect(await value).toBe(2 + 3 * 2);
  });

  it("delegates batches to the components' batched forms, once per batch", async () => {
    const m = mix([
      { reward: chars, weight: 1 },
      { reward: asyncChars, weight: 2 },
    ]);
    batchCalls = 0;
    expect(await m.scoreBatch?.([input("a"), input("abc")])).toEqual([1 + 20, 3 + 60]);
    expect(batchCalls).toBe(1);
    expect(await m.scoreBatch?.([])).toEqual([]);
  });

  it("skips zero-weight components", () => {
    const boom = defineReward({
      name: "boom",
      description: "throws",
      score: () => {
        throw new Error("scored");
      },
    });
    expect(
      mix([
        { reward: boom, weight: 0 },
        { reward: chars, weight: 1 },
      ]).score(input("abc")),
    ).toBe(3);
  });

  it("is saturated iff all non-zero-weight components are", () => {
    const kw = keywordsReward(["dog"]);
    const len = lengthReward({ min: 1, max: 5, unit: "words" }); // never saturated
    const closed = input("a dog ", false);
    expect(mix([{ reward: kw, weight: 1 }]).saturated?.(closed)).toBe(true);
    expect(mix([{ reward: kw, weight: 1 }]).saturated?.(input("a dog", false))).toBe(false);
    expect(
      mix([
        { reward: kw, weight: 1 },
        { reward: len, weight: 1 },
      ]).saturated?.(closed),
    ).toBe(false);
    expect(
      mix([
        { reward: kw, weight: 1 },
        { reward: len, weight: 0 },
      ]).saturated?.(closed),
    ).toBe(true);
  });

  it("wants the union of positive-weight components' words", () => {
    const m = mix([
      { reward: keywordsReward(["dog", "ball"]), weight: 1 },
      { reward: keywordsReward(["ball", "tree"]), weight: 0.5 },
      { reward: keywordsReward(["bad"]), weight: -1 },
    ]);
    expect(m.wantedWords?.(input("a", false))).toEqual(["dog", "ball", "tree"]);
  });

  it("rejects non-finite weights", () => {
    expect(() => mix([{ reward: chars, weight: Number.NaN }])).toThrow(TillerError);
    expect(() => mix([{ reward: chars, weight: Number.POSITIVE_INFINITY }])).toThrow(/finite/);
  });
});

describe("scoreComponents", () => {
  it("reports each component's unweighted value by unique name", async () => {
    const m = mix([
      { reward: keywordsReward(["dog"]), weight: 2 },
      { reward: keywordsReward(["cat"]), weight: 1 },
      { reward: asyncChars, weight: 5 },
    ]);
    expect(await scoreComponents(m, input("dog"))).toEqual({ keywords: 1, "keywords#2": 0, async: 30 });
    expect(await scoreComponents(chars, input("dog"))).toEqual({ chars: 3 });
    expect(await scoreComponentsAll(m, [input("cat"), input("")])).toEqual([
      { keywords: 0, "keywords#2": 1, async: 30 },
      { keywords: 0, "keywords#2": 0, async: 0 },
    ]);
  });
});

describe("defineReward", () => {
  it("wraps a user function", () => {
    const r = defineReward({
      name: "bang",
      description: "-1 per !",
      score: ({ text }) => -text.split("!").length + 1,
    });
    expect(r.score(input("hi! there!"))).toBe(-2);
    expect(r.name).toBe("bang");
  });

  it("rejects a definition without a name or score", () => {
    expect(() => defineReward({ name: " ", description: "", score: () => 0 })).toThrow(/non-empty name/);
    expect(() => defineReward({ name: "x", description: "" } as never)).toThrow(/score function/);
  });
});
