import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { calibrated, calibratedValue } from "../src/calibration/calibrated.js";
import { ctrlReward } from "../src/calibration/ctrl.js";
import { ReferencePolicy } from "../src/calibration/reference.js";
import { negated, parseTransform, transformed } from "../src/calibration/transforms.js";
import {
  analyticBoNKL,
  analyticBoNWinRate,
  bonLogRatio,
  ksUniform,
  maxWinRate,
  mean,
  minWinRate,
} from "../src/calibration/winrate.js";
import { bestOfN, selectByReward } from "../src/decoding/bestOfN.js";
import { createStrategy } from "../src/decoding/registry.js";
import { runStrategy } from "../src/decoding/run.js";
import type { DecodeContext } from "../src/decoding/types.js";
import { TillerError } from "../src/errors.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { defineReward } from "../src/rewards/custom.js";
import { keywordsReward } from "../src/rewards/keywords.js";
import { lengthReward } from "../src/rewards/length.js";
import { mix } from "../src/rewards/mix.js";
import { scoreAll } from "../src/rewards/types.js";
import { loadTestModel, testModelPath } from "./helpers.js";

/**
 * A continuous reward for the statistical checks: a deterministic pseudo-random number in [0, 1)
 * from the text (FNV-1a). Its distribution under the reference has no atoms except identical
 * texts, so C is (nearly) tie-free — unlike keywords on the tiny model, which is mostly 0.
 */
const textHash = defineReward({
  name: "texthash",
  description: "FNV-1a hash of the text / 2^32",
  score: ({ text }) => {
    let h = 0x811c9dc5;
    for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
    return h / 2 ** 32;
  },
});

const PROMPTS = [
  "Once upon a time",
  "The little dog",
  "One day, Lily",
  "Tom and Sue",
  "She",
  "It was",
  "The sun",
  "Ben had a",
];
const MAX_TOKENS = 16;

let model: LlamaCppModel;
let cache: string;
beforeAll(async () => {
  model = await loadTestModel();
  cache = mkdtempSync(join(tmpdir(), "tiller-ref-"));
});
afterAll(async () => {
  await model?.dispose();
  rmSync(cache, { recursive: true, force: true });
});

function reference(options: { m?: number; seed?: number; dir?: string | false; warnings?: string[] } = {}) {
  return new ReferencePolicy(model, {
    m: options.m ?? 64,
    maxTokens: MAX_TOKENS,
    seed: options.seed ?? 0,
    modelPath: testModelPath(),
    cacheDir: options.dir ?? false,
    onWarning: (message) => options.warnings?.push(message),
  });
}

function context(prompt: string, extra: Partial<DecodeContext> = {}): DecodeContext {
  return { model, prompt, promptTokens: model.tokenizeSync(prompt), maxTokens: MAX_TOKENS, ...extra };
}

