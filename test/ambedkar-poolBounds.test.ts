import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadSwapMap } from "../src/decoding/ambedkar/builtinSwaps.js";
import type { JudgedUnit } from "../src/decoding/ambedkar/candidateWords.js";
import { bernoulliJs, logRatio } from "../src/decoding/ambedkar/divergence.js";
import { type JudgeOptions, judge } from "../src/decoding/ambedkar/judge.js";
import { choiceSettled, scalarRange } from "../src/decoding/ambedkar/poolBounds.js";
import { counterfactual, shifts } from "../src/decoding/ambedkar/sigma.js";
import { VerifierView } from "../src/decoding/ambedkar/verifierView.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { loadModel } from "../src/lm/load.js";
import type { NextTokenDistribution, Token } from "../src/lm/types.js";
import { testModelPath } from "./helpers.js";

const gender = loadSwapMap("gender");

describe("bounds on a pooled D (poolBounds.ts)", () => {
  it("choiceSettled: one candidate wins for every D in the ranges, by more than rounding", () => {
    // Scores base − α·D, α = 10: candidate 0 at worst 2 − 10·0.05 = 1.5, candidate 1 at best 1.
    expect(choiceSettled([2, 1, 0], [0, 0, 0], [0.05, 0.3, 0], 10)).toBe(true);
    // Candidate 1's best (1.6) beats candidate 0's worst (1.5): open.
    expect(choiceSettled([2, 1.6, 0], [0, 0, 0], [0.05, 0.3, 0], 10)).toBe(false);
    // The winner may be any candidate, e.g. the last, when the others' D are known (lo = hi).
    expect(choiceSettled([2, 1, 3], [0.2, 0, 0], [0.2, 0, 0.01], 10)).toBe(true);
    // A tie between the winner's worst and another's best does not settle.
    expect(choiceSettled([2, 1.5], [0, 0], [0.05, 0], 10)).toBe(false);
    // Two candidates with the same known score: no strict winner.
    expect(choiceSettled([1, 1], [0, 0], [0, 0], 10)).toBe(false);
  });

  it("scalarRange holds D at every point of the box, and reaches both ends", () => {
    type Box = { p: [number, number]; q: [number, number] };
    const boxes: Box[] = [
      { p: [0.2, 0.3], q: [0.25, 0.5] }, // overlapping: the lowest D is 0
      { p: [0.001, 0.004], q: [0.3, 0.31] }, // p far below q
      { p: [0.6, 0.9], q: [1e-9, 0.02] }, // q far below p, down at the log-ratio floor
      { p: [0.1, 0.1], q: [0.1, 0.4] }, // one range a point
    ];
    for (const kind of ["logratio", "token"] as const) {
      const d = kind === "logratio" ? logRatio : bernoulliJs;
      for (const { p, q } of boxes) {
        const [lo, hi] = scalarRange(kind, p, q);
        const overlap = p[0] <= q[1] && q[0] <= p[1];
        if (overlap) expect(lo).toBe(0);
        else expect(lo).toBeGreaterThan(0);
        const seen: number[] = [];
        for (let i = 0; i <= 20; i++)
          for (let j = 0; j <= 20; j++)
            seen.push(d(p[0] + ((p[1] - p[0]) * i) / 20, q[0] + ((q[1] - q[0]) * j) / 20));
        for (const value of seen) {
          expect(value).toBeGreaterThanOrEqual(lo - 1e-12);
          expect(value).toBeLessThanOrEqual(hi + 1e-12);
        }
        // Tight: the corners reach both bounds (the lowest, where the ranges are apart).
        expect(Math.max(...seen)).toBeCloseTo(hi, 12);
        if (!overlap) expect(Math.min(...seen)).toBeCloseTo(lo, 12);
      }
    }
  });
});

/** Paired evaluation: a distribution does not depend on which call computed it. */
let model: LlamaCppModel;
beforeAll(async () => {
  model = await loadModel(testModelPath(), { gpu: false, threads: 1, pairLoneTokens: true });
});
afterAll(async () => {
  await model?.dispose();
});

