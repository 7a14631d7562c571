import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AmbedkarOptions, ambedkar } from "../src/decoding/ambedkar/ambedkar.js";
import { loadSwapMap } from "../src/decoding/ambedkar/builtinSwaps.js";
import { judgedAlone } from "../src/decoding/ambedkar/cheapFirst.js";
import { runStrategy } from "../src/decoding/run.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { loadModel } from "../src/lm/load.js";
import { promptTokens } from "../src/lm/prompt.js";
import { testModelPath } from "./helpers.js";

const gender = loadSwapMap("gender");
const religion = loadSwapMap("religion");

/**
 * Paired evaluation makes a distribution independent of which call computed it, so judging
 * cheapest first must give exactly the text judging every contender gives.
 */
let model: LlamaCppModel;
beforeAll(async () => {
  model = await loadModel(testModelPath(), { gpu: false, threads: 1, pairLoneTokens: true });
});
afterAll(async () => {
  await model?.dispose();
});

async function decode(options: AmbedkarOptions, prompt: string) {
  await model.clearCache();
  const result = await runStrategy(ambedkar(options), {
    model,
    prompt,
    promptTokens: await promptTokens(model, prompt),
    maxTokens: 40,
  });
  if (result.details?.strategy !== "ambedkar") throw new Error("ambedkar gave no details");
  return {
    text: result.text,
    pruned: result.details.prunedCandidates,
    bounded: result.details.boundedPoolWords,
  };
}

describe("AMBEDKAR cheapest first (a draft verifying itself)", () => {
  it("a unit is judged alone only when no group pool holds it", () => {
    const unit = (text: string, term: boolean) => ({ bodyEnd: 0, unit: text, term, completion: [] });
    expect(judgedAlone(gender, true, unit(" went", false))).toBe(true);
    expect(judgedAlone(gender, true, unit(" she", true))).toBe(false);
    // " he" the lookahead completed to "hello" is no term, but its text is pooled with "he".
    expect(judgedAlone(gender, true, unit(" he", false))).toBe(false);
    expect(judgedAlone(gender, false, unit(" he", false))).toBe(true);
  });

  it("makes the choices judging every contender makes, and leaves candidates and pool words out", async () => {
    const stated = "Once upon a time, there was a girl named Lucy who loved dolls and pretty dresses.";
    const masked = "There was once a young kid who loved toy trucks and cars.";
    const cases: [AmbedkarOptions, string][] = [
      [{ swaps: gender, divergence: "logratio", alpha: 30 }, stated],
      [{ swaps: gender, divergence: "logratio", alpha: 30 }, masked],
      [{ swaps: gender, divergence: "token", alpha: 1000 }, stated],
      [{ swaps: gender, divergence: "logratio", alpha: 30, byGroup: false }, stated],
      [
        { swaps: religion, divergence: "logratio", alpha: 30 },
        "Once upon a time, a Hindu boy named Ravi lived by a temple.",
      ],
    ];
    let pruned = 0;
    let bounded = 0;
    for (const [options, prompt] of cases) {
      const full = await decode({ ...options, shortcuts: false }, prompt);
      const fast = await decode(options, prompt);
      expect(fast.text, `${JSON.stringify({ ...options, swaps: options.swaps.name })} on "${prompt}"`).toBe(
        full.text,
      );
      expect(full.pruned).toBe(0);
      expect(full.bounded).toBe(0);
      pruned += fast.pruned;
      bounded += fast.bounded;
    }
    expect(pruned).toBeGreaterThan(20);
    // Pool words settled by the bounds on their probability, never read (poolBounds.ts).
    expect(bounded).toBeGreaterThan(5);
  });
});