describe("calibrated reward", () => {
  it("C(x, y) counts ties ½ and stays in [0, 1]", async () => {
    const sorted = [0, 1, 1, 2];
    expect(calibratedValue(sorted, -5)).toBe(0);
    expect(calibratedValue(sorted, 1)).toBe((1 + 0.5 * 2) / 4);
    expect(calibratedValue(sorted, 1.5)).toBe(3 / 4);
    expect(calibratedValue(sorted, 9)).toBe(1);
  });

  it("is uniform on [0, 1] when y is itself drawn from the reference (KS)", async () => {
    const ref = reference({ m: 64 });
    // y: reference-policy samples with another seed, so independent of the m calibration samples.
    const ys = reference({ m: 20, seed: 99 });
    const c = calibrated(textHash, ref);
    await Promise.all([ref.prefetch(PROMPTS), ys.prefetch(PROMPTS)]);
    const values: number[] = [];
    for (const prompt of PROMPTS) {
      const samples = await ys.samples(prompt);
      values.push(
        ...(await scoreAll(
          c,
          samples.map((s) => ({ prompt, text: s.text, tokens: s.tokens, finished: true })),
        )),
      );
    }
    expect(values.every((v) => v >= 0 && v <= 1)).toBe(true);
    const k = values.length; // 8 prompts × 20
    const total = PROMPTS.length * ref.m; // 8 × 64
    // Two-sample KS at α = 0.01 (C is the reference's empirical CDF, so this compares two samples),
    // plus 1/(m+1) for C's discreteness (it takes values in {0, 1/m, …, 1}).
    const critical = 1.628 * Math.sqrt(1 / k + 1 / total) + 1 / (ref.m + 1);
    const d = ksUniform(values);
    console.log(
      `KS: D = ${d.toFixed(4)} over ${k} values, critical value ${critical.toFixed(4)} (α = 0.01); mean C = ${mean(values).toFixed(3)}`,
    );
    expect(d).toBeLessThan(critical);
    // And it is a real check: the raw hash values of a *shifted* draw are far from uniform.
    expect(ksUniform(values.map((v) => v ** 3))).toBeGreaterThan(critical);
  });

  it("Best-of-N of the calibrated reward wins ≈ N/(N+1) against the reference, KL beside log N − (N−1)/N", async () => {
    const ref = reference({ m: 64 });
    const c = calibrated(textHash, ref);
    const trials = 8;
    for (const n of [1, 2, 4, 8]) {
      const wins: number[] = [];
      const logRatios: number[] = [];
      for (const prompt of PROMPTS) {
        const sorted = await c.referenceScores(prompt);
        for (let t = 0; t < trials; t++) {
          const out = await bestOfN({ n, reward: c, sampling: { temperature: 1, seed: 1000 + t } }).decode(
            context(prompt),
          );
          // The chosen output's calibrated reward is its win rate against one reference sample.
          wins.push(out.score as number);
          const text = model.detokenize(
            out.tokens.filter((tok) => !model.isStopToken(tok)),
            { context: model.tokenizeSync(prompt).slice(-8) },
          );
          logRatios.push(
            bonLogRatio(sorted, await textHash.score({ prompt, text, tokens: [], finished: true }), n),
          );
        }
      }
      const estimate = mean(wins);
      const sd = Math.sqrt(mean(wins.map((w) => (w - estimate) ** 2)));
      // 99% normal interval of the mean. Its variance has two parts: the trials (sd²/n), and the
      // m reference samples per prompt that C is estimated from, shared by all trials of a prompt:
      // Var_z[1 − F(z)^N] / (prompts · m), with Var_z[1 − U^N] = 1 − 2/(N+1) + 1/(2N+1) − (N/(N+1))².
      const refVar = (1 - 2 / (n + 1) + 1 / (2 * n + 1) - (n / (n + 1)) ** 2) / (PROMPTS.length * ref.m);
      const half = 2.576 * Math.sqrt(sd ** 2 / wins.length + refVar);
      const kl = mean(logRatios);
      console.log(
        `BoN N=${n}: win rate ${estimate.toFixed(3)} ± ${half.toFixed(3)} (99%), analytic ${analyticBoNWinRate(n).toFixed(3)}; ` +
          `KL estimate ${kl.toFixed(3)} nats, analytic bound log N − (N−1)/N = ${analyticBoNKL(n).toFixed(3)}`,
      );
      expect(Math.abs(estimate - analyticBoNWinRate(n))).toBeLessThan(half);
    }
  });

  it("mixes in `mix` and works as a DeAL-style reward; ctrlReward is Φ(C) as a plain function", async () => {
    const ref = reference({ m: 16 });
    const c = calibrated(lengthReward({ min: 5, max: 10, unit: "words" }), ref);
    const mixed = mix([
      { reward: c, weight: 2 },
      { reward: keywordsReward(["dog"]), weight: 1 },
    ]);
    const input = {
      prompt: PROMPTS[0],
      text: " there was a dog who liked to run",
      tokens: [],
      finished: true,
    };
    const [value] = await scoreAll(mixed, [input]);
    const cValue = await c.score(input);
    expect(cValue).toBeGreaterThanOrEqual(0);
    expect(cValue).toBeLessThanOrEqual(1);
    expect(value).toBeCloseTo(2 * cValue + 1, 10);
    const ctrl = ctrlReward({
      reward: lengthReward({ min: 5, max: 10, unit: "words" }),
      transform: "exp:3",
      reference: ref,
    });
    expect(await ctrl(input.prompt, input.text)).toBeCloseTo(Math.exp(3 * cValue), 10);
  });
});

