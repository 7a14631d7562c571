import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { align } from "../src/align.js";
import { createStrategy, parseStrategySpec } from "../src/decoding/registry.js";
import { runStrategy } from "../src/decoding/run.js";
import type { Draft, Drafter, DraftRequest } from "../src/decoding/speculative/index.js";
import type { SearchDrafting } from "../src/decoding/speculative/searchDrafting.js";
import type { DecodeContext, GenerationResult } from "../src/decoding/types.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { keywordsReward } from "../src/rewards/index.js";
import { loadDraftTwin, loadTestModel } from "./helpers.js";

let small: LlamaCppModel;
let twin: LlamaCppModel;

beforeAll(async () => {
  small = await loadTestModel({ sequences: 8 });
  twin = await loadDraftTwin();
});
afterAll(async () => {
  await small?.dispose();
  await twin?.dispose();
});

/**
 * A drafter that is right for one token, then wrong: every draft of two or more tokens has a
 * rejection, so the verification's reject-and-correct path runs inside the search.
 */
function rightThenWrong(model: LlamaCppModel): Drafter {
  return {
    name: "right-then-wrong",
    async propose(requests: readonly DraftRequest[]): Promise<Draft[]> {
      const rollouts = await model.rollouts(
        requests.map((r) => ({ prefix: r.context, maxTokens: r.n })),
        { maxTokens: Math.max(...requests.map((r) => r.n)) },
      );
      return rollouts.map(({ tokens }) => ({
        tokens: tokens.map((t, i) => (i === 1 ? (t + 1) % model.vocabularySize : t)),
      }));
    },
  };
}

const reward = keywordsReward(["elephant", "shop", "hug"]);
// l named: the rejection checks need drafts of 2+ tokens inside a lookahead (its first rounds are plain).
const DEAL = "deal:natural=true,k=4,b=2,l=6";

async function decode(spec: string, prompt: string, drafting?: SearchDrafting): Promise<GenerationResult> {
  const strategy = createStrategy(parseStrategySpec(spec), { reward });
  const context: DecodeContext = {
    model: small,
    draft: twin,
    prompt,
    promptTokens: await small.tokenize(prompt),
    maxTokens: 40,
    drafting,
  };
  return runStrategy(strategy, context);
}

function draftingOf(result: GenerationResult) {
  const d = result.details;
  if (d?.strategy !== "deal" && d?.strategy !== "bon") throw new Error(`no search details: ${d?.strategy}`);
  return d.drafting;
}

