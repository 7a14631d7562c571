import { describe, expect, it } from "vitest";
import { TillerError } from "../errors.js";
import { inflectedForms, keywordCoverage, keywordsReward } from "./keywords.js";
import { input } from "./testInput.js";

describe("keywordCoverage", () => {
  it("is whole-word and case-insensitive", () => {
    const c = keywordCoverage("The Dog chased a BALL into the dogma tree-house.", [
      "dog",
      "ball",
      "tree",
      "cat",
    ]);
    expect(c.present).toEqual(["dog", "ball", "tree"]);
    expect(c.missing).toEqual(["cat"]);
    expect(c.soft).toBeCloseTo(0.75);
    expect(c.hard).toBe(0);
    expect(keywordCoverage("dogma and doghouse", ["dog"]).soft).toBe(0);
  });

  it("hard is 1 only when all are present", () => {
    expect(keywordCoverage("a dog, a ball", ["dog", "ball"])).toEqual({
      soft: 1,
      hard: 1,
      present: ["dog", "ball"],
      missing: [],
    });
  });

  it("matches inflections only when asked", () => {
    const text = "Two dogs barked; the cat's toy was baking while she carried boxes and stopped running.";
    const kws = ["dog", "bark", "cat", "bake", "carry", "box", "stop", "run"];
    expect(keywordCoverage(text, kws).present).toEqual([]);
    expect(keywordCoverage(text, kws, { inflections: true }).missing).toEqual([]);
    expect(keywordCoverage("the mice ran", ["mouse", "run"], { inflections: true }).soft).toBe(0);
    expect(keywordCoverage("a dogma", ["dog"], { inflections: true }).soft).toBe(0);
  });

  it("handles curly apostrophes and phrases", () => {
    expect(keywordCoverage("the dog’s bone", ["dog"], { inflections: true }).soft).toBe(1);
    expect(keywordCoverage("We ate Ice  Cream.", ["ice cream"]).soft).toBe(1);
    expect(keywordCoverage("ice, cream", ["ice cream"]).soft).toBe(1); // only word order counts
    expect(keywordCoverage("ice then cream", ["ice cream"]).soft).toBe(0);
    expect(keywordCoverage("cream ice", ["ice cream"]).soft).toBe(0);
  });

  it("lists regular forms", () => {
    expect(inflectedForms("fly")).toEqual(expect.arrayContaining(["flies", "flied", "flying"]));
    expect(inflectedForms("bake")).toEqual(expect.arrayContaining(["baked", "baking", "bakes"]));
    expect(inflectedForms("see")).not.toContain("seing");
    expect(inflectedForms("stop")).toEqual(expect.arrayContaining(["stopped", "stopping"]));
  });
});

describe("keywordsReward", () => {
  const soft = keywordsReward(["dog", "ball"]);
  const hard = keywordsReward(["dog", "ball"], { mode: "hard" });

  it("scores soft and hard coverage", () => {
    expect(soft.score(input("a dog"))).toBe(0.5);
    expect(hard.score(input("a dog"))).toBe(0);
    expect(hard.score(input("a dog and a ball"))).toBe(1);
    expect(soft.score(input(""))).toBe(0);
  });

  it("wants the missing keywords", () => {
    expect(soft.wantedWords?.(input("the dog", false))).toEqual(["ball"]);
    expect(soft.wantedWords?.(input("dog ball", false))).toEqual([]);
  });

  it("is saturated only when no continuation can undo a match", () => {
    expect(soft.saturated?.(input("a ball and a dog", false))).toBe(false); // "dog" → "dogma"
    expect(soft.saturated?.(input("a ball and a dog'", false))).toBe(false); // → "dog's"
    expect(soft.saturated?.(input("a ball and a dog ", false))).toBe(true);
    expect(soft.saturated?.(input("a ball and a dog.", false))).toBe(true);
    expect(soft.saturated?.(input("a ball and a dog", true))).toBe(true);
    expect(soft.saturated?.(input("a dog and a dog", false))).toBe(false); // no ball
    // An earlier closed occurrence is enough even if the last word may still grow.
    expect(soft.saturated?.(input("dog, ball, dog", false))).toBe(true);
  });

  it("rejects empty keyword lists", () => {
    expect(() => keywordsReward([])).toThrow(TillerError);
    expect(() => keywordsReward(["..."])).toThrow(/no word characters/);
  });
});
