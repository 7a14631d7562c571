import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { align } from "../src/align.js";
import { deal } from "../src/decoding/deal/index.js";
import type { DecodeEvent } from "../src/decoding/events.js";
import { createStrategy } from "../src/decoding/registry.js";
import { runStrategy } from "../src/decoding/run.js";
import type { CandidateVeto } from "../src/decoding/veto.js";
import { generate } from "../src/generate.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { promptTokens } from "../src/lm/prompt.js";
import { keywordCoverage, keywordsReward, lengthReward, mix } from "../src/rewards/index.js";
import { loadTestModel } from "./helpers.js";

let model: LlamaCppModel;
beforeAll(async () => {
  model = await loadTestModel();
});
afterAll(async () => {
  await model?.dispose();
});

const run = async (strategy: ReturnType<typeof deal>, prompt: string, maxTokens: number, trace = false) =>
  runStrategy(strategy, { model, prompt, promptTokens: await promptTokens(model, prompt), maxTokens, trace });

describe("DeAL", () => {
  it("with λ = 0 and b = 1 equals greedy, with and without tiller's speed-ups", async () => {
    for (const prompt of ["Once upon a time", "One day, a boy"]) {
      const greedy = await generate(model, { prompt, maxTokens: 40 });
      const reward = keywordsReward(["elephant", "shop"]);
      for (const speedups of [true, false]) {
        const result = await run(
          deal({
            reward,
            k: 5,
            lookahead: 4,
            lambda: 0,
            beams: 1,
            batch: speedups,
            commit: speedups,
            lexical: speedups,
            saturation: speedups,
          }),
          prompt,
          40,
        );
        expect(result.tokens).toEqual(greedy.tokens);
        expect(result.text).toBe(greedy.text);
      }
    }
  });

  it("reaches a keyword that greedy misses (lookahead alone, and with lexical lookahead)", async () => {
    const prompt = "One day, a boy";
    const reward = keywordsReward(["tree"]);
    const greedy = await generate(model, { prompt, maxTokens: 32 });
    expect(keywordCoverage(greedy.text, ["tree"]).hard).toBe(0);
    // Pure lookahead: "They saw a big tree" is 16 tokens of lookahead away, reachable without lexical help.
    const lookaheadOnly = await run(
      deal({ reward, k: 5, lookahead: 16, lambda: 10, beams: 1, lexical: false }),
      prompt,
      32,
    );
    expect(keywordCoverage(lookaheadOnly.text, ["tree"]).hard).toBe(1);
    const full = await run(deal({ reward, k: 5, lookahead: 8, lambda: 50, beams: 1 }), prompt, 32);
    expect(keywordCoverage(full.text, ["tree"]).hard).toBe(1);
  });

  it("covers several keywords on a dev task and stays fluent", async () => {
    const keywords = ["elephant", "lion", "shop"];
    const reward = keywordsReward(keywords, { inflections: true });
    // Without the floor, every keyword is placed (some forced in, e.g. "elephant")…
    const forced = await run(
      deal({ reward, k: 5, lookahead: 8, lambda: 50, beams: 1, floor: Number.NEGATIVE_INFINITY, bridge: 0 }),
      "It was a sunny day.",
      128,
    );
    expect(keywordCoverage(forced.text, keywords, { inflections: true }).soft).toBe(1);
    expect(forced.logprob / forced.tokens.length).toBeGreaterThan(-2);
    // …with the default floor only where they fit: most of them, and no token below the floor.
    const result = await run(
      deal({ reward, k: 5, lookahead: 8, lambda: 50, beams: 1 }),
      "It was a sunny day.",
      128,
    );
    expect(keywordCoverage(result.text, keywords, { inflections: true }).soft).toBeGreaterThanOrEqual(2 / 3);
    expect(result.logprob / result.tokens.length).toBeGreaterThan(-2);
  });

  it("batched and one-by-one rollouts both reach the keywords (float rounding of batches may reorder near-ties)", async () => {
    const reward = keywordsReward(["cat", "ball"]);
    const a = await run(
      deal({ reward, k: 4, lookahead: 6, lambda: 50, beams: 2, batch: true }),
      "Once upon a time",
      48,
    );
    const b = await run(
      deal({ reward, k: 4, lookahead: 6, lambda: 50, beams: 2, batch: false }),
      "Once upon a time",
      48,
    );
    expect(keywordCoverage(a.text, ["cat", "ball"]).hard).toBe(1);
    expect(keywordCoverage(b.text, ["cat", "ball"]).hard).toBe(1);
    // The backend calls differ: one batched call per step versus one call per rollout.
    expect(b.stats.usage.calls).toBeGreaterThan(a.stats.usage.calls);
  });

  it("the saturation fallback costs fewer evaluated tokens once the reward cannot change", async () => {
    const reward = keywordsReward(["girl"]); // greedy writes "girl" within its first few tokens
    const on = await run(
      deal({ reward, k: 5, lookahead: 8, lambda: 50, beams: 1, saturation: true }),
      "Once upon a time",
      64,
    );
    const off = await run(
      deal({ reward, k: 5, lookahead: 8, lambda: 50, beams: 1, saturation: false }),
      "Once upon a time",
      64,
    );
    expect(keywordCoverage(on.text, ["girl"]).hard).toBe(1);
    expect(on.stats.evaluatedTokens).toBeLessThan(off.stats.evaluatedTokens);
  });

  it("never emits a hard-vetoed token, and a veto is just a hook (any CandidateVeto)", async () => {
    const greedy = await generate(model, { prompt: "Once upon a time", maxTokens: 30 });
    const banned = greedy.tokens[5];
    const veto: CandidateVeto = {
      name: "ban-one-token",
      assess: (_context, candidates) => candidates.map((t) => (t === banned ? Number.POSITIVE_INFINITY : 0)),
    };
    const reward = keywordsReward(["dog"]);
    const result = await runStrategy(
      deal({ reward, k: 5, lookahead: 6, lambda: 50, beams: 1, vetoes: [veto] }),
      {
        model,
        prompt: "Once upon a time",
        promptTokens: await promptTokens(model, "Once upon a time"),
        maxTokens: 30,
      },
    );
    expect(result.tokens).not.toContain(banned);
    const beam = await generate(model, {
      prompt: "Once upon a time",
      maxTokens: 30,
      strategy: "beam",
      beamWidth: 2,
      vetoes: [veto],
    });
    expect(beam.tokens).not.toContain(banned);
    const sampled = await generate(model, {
      prompt: "Once upon a time",
      maxTokens: 30,
      strategy: "sample",
      seed: 1,
      vetoes: [veto],
    });
    expect(sampled.tokens).not.toContain(banned);
  });

  it("returns a JSON search trace with steps, candidates, rollouts and scores", async () => {
    const reward = mix([
      { reward: keywordsReward(["ball"]), weight: 1 },
      { reward: lengthReward({ min: 10, max: 30, unit: "words" }), weight: 0.5 },
    ]);
    const result = await run(
      // No floor, no candidate slack: every one of the k candidates is listed (both drop unlikely ones).
      deal({
        reward,
        k: 3,
        lookahead: 4,
        lambda: 20,
        beams: 2,
        floor: Number.NEGATIVE_INFINITY,
        candidateSlack: Number.POSITIVE_INFINITY,
      }),
      "Once upon a time",
      24,
      true,
    );
    const trace = JSON.parse(JSON.stringify(result.trace));
    expect(trace.strategy).toBe("deal");
    expect(trace.steps.length).toBeGreaterThan(0);
    const first = trace.steps[0];
    expect(first.candidates.length).toBeGreaterThanOrEqual(3);
    expect(first.candidates.filter((c: { kept: boolean }) => c.kept).length).toBeLessThanOrEqual(2);
    for (const c of first.candidates) {
      expect(typeof c.text).toBe("string");
      expect(typeof c.rollout).toBe("string");
      expect(Number.isFinite(c.score)).toBe(true);
    }
    // Candidates are listed best first.
    const scores = first.candidates.map((c: { score: number }) => c.score);
    expect([...scores].sort((a: number, b: number) => b - a)).toEqual(scores);
  });

  it("streams its steps as they are decided and its text as it becomes final (the events add up to the result)", async () => {
    const prompt = "Once upon a time";
    const reward = keywordsReward(["ball", "tree"]);
    for (const [spec, stopStrings] of [
      ["deal:k=3,l=4", []],
      ["deal:k=3,l=4,b=2", []],
      ["deal:k=3,l=4", ["Lily"]],
    ] as const) {
      const events: DecodeEvent[] = [];
      const result = await runStrategy(createStrategy(spec, { reward }), {
        model,
        prompt,
        promptTokens: await promptTokens(model, prompt),
        maxTokens: 32,
        stopStrings,
        trace: true,
        emit: (event) => events.push(event),
      });
      const texts = events.flatMap((e) => (e.type === "text" ? [e.text] : []));
      expect(texts.join(""), spec).toBe(result.text);
      const steps = events.flatMap((e) => (e.type === "step" ? [e.step] : []));
      expect(steps, spec).toEqual(result.trace?.steps);
      // With one beam, text arrives step by step, before the search ends.
      if (!spec.includes("b=2") && result.text.length > 0) {
        const firstText = events.findIndex((e) => e.type === "text");
        const lastStep = events.findLastIndex((e) => e.type === "step");
        expect(firstText, spec).toBeLessThan(lastStep);
      }
    }
  });

  it("every strategy returns a trace through the registry", async () => {
    const reward = keywordsReward(["ball"]);
    for (const spec of ["greedy", "sample:seed=1", "beam:width=2", "bon:n=3", "deal:k=3,l=3"]) {
      const strategy = createStrategy(spec, {
        reward,
        vetoes: [{ name: "none", assess: (_c, cands) => cands.map(() => 0) }],
      });
      const result = await run(strategy as ReturnType<typeof deal>, "Once upon a time", 12, true);
      expect(result.trace?.steps.length, spec).toBeGreaterThan(0);
      const bare = await run(
        createStrategy(spec, { reward }) as ReturnType<typeof deal>,
        "Once upon a time",
        12,
        true,
      );
      expect(bare.trace?.steps.length, `${spec} without vetoes`).toBeGreaterThan(0);
    }
  });

  it("align reports each reward component and the mixed score", async () => {
    const reward = mix([
      { reward: keywordsReward(["ball"]), weight: 2 },
      { reward: lengthReward({ min: 5, max: 10, unit: "words" }), weight: 1 },
    ]);
    const result = await align(model, {
      prompt: "Once upon a time",
      reward,
      strategy: "deal:k=3,l=4",
      maxTokens: 40,
    });
    expect(Object.keys(result.rewards)).toEqual(["keywords", "length"]);
    expect(result.score).toBeCloseTo(2 * result.rewards.keywords + result.rewards.length, 9);
  });

  it("honours stop strings in every variant, and its rewards see the cut text", async () => {
    const reward = keywordsReward(["dog"]);
    // `deal` drafted by prompt lookup: verified lookaheads and finish (verification rounds) stop too.
    for (const [spec, drafter] of [["deal:paper"], ["deal"], ["deal:commit=false"], ["deal", "prompt"]]) {
      const result = await runStrategy(createStrategy(spec, { reward }), {
        model,
        prompt: "Once upon a time",
        promptTokens: await promptTokens(model, "Once upon a time"),
        maxTokens: 40,
        stopStrings: ["Lily"],
        ...(drafter ? { drafting: { drafter } } : {}),
      });
      expect(result.text, spec).not.toContain("Lily");
      if (result.stopReason === "stop-string")
        expect(
          model.detokenize(result.tokens, { context: await promptTokens(model, "Once upon a time") }),
        ).toBe(result.text.trimEnd());
    }
  });

  it("ends with context-full instead of throwing when lexical candidates would overflow the context", async () => {
    const small = await loadTestModel({ contextSize: 24, sequences: 4 });
    try {
      const reward = keywordsReward(["elephant", "butterfly"]);
      const result = await runStrategy(deal({ reward, k: 3, lookahead: 4, lambda: 50, beams: 1 }), {
        model: small,
        prompt: "Once upon a time",
        promptTokens: await promptTokens(small, "Once upon a time"),
        maxTokens: 60,
      });
      expect(["context-full", "end-of-generation"]).toContain(result.stopReason);
      expect(
        result.tokens.length + (await promptTokens(small, "Once upon a time")).length,
      ).toBeLessThanOrEqual(24);
    } finally {
      await small.dispose();
    }
  });

  it("beam search and DeAL end cleanly when every continuation is vetoed", async () => {
    const everything: CandidateVeto = {
      name: "ban-all",
      assess: (_c, cands) => cands.map(() => Number.POSITIVE_INFINITY),
    };
    const beam = await generate(model, {
      prompt: "Once upon a time",
      maxTokens: 10,
      strategy: "beam",
      beamWidth: 2,
      vetoes: [everything],
    });
    expect(beam.tokens).toEqual([]);
    const reward = keywordsReward(["dog"]);
    const searched = await run(
      deal({ reward, k: 3, lookahead: 3, lambda: 50, beams: 1, vetoes: [everything] }),
      "Once upon a time",
      10,
    );
    expect(searched.tokens).toEqual([]);
  });

  it("a soft veto lowers the search score but never the reported logprobs", async () => {
    const soft: CandidateVeto = { name: "soft-all", assess: (_c, cands) => cands.map(() => 5) };
    const reward = keywordsReward(["dog"]);
    const plain = await run(
      deal({ reward, k: 3, lookahead: 4, lambda: 0, beams: 1 }),
      "Once upon a time",
      12,
    );
    const softened = await runStrategy(
      deal({ reward, k: 3, lookahead: 4, lambda: 0, beams: 1, vetoes: [soft] }),
      {
        model,
        prompt: "Once upon a time",
        promptTokens: await promptTokens(model, "Once upon a time"),
        maxTokens: 12,
      },
    );
    expect(softened.tokens).toEqual(plain.tokens);
    // Same tokens; logprobs equal up to the float rounding of different batch compositions.
    expect(softened.logprob).toBeCloseTo(plain.logprob, 2);
  });
});
