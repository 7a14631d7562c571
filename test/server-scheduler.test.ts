import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import type { Rollout } from "../src/lm/types.js";
import { ScheduledModel } from "../src/server/batching/scheduledModel.js";
import { StepScheduler } from "../src/server/batching/scheduler.js";
import { loadTestModel } from "./helpers.js";

let model: LlamaCppModel;
const PROMPTS = ["Once upon a time", "The dog ran to the park", "Lily had a red ball", "One day, Tom"];

beforeAll(async () => {
  model = await loadTestModel({ sequences: 8 });
});

afterAll(async () => {
  await model?.dispose();
});

async function libraryRollout(
  prompt: string,
  options: { maxTokens: number; temperature?: number; seed?: number },
) {
  const [rollout] = await model.rollouts([{ prefix: await model.tokenize(prompt) }], options);
  return rollout;
}

describe("StepScheduler (continuous batching)", () => {
  it("batches concurrent greedy rollouts into shared steps and gives each the tokens it gets alone", async () => {
    const alone: Rollout[] = [];
    for (const prompt of PROMPTS) alone.push(await libraryRollout(prompt, { maxTokens: 24 }));
    const scheduler = new StepScheduler(model, 8);
    const batched = await Promise.all(
      PROMPTS.map(async (prompt) => {
        const view = new ScheduledModel(scheduler);
        const [rollout] = await view.rollouts([{ prefix: await model.tokenize(prompt) }], { maxTokens: 24 });
        return rollout;
      }),
    );
    expect(batched.map((r) => r.tokens)).toEqual(alone.map((r) => r.tokens));
    expect(batched.map((r) => r.stopReason)).toEqual(alone.map((r) => r.stopReason));
    // Four rollouts of ≤ 24 tokens in far fewer than 4 × 24 backend calls: they shared steps.
    expect(scheduler.stats.steps).toBeGreaterThan(0);
    expect(scheduler.stats.steppedItems / scheduler.stats.steps).toBeGreaterThan(2);
  });

  it("keeps a sampled rollout's seeded draws when it is preempted and stepped with others", async () => {
    const expected = await libraryRollout(PROMPTS[0], { maxTokens: 40, temperature: 0.9, seed: 11 });
    const scheduler = new StepScheduler(model, 8);
    const view = new ScheduledModel(scheduler);
    const tokensSeen: number[] = [];
    const first = view.rollouts([{ prefix: await model.tokenize(PROMPTS[0]) }], {
      maxTokens: 40,
      temperature: 0.9,
      seed: 11,
      onToken: (_i, token) => tokensSeen.push(token),
    });
    // Join once the first has produced some tokens alone: it is preempted and continues stepped.
    while (tokensSeen.length < 5) await new Promise((resolve) => setTimeout(resolve, 1));
    const other = new ScheduledModel(scheduler).rollouts([{ prefix: await model.tokenize(PROMPTS[1]) }], {
      maxTokens: 30,
      temperature: 0.7,
      seed: 3,
    });
    const [[rollout]] = await Promise.all([first, other]);
    expect(scheduler.stats.preemptions).toBeGreaterThanOrEqual(1);
    expect(rollout.tokens).toEqual(expected.tokens);
    expect(tokensSeen).toEqual(expected.tokens);
  });

  it("answers next-token lookups like the model, batched with rollouts", async () => {
    const prefixes = await Promise.all(PROMPTS.map((prompt) => model.tokenize(prompt)));
    const direct = await model.nextTokenDistributions(prefixes, { topK: 5 });
    const scheduler = new StepScheduler(model, 8);
    const [lookups] = await Promise.all([
      new ScheduledModel(scheduler).nextTokenDistributions(prefixes, { topK: 5 }),
      new ScheduledModel(scheduler).rollouts([{ prefix: prefixes[0] }], { maxTokens: 8 }),
    ]);
    expect(lookups.map((d) => d.map((e) => e.token))).toEqual(direct.map((d) => d.map((e) => e.token)));
    for (const [i, dist] of lookups.entries())
      for (const [j, entry] of dist.entries()) expect(entry.logprob).toBeCloseTo(direct[i][j].logprob, 4);
  });

  it("ends an aborted rollout at once with its partial tokens; the others finish", async () => {
    const scheduler = new StepScheduler(model, 8);
    const controller = new AbortController();
    let seen = 0;
    const aborted = new ScheduledModel(scheduler).rollouts([{ prefix: await model.tokenize(PROMPTS[2]) }], {
      maxTokens: 200,
      signal: controller.signal,
      onToken: () => {
        if (++seen === 6) controller.abort();
      },
    });
    const other = new ScheduledModel(scheduler).rollouts([{ prefix: await model.tokenize(PROMPTS[3]) }], {
      maxTokens: 30,
    });
    const [[a], [b]] = await Promise.all([aborted, other]);
    expect(a.stopReason).toBe("aborted");
    expect(a.tokens.length).toBeGreaterThanOrEqual(6);
    expect(a.tokens.length).toBeLessThan(10);
    expect(b.tokens.length).toBeGreaterThan(0);
    expect(scheduler.depth).toBe(0);
  });

  it("charges each request its share: the views' usage adds up to the model's", async () => {
    const scheduler = new StepScheduler(model, 8);
    const before = { ...model.usage };
    const views = PROMPTS.map(() => new ScheduledModel(scheduler));
    await Promise.all(
      views.map(async (view, i) =>
        view.rollouts([{ prefix: await model.tokenize(PROMPTS[i]) }], { maxTokens: 12 }),
      ),
    );
    const sum = (field: "evaluatedTokens" | "generatedTokens") =>
      views.reduce((s, v) => s + v.usage[field], 0);
    expect(sum("evaluatedTokens")).toBe(model.usage.evaluatedTokens - before.evaluatedTokens);
    expect(sum("generatedTokens")).toBe(model.usage.generatedTokens - before.generatedTokens);
    for (const view of views) expect(view.usage.evaluatedTokens).toBeGreaterThan(0);
  });

  it("rejects a prefix that does not fit the context before queueing it", async () => {
    const scheduler = new StepScheduler(model, 8);
    const long = new Array(model.contextSize).fill(model.bosToken ?? 1);
    await expect(
      new ScheduledModel(scheduler).rollouts([{ prefix: long }], { maxTokens: 4 }),
    ).rejects.toThrow(/context holds/);
  });
});
