import { describe, expect, it } from "vitest";
import { lengthPenalty, lengthReward } from "./length.js";
import { input } from "./testInput.js";

const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`).join(" ");

describe("lengthReward", () => {
  const r = lengthReward({ min: 4, max: 6, unit: "words" }); // scale = 5

  it("is 0 inside the window", () => {
    for (const n of [4, 5, 6]) expect(r.score(input(words(n)))).toBe(0);
  });

  it("penalises finished texts outside the window, relative to its centre", () => {
    expect(r.score(input(words(2)))).toBeCloseTo(-2 / 5);
    expect(r.score(input(words(9)))).toBeCloseTo(-3 / 5);
    expect(r.score(input(""))).toBeCloseTo(-4 / 5);
  });

  it("does not penalise unfinished texts below the window, but does above it", () => {
    expect(r.score(input(words(1), false))).toBe(0);
    expect(r.score(input(words(8), false))).toBeCloseTo(-2 / 5);
  });

  it("counts tokens in t mode", () => {
    const t = lengthReward({ min: 2, max: 3, unit: "tokens" });
    expect(t.score(input("ab", true, { tokens: [1, 2, 3, 4, 5] }))).toBeCloseTo(-2 / 2.5);
    expect(t.score(input("ab", true, { tokens: [1, 2] }))).toBe(0);
    expect(() => t.score(input("ab", true))).toThrow(/tokens/);
  });

  it("is smooth-ish: monotone in the distance", () => {
    const w = { min: 10, max: 20, unit: "words" as const };
    const scores = [21, 25, 30, 40].map((n) => lengthPenalty(n, w, true));
    for (let i = 1; i < scores.length; i++) expect(scores[i]).toBeLessThan(scores[i - 1]);
  });

  it("rejects bad windows", () => {
    expect(() => lengthReward({ min: 5, max: 4, unit: "words" })).toThrow(/MIN <= MAX/);
  });
});
