import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { align } from "../src/align.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { keywordsReward } from "../src/rewards/keywords.js";
import { loadTestModel } from "./helpers.js";

let model: LlamaCppModel;
beforeAll(async () => {
  model = await loadTestModel();
});
afterAll(async () => {
  await model?.dispose();
});

// Prompts and keywords of the dev set where DeAL once committed a spelled-out keyword or a whole
// lookahead past the budget (e.g. 22 tokens for maxTokens 17).
const tasks = [
  { prompt: "It was a sunny day.", keywords: ["elephant", "lion", "shop"] },
  { prompt: "It was a sunny day.", keywords: ["shop", "doll", "hug"] },
  { prompt: "Once upon a time", keywords: ["boat", "cookie", "duck"] },
  { prompt: "The kids", keywords: ["truck", "dolls", "friends"] },
];

describe("DeAL keeps the token budget", () => {
  for (const [strategy, drafter] of [
    ["deal", undefined],
    ["deal:raw", undefined],
    // Verified lookaheads (drafted whole, completed by the target's rollouts where a draft falls short).
    ["deal", "prompt"],
    ["deal:lookahead=draft-only", "prompt"],
  ] as const)
    it(`${strategy}${drafter ? ` drafted by ${drafter}` : ""}: never more tokens than maxTokens, keywords kept whole, a run that needs more stops at it`, async () => {
      let atBudget = 0;
      for (const task of tasks)
        for (const maxTokens of [9, 17]) {
          const result = await align(model, {
            prompt: task.prompt,
            reward: keywordsReward(task.keywords),
            strategy,
            maxTokens,
            trace: true,
            ...(drafter ? { drafter } : {}),
          });
          // A keyword the search chose is committed whole: the budget never cuts one in half.
          for (const step of result.trace?.steps ?? [])
            for (const c of step.candidates.filter((c) => c.kept && c.lexical))
              expect(result.text, `step ${step.step} kept "${c.text}"`).toContain(c.text.trim());
          expect(
            result.tokens.length,
            `${task.keywords} at ${maxTokens}: ${result.text}`,
          ).toBeLessThanOrEqual(maxTokens);
          if (result.tokens.length === maxTokens) {
            expect(result.stopReason).toBe("max-tokens");
            atBudget++;
          }
        }
      expect(atBudget).toBeGreaterThan(0);
    });
});