describe("transforms", () => {
  it("are monotone (strictly where they must be) and parse with clear errors", async () => {
    const grid = Array.from({ length: 101 }, (_, i) => i / 100);
    for (const spec of ["identity", "log", "exp:5", "negexp:2", "exp:0.1"]) {
      const t = parseTransform(spec);
      const values = grid.map(t.apply);
      for (let i = 1; i < values.length; i++) expect(values[i]).toBeGreaterThan(values[i - 1]);
      expect(values.every(Number.isFinite)).toBe(true);
    }
    expect(parseTransform("exp:5").apply(0.5)).toBeCloseTo(Math.exp(2.5));
    expect(parseTransform("negexp:2").apply(0.5)).toBeCloseTo(-Math.exp(-1));
    for (const [bad, code, text] of [
      ["sqrt", "unknown-transform", /unknown transform "sqrt"/],
      ["exp:0", "bad-transform", /t must be > 0/],
      ["negexp:-1", "bad-transform", /t must be > 0/],
      ["exp", "bad-transform", /needs t/],
      ["exp:abc", "bad-transform", /must be a number/],
    ] as const) {
      expect(() => parseTransform(bad)).toThrowError(TillerError);
      try {
        parseTransform(bad);
      } catch (error) {
        expect((error as TillerError).code).toBe(code);
        expect((error as TillerError).message).toMatch(text);
      }
    }
  });

  it("transformed rewards keep the order of the reward", async () => {
    const inputs = ["a", "a dog", "a dog ran", "a dog ran far away"].map((text) => ({
      prompt: "p",
      text,
      tokens: [],
      finished: true,
    }));
    const base = defineReward({
      name: "words",
      description: "",
      score: ({ text }) => text.split(" ").length / 10,
    });
    const raw = await Promise.all(inputs.map((i) => base.score(i)));
    for (const spec of ["log", "exp:4", "negexp:4"]) {
      const out = (await transformed(base, spec).scoreBatch?.(inputs)) as number[];
      for (let i = 1; i < out.length; i++)
        expect(Math.sign(out[i] - out[i - 1])).toBe(Math.sign(raw[i] - raw[i - 1]));
    }
  });
});

