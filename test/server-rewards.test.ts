import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ctrlReward } from "../src/calibration/ctrl.js";
import { ReferencePolicy } from "../src/calibration/reference.js";
import { ksUniform } from "../src/calibration/winrate.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { parseRewardSpecs } from "../src/rewards/spec.js";
import type { RunningServer } from "../src/server/server.js";
import { loadTestModel } from "./helpers.js";
import { openAiError, post, serve } from "./serverHarness.js";

let model: LlamaCppModel;
let server: RunningServer;

const PROMPTS = ["Once upon a time", "The little bird sang", "Tom had a big red ball"];
/** log P(judge says Yes): a continuous reward, so calibrated values have (almost) no ties. */
const JUDGE = "judge:Is the response about a happy child?";
/** Rewards computed without the model: the server's values and the library's agree exactly. */
const EXACT = ["sentiment", "length:8-16w"];
const REFERENCE = { m: 16, max_tokens: 20, seed: 0 };

interface ScoreReply {
  data: { index: number; score: number; raw: number }[];
  reward: string;
  reference: { m: number };
}

beforeAll(async () => {
  model = await loadTestModel({ sequences: 8 });
  server = await serve(model);
});

afterAll(async () => {
  await server?.close();
  await model?.dispose();
});

/** `count` fresh completions per prompt from the reference policy itself (another seed). */
async function referenceDraws(count: number): Promise<{ prompt: string; completion: string }[]> {
  const draws = new ReferencePolicy(model, {
    m: count,
    maxTokens: REFERENCE.max_tokens,
    seed: 777,
    cacheDir: false,
  });
  const pairs = [];
  for (const prompt of PROMPTS)
    for (const sample of await draws.samples(prompt)) pairs.push({ prompt, completion: sample.text });
  return pairs;
}

describe("POST /v1/rewards/score (InfAlign CTRL reward)", () => {
  it("equals the library's ctrlReward on the same inputs", async () => {
    const pairs = await referenceDraws(8);
    const reply = await post(server, "/v1/rewards/score", { reward: EXACT, reference: REFERENCE, pairs });
    expect(reply.status, reply.text).toBe(200);
    const body = reply.body as ScoreReply;
    expect(body.data).toHaveLength(pairs.length);
    expect(body.reference.m).toBe(REFERENCE.m);
    const reference = new ReferencePolicy(model, { m: REFERENCE.m, maxTokens: 20, seed: 0, cacheDir: false });
    const raw = parseRewardSpecs(EXACT, undefined);
    const library = ctrlReward({ reward: raw, reference });
    for (const [i, pair] of pairs.entries()) {
      expect(body.data[i].index).toBe(i);
      expect(body.data[i].score).toBe(await library(pair.prompt, pair.completion));
      const tokens = await model.tokenize(pair.completion, { addBos: false });
      expect(body.data[i].raw).toBe(
        await raw.score({ prompt: pair.prompt, text: pair.completion, tokens, finished: true }),
      );
    }
  });

  it("is uniform on [0, 1] for completions drawn from the reference (a continuous reward)", async () => {
    const pairs = (await referenceDraws(16)).filter((pair) => pair.prompt !== PROMPTS[2]);
    const reply = await post(server, "/v1/rewards/score", { reward: JUDGE, reference: REFERENCE, pairs });
    expect(reply.status, reply.text).toBe(200);
    const scores = (reply.body as ScoreReply).data.map((d) => d.score);
    for (const score of scores) expect(score >= 0 && score <= 1).toBe(true);
    // C ~ U[0, 1] when y ~ π_ref: two-sample KS bound (α = 0.01) for the draws against m per prompt.
    const n = scores.length;
    expect(ksUniform(scores)).toBeLessThan(1.63 * Math.sqrt((n + REFERENCE.m) / (n * REFERENCE.m)));
    expect(new Set(scores).size).toBeGreaterThan(8);
  });

  it("draws each prompt's reference once: a second call reuses the cached samples", async () => {
    const pairs = [{ prompt: PROMPTS[0], completion: " there was a happy girl." }];
    const first = (await post(server, "/v1/rewards/score", { reward: JUDGE, reference: REFERENCE, pairs }))
      .body as ScoreReply;
    const policy = server.context.references.policy(server.context.references.settingsOf(REFERENCE));
    const calls = policy.stats.rolloutCalls;
    const again = (await post(server, "/v1/rewards/score", { reward: JUDGE, reference: REFERENCE, pairs }))
      .body as ScoreReply;
    expect(policy.stats.rolloutCalls).toBe(calls);
    expect(again.data[0].score).toBe(first.data[0].score);
  });

  it("transforms the calibrated reward (log) and reports the raw reward too", async () => {
    const pairs = [{ prompt: PROMPTS[1], completion: " a happy song for the children." }];
    const plain = (await post(server, "/v1/rewards/score", { reward: JUDGE, reference: REFERENCE, pairs }))
      .body as ScoreReply;
    const logged = (
      await post(server, "/v1/rewards/score", {
        reward: JUDGE,
        reference: REFERENCE,
        transform: "log",
        pairs,
      })
    ).body as ScoreReply;
    expect(logged.data[0].score).toBeCloseTo(Math.log(Math.max(plain.data[0].score, 1e-6)), 6);
    expect(logged.data[0].raw).toBeCloseTo(plain.data[0].raw, 5);
    expect(plain.data[0].raw).toBeLessThan(0); // a log-probability
  });

  it("bad bodies: unknown transform, m over the limit, a bad reward spec → 400 naming the field", async () => {
    const pairs = [{ prompt: "x", completion: "y" }];
    const cases: [Record<string, unknown>, string][] = [
      [{ reward: "sentiment", transform: "cube", pairs }, "transform"],
      [{ reward: "sentiment", reference: { m: 100_000 }, pairs }, "reference.m"],
      [{ reward: "keywords:", pairs }, "reward"],
      [{ reward: "sentiment", reference: { m: 1 }, pairs }, "reference.m"],
      [{ reward: "sentiment", pairs, extra: 1 }, "extra"],
    ];
    for (const [body, param] of cases) {
      const reply = await post(server, "/v1/rewards/score", body);
      expect(reply.status, reply.text).toBe(400);
      expect(openAiError(reply).param).toBe(param);
    }
  });
});
