import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadTestModel } from "../../test/helpers.js";
import type { LlamaCppModel } from "../lm/llama/LlamaCppModel.js";
import type { LanguageModel } from "../lm/types.js";
import { answerLogprob, DEFAULT_JUDGE_TEMPLATE, fillJudgeTemplate, judgeReward } from "./judge.js";
import { scoreComponents } from "./mix.js";
import { parseRewardSpecs } from "./spec.js";
import { input } from "./testInput.js";

describe("fillJudgeTemplate", () => {
  it("fills every placeholder once, without re-expanding substituted text", async () => {
    expect(
      fillJudgeTemplate("P={prompt} T={text} Q={question} T again={text}", {
        prompt: "a {text}",
        text: "b {question}",
        question: "c?",
      }),
    ).toBe("P=a {text} T=b {question} Q=c? T again=b {question}");
    expect(DEFAULT_JUDGE_TEMPLATE).toMatch(/\{prompt\}[\s\S]*\{text\}[\s\S]*\{question\}/);
  });
});

describe("answerLogprob", () => {
  const dist = [
    { token: 5, logprob: -0.5 },
    { token: 7, logprob: -1.5 },
    { token: 9, logprob: -3 },
  ];
  it("sums the probabilities of the answer's tokens", async () => {
    expect(answerLogprob(dist, [7])).toBeCloseTo(-1.5);
    expect(answerLogprob(dist, [5, 7])).toBeCloseTo(Math.log(Math.exp(-0.5) + Math.exp(-1.5)));
  });
  it("falls back to the k-th logprob, or the given floor", async () => {
    expect(answerLogprob(dist, [42])).toBe(-3);
    expect(answerLogprob(dist, [42], -20)).toBe(-20);
  });
});

describe("judgeReward with the stories model", () => {
  let model: LanguageModel;
  beforeAll(async () => {
    model = await loadTestModel({ contextSize: 256 });
  });
  afterAll(async () => {
    await model?.dispose();
  });

  const texts = [
    input("Once upon a time, there was a little dog named Max.", true, {
      prompt: "Tell a story about a dog.",
    }),
    input("The cat sat", false, { prompt: "Tell a story about a dog." }),
    input("", false, { prompt: "Say something." }),
  ];

  it("gives a finite logprob <= 0", async () => {
    const judge = judgeReward({ model, question: "Is this story about a dog?" });
    for (const t of texts) {
      const value = await judge.score(t);
      expect(Number.isFinite(value)).toBe(true);
      expect(value).toBeLessThanOrEqual(0);
    }
  });

  it("equals the Yes logprob read from the model by hand", async () => {
    const template = "Story: {text}\nIs it happy? Answer:";
    const judge = judgeReward({ model, template, topK: 50 });
    const prefix = await model.tokenize(
      fillJudgeTemplate(template, { prompt: "", text: "Lily was happy.", question: "" }),
    );
    const [dist] = await model.nextTokenDistributions([prefix], { topK: 50 });
    const yes = [
      ...new Set(["Yes", " Yes"].map((s) => (model as LlamaCppModel).tokenizeSync(s, { addBos: false })[0])),
    ];
    expect(await judge.score(input("Lily was happy."))).toBeCloseTo(answerLogprob(dist, yes), 3);
    const no = [
      ...new Set(["No", " No"].map((s) => (model as LlamaCppModel).tokenizeSync(s, { addBos: false })[0])),
    ];
    const normalized = judgeReward({ model, template, topK: 50, normalize: true });
    expect(await normalized.score(input("Lily was happy."))).toBeCloseTo(
      answerLogprob(dist, yes) - answerLogprob(dist, no),
      3,
    );
  });

  it("substitutes the template: same filled text, same score", async () => {
    const a = judgeReward({ model, template: "{prompt} said: {text}. Yes or no?" });
    const b = judgeReward({ model, template: "Tom said: {text}. Yes or no?" });
    const c = judgeReward({ model, template: "Tom said: hello. Yes or no?" });
    const va = await a.score(input("hello", true, { prompt: "Tom" }));
    const vb = await b.score(input("hello", true, { prompt: "ignored" }));
    const vc = await c.score(input("something else"));
    expect(va).toBeCloseTo(vb, 3);
    expect(va).toBeCloseTo(vc, 3);
    const other = await a.score(input("I do not like green eggs", true, { prompt: "The big bad wolf" }));
    expect(other).not.toBeCloseTo(va, 3);
  });

  it("scores a batch in one model call, equal to one-by-one", async () => {
    const judge = judgeReward({ model, question: "Is this story about a dog?" });
    const single: number[] = [];
    for (const t of texts) single.push(await judge.score(t));
    const before = model.usage.calls;
    const batch = await judge.scoreBatch?.(texts);
    expect(model.usage.calls - before).toBe(1);
    expect(batch).toHaveLength(texts.length);
    for (const [i, value] of (batch ?? []).entries()) expect(value).toBeCloseTo(single[i], 3);
  });

  it("uses the floor (or the k-th logprob) when Yes is not in the top-k", async () => {
    const template = "Once upon a";
    const [top] = await model.nextTokenDistributions([await model.tokenize(template)], { topK: 3 });
    const yes = ["Yes", " Yes"].map((s) => (model as LlamaCppModel).tokenizeSync(s, { addBos: false })[0]);
    expect(top.some((entry) => yes.includes(entry.token))).toBe(false); // precondition
    expect(await judgeReward({ model, template, topK: 3, floor: -42 }).score(input("x"))).toBe(-42);
    expect(await judgeReward({ model, template, topK: 3 }).score(input("x"))).toBeCloseTo(top[2].logprob, 3);
  });

  it("keeps the end of a template longer than the context", async () => {
    const judge = judgeReward({ model });
    const long = "The dog ran and ran. ".repeat(200);
    const value = await judge.score(input(long));
    expect(Number.isFinite(value)).toBe(true);
    expect(value).toBeLessThanOrEqual(0);
  });

  it("is built from a judge:QUESTION spec with the given model", async () => {
    const reward = parseRewardSpecs(["keywords:dog", "0.5*judge:Is it about a dog?"], undefined, {
      judgeModel: model,
    });
    const t = input("A dog barked.");
    const direct = await judgeReward({ model, question: "Is it about a dog?" }).score(t);
    expect(await scoreComponents(reward, t)).toEqual({ keywords: 1, judge: expect.closeTo(direct, 3) });
    expect(await reward.score(t)).toBeCloseTo(1 + 0.5 * direct, 3);
  });
});