describe("bon and won", () => {
  it("won with r picks exactly what bon with −r picks (ties included), and the trace lists the N candidates", async () => {
    const rewards = [keywordsReward(["dog", "ball", "sun"]), textHash];
    for (const reward of rewards) {
      for (const prompt of PROMPTS.slice(0, 3)) {
        for (const seed of [1, 2]) {
          const sampling = { temperature: 1, seed };
          // Same cache state before both runs, so both draw bit-identical samples.
          await model.clearCache();
          const worst = await bestOfN({ n: 6, reward, pick: "worst", sampling }).decode(
            context(prompt, { trace: true }),
          );
          await model.clearCache();
          const bestNeg = await bestOfN({ n: 6, reward: negated(reward), sampling }).decode(
            context(prompt, { trace: true }),
          );
          expect(worst.tokens).toEqual(bestNeg.tokens);
          expect(worst.score).toBe(-(bestNeg.score as number));
          const candidates = worst.trace?.steps[0].candidates ?? [];
          expect(candidates).toHaveLength(6);
          expect(candidates.filter((c) => c.kept)).toHaveLength(1);
          const kept = candidates.find((c) => c.kept);
          expect(kept?.reward).toBe(Math.min(...candidates.map((c) => c.reward as number)));
        }
      }
    }
  });

  it("bon is registered, batches its N samples in one call, and beats its own candidates' mean", async () => {
    const strategy = createStrategy("bon:n=8,seed=3", { reward: textHash });
    const before = model.usage.calls;
    const result = await runStrategy(strategy, { ...context(PROMPTS[0]), trace: true });
    expect(model.usage.calls - before).toBe(1);
    const rewards = result.trace?.steps[0].candidates.map((c) => c.reward as number) ?? [];
    expect(rewards).toHaveLength(8);
    expect(result.score).toBe(Math.max(...rewards));
    expect(
      await textHash.score({ prompt: PROMPTS[0], text: result.text, tokens: result.tokens, finished: true }),
    ).toBe(result.score);
  });

  it("selectByReward picks among other strategies' outputs", async () => {
    const results = await Promise.all(
      ["greedy", "sample:seed=1", "sample:seed=2", "beam:width=2"].map((spec) =>
        runStrategy(createStrategy(spec), context(PROMPTS[1])),
      ),
    );
    const best = await selectByReward(results, textHash, "best", PROMPTS[1]);
    const worst = await selectByReward(results, textHash, "worst", PROMPTS[1]);
    expect(best.reward).toBe(Math.max(...best.rewards));
    expect(worst.reward).toBe(Math.min(...best.rewards));
    expect(best.result).toBe(results[best.index]);
  });

  it("rejects N < 1, m < 2 and bad specs with clear TillerErrors", async () => {
    expect(() => bestOfN({ n: 0, reward: textHash })).toThrowError(/N must be an integer ≥ 1, got 0/);
    expect(() => bestOfN({ n: 2.5, reward: textHash })).toThrowError(TillerError);
    expect(() => createStrategy("bon:n=0", { reward: textHash })).toThrowError(
      /bon: n must be an integer ≥ 1/,
    );
    expect(() => createStrategy("won:n=-3", { reward: textHash })).toThrowError(TillerError);
    expect(() => createStrategy("bon:n=4")).toThrowError(/steers by a reward/);
    expect(() => reference({ m: 1 })).toThrowError(/m ≥ 2/);
    expect(() => reference({ m: 0 })).toThrowError(TillerError);
  });
});

describe("win-rate estimators", () => {
  it("are ½ for a policy equal to the reference and match N/(N+1) for BoN vs one sample", async () => {
    const q = Array.from({ length: 200 }, (_, i) => i);
    expect(maxWinRate(q, q, 1, 1)).toBeCloseTo(0.5, 10);
    expect(maxWinRate(q, q, 4, 4)).toBeCloseTo(0.5, 10);
    expect(minWinRate(q, q, 4)).toBeCloseTo(0.5, 10);
    // Uniform policy vs uniform reference, BoN of the policy vs one reference sample → N/(N+1).
    expect(maxWinRate(q, q, 4, 1)).toBeCloseTo(0.8, 2);
    // All ties: ½.
    expect(maxWinRate([0, 0, 0], [0, 0], 3, 2)).toBe(0.5);
  });
});