describe("DeAL's lookaheads drafted through the context's drafter", () => {
  it("writes the same text as undrafted DeAL, for every drafter and several draft lengths", async () => {
    for (const prompt of ["Tom had a red ball."]) {
      const plain = await decode(DEAL, prompt);
      expect(draftingOf(plain)).toBeUndefined();
      const drafters: SearchDrafting["drafter"][] = ["model", "prompt", rightThenWrong(small)];
      for (const drafter of drafters)
        for (const draftTokens of [3, "auto"] as const) {
          const drafted = await decode(DEAL, prompt, { drafter, draftTokens });
          const label = `${typeof drafter === "string" ? drafter : drafter.name}, ${draftTokens}`;
          expect(drafted.tokens, label).toEqual(plain.tokens);
          expect(drafted.text, label).toBe(plain.text);
          const stats = draftingOf(drafted);
          expect(stats, label).toBeDefined();
          expect(stats?.targetCalls, label).toBeGreaterThan(0);
          expect(stats?.accepted, label).toBeLessThanOrEqual(stats?.drafted ?? 0);
          if (drafter === "model") {
            // Same weights: every greedy draft token is the target's.
            expect(stats?.drafted, label).toBeGreaterThan(0);
            expect(stats?.acceptanceRate, label).toBe(1);
          }
          if (typeof drafter !== "string") {
            expect(stats?.drafted, label).toBeGreaterThan(0);
            // The second token of every longer draft is rejected.
            expect(stats?.accepted, label).toBeLessThan(stats?.drafted ?? 0);
          }
        }
    }
  });

  it("with a draft model of the same weights, the lookaheads take fewer target evaluations per token", async () => {
    const prompt = "One day, a girl named Mia";
    const plain = await decode(DEAL, prompt);
    const drafted = await decode(DEAL, prompt, { drafter: "model", draftTokens: 4 });
    expect(drafted.tokens).toEqual(plain.tokens);
    const stats = draftingOf(drafted);
    // Each drafted round verifies up to 4 draft tokens plus one of the target's in one call.
    expect(stats?.accepted ?? 0).toBeGreaterThan(stats?.targetCalls ?? 0);
  });

  it("verifyAhead: one call verifies every step's drafted lookaheads — the same text in fewer target calls than round by round", async () => {
    const prompt = "Tom had a red ball.";
    const plain = await decode(DEAL, prompt);
    for (const drafter of ["model", rightThenWrong(small)] as const) {
      const label = typeof drafter === "string" ? drafter : drafter.name;
      const verified = await decode(DEAL, prompt, { drafter, draftTokens: "auto" });
      const rounds = await decode(`${DEAL},verifyAhead=false`, prompt, { drafter, draftTokens: "auto" });
      expect(verified.text, label).toBe(plain.text);
      expect(rounds.text, label).toBe(plain.text);
      const v = draftingOf(verified);
      expect(v?.drafted, label).toBeGreaterThan(0);
      if (drafter === "model") {
        // Same weights: every drafted lookahead is accepted whole, one call per step.
        expect(v?.acceptanceRate, label).toBe(1);
        expect(v?.targetCalls ?? 0, label).toBeLessThan(draftingOf(rounds)?.targetCalls ?? 0);
      } else expect(v?.accepted, label).toBeLessThan(v?.drafted ?? 0);
    }
  });

  it("a saturation finish drafted by prompt lookup (verification rounds, no payoff meter) writes the undrafted text", async () => {
    const keywords = keywordsReward(["ball"]);
    const prompt = "Ben had a red ball. He liked his ball.";
    const run = async (drafting?: SearchDrafting, spec = "deal") =>
      runStrategy(createStrategy(parseStrategySpec(spec), { reward: keywords }), {
        model: small,
        prompt,
        promptTokens: await small.tokenize(prompt),
        maxTokens: 64,
        drafting,
      });
    const plain = await run();
    const drafted = await run({ drafter: "prompt" });
    const two = await run({ drafter: "prompt", draftTokens: 2 });
    const metered = await run({ drafter: "prompt" }, "deal:verifyAhead=false");
    const saturatedAt = plain.details?.strategy === "deal" ? plain.details.saturatedAt : undefined;
    // Most of the text is the finish: the keyword is placed early.
    expect(saturatedAt).toBeLessThan(plain.tokens.length / 2);
    for (const result of [drafted, two, metered]) expect(result.text).toBe(plain.text);
    const stats = draftingOf(drafted);
    // The story repeats its prompt: lookups propose, and accepted drafts save target calls — more
    // than drafting through the payoff meter, which first judges plain rounds against drafted ones.
    expect(stats?.accepted ?? 0).toBeGreaterThan(0);
    expect(stats?.targetCalls ?? 0).toBeLessThan(draftingOf(metered)?.targetCalls ?? 0);
  });

  it("verifyAhead scores a keyword's tail inside the first verification round: no call of its own, the same text", async () => {
    // The tails of the keywords' spellings, as spellOut scores them (after the first token).
    const tails = new Set<string>();
    for (const word of ["elephant", "shop", "hug"])
      for (const form of [` ${word}`, ` ${word[0].toUpperCase()}${word.slice(1)}`]) {
        const lead = await small.tokenize("the", { addBos: false });
        const full = await small.tokenize(`the${form}`, { addBos: false });
        if (full.length - lead.length > 1) tails.add(full.slice(lead.length + 1).join(","));
      }
    expect(tails.size).toBeGreaterThan(0);
    const decodeCounting = async (drafting?: SearchDrafting) => {
      let tailCalls = 0;
      const counted: LlamaCppModel = Object.create(small);
      counted.scoreContinuations = (requests, options) => {
        if (requests.some((r) => tails.has(r.continuation.join(","))) && options?.topK === undefined)
          tailCalls++;
        return small.scoreContinuations(requests, options);
      };
      const prompt = "Tom had a red ball.";
      const result = await runStrategy(createStrategy(parseStrategySpec(DEAL), { reward }), {
        model: counted,
        draft: twin,
        prompt,
        promptTokens: await small.tokenize(prompt),
        maxTokens: 40,
        drafting,
      });
      return { result, tailCalls };
    };
    const plain = await decodeCounting();
    const verified = await decodeCounting({ drafter: "model" });
    expect(verified.result.text).toBe(plain.result.text);
    // Undrafted DeAL spells keywords out in calls of their own; verified lookaheads need none.
    expect(plain.tailCalls).toBeGreaterThan(0);
    expect(verified.tailCalls).toBe(0);
  });

  it("with no lookahead (l = 0) a drafted DeAL still spells its keywords out: the undrafted text", async () => {
    const spec = "deal:natural=true,k=4,b=2,l=0";
    const prompt = "Tom had a red ball.";
    const plain = await decode(spec, prompt);
    const drafted = await decode(spec, prompt, { drafter: "model" });
    expect(drafted.text).toBe(plain.text);
    expect(drafted.tokens).toEqual(plain.tokens);
  });

  it("align passes --draft to DeAL: drafting stats in the details", async () => {
    const result = await align(small, {
      prompt: "It was a sunny day.",
      reward,
      strategy: DEAL,
      maxTokens: 32,
      drafter: "prompt",
      draftTokens: 3,
    });
    const stats = draftingOf(result);
    expect(stats?.drafter).toBe("prompt");
    expect(stats?.targetCalls).toBeGreaterThan(0);
    const plain = await align(small, {
      prompt: "It was a sunny day.",
      reward,
      strategy: DEAL,
      maxTokens: 32,
    });
    expect(result.text).toBe(plain.text);
  });

  it('drafter "model" without a draft model is a clear error', async () => {
    await expect(
      align(small, { prompt: "It was a sunny day.", reward, strategy: DEAL, maxTokens: 8, drafter: "model" }),
    ).rejects.toThrow(/needs a draft model/);
  });
});

describe("Best-of-N's samples drafted", () => {
  it("draws its samples through speculative sampling: stats, seeded, rewards of the texts it keeps", async () => {
    const spec = "bon:n=4,seed=7";
    const drafted = await decode(spec, "It was a sunny day.", {
      drafter: rightThenWrong(small),
      draftTokens: 4,
    });
    const again = await decode(spec, "It was a sunny day.", {
      drafter: rightThenWrong(small),
      draftTokens: 4,
    });
    expect(again.text).toBe(drafted.text);
    const stats = draftingOf(drafted);
    expect(stats?.drafted).toBeGreaterThan(0);
    // Under sampling a deterministic draft is kept with probability p(token): some are, the
    // corrupted second tokens (nearly) never are.
    expect(stats?.accepted).toBeGreaterThan(0);
    expect(stats?.accepted).toBeLessThan(stats?.drafted ?? 0);
    const d = drafted.details;
    if (d?.strategy !== "bon") throw new Error("no bon details");
    expect(d.rewards).toHaveLength(4);
    expect(d.rewards[d.chosen]).toBe(Math.max(...d.rewards));
    expect(drafted.tokens.length).toBeGreaterThan(0);
  });
});