describe("judge with `settles` (a self-verifying draft's step)", () => {
  // After a full stop the next word is most likely a pronoun; " girl" and " boy" begin with
  // unlikely tokens, so the pool's sums bound them rather than read them.
  const prompt = "Once upon a time, there was a little girl named Lily. The girl loved her red ball.";
  const body = " One day,";
  // " xylophone" is no term and several tokens: off the pools, its own texts are bounded too.
  const units: JudgedUnit[] = [" she", " Lily", " the", " xylophone"].map((unit) => ({
    bodyEnd: body.length,
    unit,
    term: unit === " she" || unit === " Lily",
    completion: [],
  }));

  /** `known` over the real and counterfactual contexts of the step, read once. */
  async function knownContexts(view: VerifierView): Promise<JudgeOptions["known"]> {
    const [shift] = shifts(gender);
    const cf = counterfactual(gender, [prompt, body, ""], shift);
    const contexts = [await view.tokens(prompt, body), await view.tokens(cf.segments[0], cf.segments[1])];
    const read = await model.nextTokenDistributions(contexts, { topK: model.vocabularySize });
    const byKey = new Map(contexts.map((tokens, i) => [tokens.join(","), read[i]]));
    return (prefix: readonly Token[]): NextTokenDistribution | undefined => byKey.get(prefix.join(","));
  }

  it("a step the bounds settle reads fewer texts and returns D at its lower bound; one they do not settle is judged exactly", async () => {
    const view = new VerifierView(model, undefined);
    const options: JudgeOptions = {
      divergence: "logratio",
      aggregate: "mean",
      nextK: 512,
      byGroup: true,
      known: await knownContexts(view),
    };
    await model.clearCache();
    const exact = await judge(view, gender, prompt, body, units, options);
    expect(exact.bounded).toBe(0);

    let seen: { lo: readonly number[]; hi: readonly number[] } | undefined;
    await model.clearCache();
    const callsBefore = model.usage.calls;
    const settled = await judge(view, gender, prompt, body, units, {
      ...options,
      settles: (lo, hi) => {
        seen = { lo, hi };
        return true;
      },
    });
    if (!seen) throw new Error("no pool word was bounded: the test's step no longer exercises the bounds");
    // Settled on the known contexts alone, before any call: the verifier was not called.
    expect(model.usage.calls).toBe(callsBefore);
    expect(settled.bounded).toBeGreaterThan(0);
    expect(settled.requests).toBe(exact.requests - settled.bounded);
    expect(settled.divergences).toEqual(seen.lo);
    exact.divergences.forEach((d, i) => {
      expect(seen?.lo[i]).toBeLessThanOrEqual(d + 1e-9);
      expect(seen?.hi[i]).toBeGreaterThanOrEqual(d - 1e-9);
    });
    // The pooled units' bounds are a real interval; " the" is judged off the pools, exactly;
    // " xylophone", off the pools too, is bounded where its later tokens are not known.
    expect(seen.hi[0]).toBeGreaterThan(seen.lo[0]);
    expect(seen.lo[2]).toBe(seen.hi[2]);
    expect(seen.lo[2]).toBeCloseTo(exact.divergences[2], 9);
    const xylophone = await view.request(prompt, body, " xylophone");
    if (xylophone.continuation.length < 2)
      throw new Error('" xylophone" is one token: the test no longer bounds a text off the pools');
    expect(seen.hi[3]).toBeGreaterThan(seen.lo[3]);

    await model.clearCache();
    const unsettled = await judge(view, gender, prompt, body, units, { ...options, settles: () => false });
    expect(unsettled.bounded).toBe(0);
    expect(unsettled.requests).toBe(exact.requests);
    unsettled.divergences.forEach((d, i) => {
      expect(d).toBeCloseTo(exact.divergences[i], 9);
    });
  });

  it("knownToken answers a word's later positions from entries that list them (a free run's argmaxes): no call", async () => {
    const view = new VerifierView(model, undefined);
    const known = await knownContexts(view);
    const [shift] = shifts(gender);
    const cf = counterfactual(gender, [prompt, body, " xylophone"], shift);
    const requests = [
      await view.request(prompt, body, " xylophone"),
      await view.request(cf.segments[0], cf.segments[1], cf.tail[0]),
    ];
    if (requests.some((r) => r.continuation.length < 2))
      throw new Error('" xylophone" is one token: the test no longer reads later positions');
    // Each later position's token and exact logprob, as an argmax entry would hold them.
    const scored = await model.scoreContinuations(requests);
    const listed = new Map<string, { token: Token; logprob: number }>();
    requests.forEach((r, i) => {
      r.continuation.forEach((token, j) => {
        const at = [...r.prefix, ...r.continuation.slice(0, j)];
        if (j > 0) listed.set(at.join(","), { token, logprob: scored[i].logprobs[j] });
      });
    });
    const knownToken = (prefix: readonly Token[], token: Token) => {
      const whole = known?.(prefix);
      if (whole) return whole.find((e) => e.token === token)?.logprob ?? Number.NEGATIVE_INFINITY;
      const entry = listed.get(prefix.join(","));
      return entry?.token === token ? entry.logprob : undefined;
    };
    const units = [{ bodyEnd: body.length, unit: " xylophone", term: false, completion: [] }];
    const options: JudgeOptions = { divergence: "logratio", aggregate: "mean", nextK: 512, known };
    await model.clearCache();
    const called = model.usage.calls;
    const read = await judge(view, gender, prompt, body, units, options);
    expect(model.usage.calls, "without knownToken the later positions are read").toBeGreaterThan(called);
    const before = model.usage.calls;
    const answered = await judge(view, gender, prompt, body, units, { ...options, knownToken });
    expect(model.usage.calls).toBe(before);
    expect(answered.divergences[0]).toBeCloseTo(read.divergences[0], 6);
  });
});