describe("reference cache", () => {
  it("a policy built without modelPath on a loaded model caches on disk (keyed by model.path)", async () => {
    expect(model.path).toBe(testModelPath());
    const dir = join(cache, "no-model-path");
    const policy = new ReferencePolicy(model, { m: 2, maxTokens: 4, seed: 5, cacheDir: dir });
    expect(policy.cacheFolder).toBe(dir);
    expect((await policy.keyOf(PROMPTS[0]))?.modelSha256).toMatch(/^[0-9a-f]{64}$/);
    await policy.samples(PROMPTS[0]);
    expect(readdirSync(dir, { recursive: true }).length).toBeGreaterThan(0);
    const again = new ReferencePolicy(model, { m: 2, maxTokens: 4, seed: 5, cacheDir: dir });
    await again.samples(PROMPTS[0]);
    expect(again.stats).toMatchObject({ rolloutCalls: 0, diskHits: 1 });
  });

  it("a second run makes no sampling calls; tampered, mismatched and corrupt entries are rejected and recomputed", async () => {
    const dir = join(cache, "reference");
    const first = reference({ m: 8, dir });
    await first.prefetch(PROMPTS.slice(0, 2));
    expect(first.stats.rolloutCalls).toBe(1);
    // Texts and tokens are reproducible from the seeds; logprobs may differ in the last digits
    // with how the batch was composed, so a recomputed entry is compared on what it says.
    const texts = (samples: readonly { text: string; tokens: number[] }[]) =>
      samples.map((s) => [s.text, s.tokens]);
    const original = texts(await first.samples(PROMPTS[0]));

    const callsBefore = model.usage.calls;
    const second = reference({ m: 8, dir });
    const again = await second.samples(PROMPTS[0]);
    await second.samples(PROMPTS[1]);
    expect(second.stats.rolloutCalls).toBe(0);
    expect(model.usage.calls).toBe(callsBefore);
    expect(second.stats.diskHits).toBe(2);
    expect(texts(again)).toEqual(original);

    // Other settings are another entry: m differs → a miss, not a hit.
    const otherM = reference({ m: 9, dir });
    await otherM.samples(PROMPTS[0]);
    expect(otherM.stats.rolloutCalls).toBe(1);

    // Tamper: change one sample's text, keep the JSON valid.
    const file = (await second.cacheFileOf(PROMPTS[0])) as string;
    const entry = JSON.parse(readFileSync(file, "utf8"));
    entry.samples[0].text = "a tampered text that scores very well";
    writeFileSync(file, JSON.stringify(entry));
    const warnings: string[] = [];
    const third = reference({ m: 8, dir, warnings });
    // Recomputed, not used: the tampered text is gone. (The fresh samples may differ from the
    // first run's in a rare near-tie: this batch holds 8 requests where the first held 16.)
    const recomputed = await third.samples(PROMPTS[0]);
    expect(recomputed).toHaveLength(8);
    expect(recomputed.map((s) => s.text)).not.toContain("a tampered text that scores very well");
    expect(third.stats.rejected).toBe(1);
    expect(third.stats.rolloutCalls).toBe(1);
    expect(warnings.join("\n")).toMatch(/rejected \(checksum mismatch\)/);
    // It was rewritten: a fourth run uses it again.
    const fourth = reference({ m: 8, dir });
    await fourth.samples(PROMPTS[0]);
    expect(fourth.stats).toMatchObject({ rolloutCalls: 0, diskHits: 1, rejected: 0 });

    // An entry for another prompt copied over this one: its key does not match.
    const other = (await second.cacheFileOf(PROMPTS[1])) as string;
    writeFileSync(file, readFileSync(other));
    const w2: string[] = [];
    const fifth = reference({ m: 8, dir, warnings: w2 });
    expect(texts(await fifth.samples(PROMPTS[0]))).toEqual(original);
    expect(w2.join("\n")).toMatch(/key does not match/);

    // Truncated (a crash mid-write cannot leave this, but a disk can).
    writeFileSync(file, readFileSync(file, "utf8").slice(0, 50));
    const w3: string[] = [];
    const sixth = reference({ m: 8, dir, warnings: w3 });
    expect(texts(await sixth.samples(PROMPTS[0]))).toEqual(original);
    expect(w3.join("\n")).toMatch(/not valid JSON/);
    // No temp files are left behind.
    expect(readdirSync(dir).filter((name) => name.endsWith(".tmp"))).toEqual([]);
  });
});
