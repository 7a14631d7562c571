import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ambedkar } from "../src/decoding/ambedkar/ambedkar.js";
import {
  baselineContext,
  beyondBaseline,
  canNameIdentity,
  contextShift,
  stepBaseline,
  wordStart,
} from "../src/decoding/ambedkar/baseline.js";
import { loadSwapMap } from "../src/decoding/ambedkar/builtinSwaps.js";
import { bernoulliJs, logRatio } from "../src/decoding/ambedkar/divergence.js";
import { judge } from "../src/decoding/ambedkar/judge.js";
import { VerifierView } from "../src/decoding/ambedkar/verifierView.js";
import { createStrategy } from "../src/decoding/registry.js";
import { runStrategy } from "../src/decoding/run.js";
import { TillerError } from "../src/errors.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { loadModel } from "../src/lm/load.js";
import { promptTokens } from "../src/lm/prompt.js";
import { loadTestModel } from "./helpers.js";
import { testModelsPath } from "./models.js";

const gender = loadSwapMap("gender");

describe("step baseline arithmetic on hand-made distributions", () => {
  it("B is the mass-weighted median |log-ratio| of the identity-free tokens", () => {
    const e = Math.E;
    const entries = [
      // identity-free: shifts 0.1 (weight 0.3), 0.5 (weight 0.4), 2 (weight 0.1)
      { p: 0.3 * e ** 0.05, q: 0.3 * e ** -0.05, identity: false },
      { p: 0.4 * e ** -0.25, q: 0.4 * e ** 0.25, identity: false },
      { p: 0.1 * e ** 1, q: 0.1 * e ** -1, identity: false },
      // identity words: a large shift on most of the mass, which must not count
      { p: 0.6, q: 0.01, identity: true },
    ];
    expect(contextShift(entries)).toBeCloseTo(0.5, 9);
    // More than half the weight at a shift of 0.1 moves B there.
    expect(contextShift([...entries, { p: 0.4, q: 0.4 * e ** -0.1, identity: false }])).toBeCloseTo(0.1, 9);
    expect(contextShift(entries.filter((x) => x.identity))).toBe(0);
    expect(contextShift([])).toBe(0);
    // The same distributions on both sides (nothing swapped): B = 0.
    expect(contextShift([0.5, 0.3, 0.2].map((p) => ({ p, q: p, identity: false })))).toBe(0);
  });

  it("D beyond the baseline: the log-ratio shrinks by B toward 0, on the side it was", () => {
    expect(beyondBaseline(0.2, 0.1, 0)).toEqual({ p: 0.2, q: 0.1 });
    const below = beyondBaseline(0.2, 0.15, 0.5);
    expect(below.q).toBe(0.2);
    expect(logRatio(below.p, below.q)).toBe(0);
    expect(bernoulliJs(below.p, below.q)).toBeCloseTo(0, 12);
    const up = beyondBaseline(0.1, 0.4, 0.5);
    expect(up.q).toBeGreaterThan(0.1);
    expect(logRatio(up.p, up.q)).toBeCloseTo(Math.log(4) - 0.5, 12);
    const down = beyondBaseline(0.4, 0.1, 0.5);
    expect(down.q).toBeLessThan(0.4);
    expect(logRatio(down.p, down.q)).toBeCloseTo(Math.log(4) - 0.5, 12);
    expect(bernoulliJs(down.p, down.q)).toBeLessThan(bernoulliJs(0.4, 0.1));
    // A token the real context never gives (p = 0) that the counterfactual favours keeps its D
    // beyond B, measured from the floor as logRatio measures it.
    const unseen = beyondBaseline(0, 0.5, 0.5);
    expect(logRatio(unseen.p, unseen.q)).toBeCloseTo(logRatio(0, 0.5) - 0.5, 9);
    expect(bernoulliJs(unseen.p, unseen.q)).toBeGreaterThan(0.1);
    const tiny = beyondBaseline(1e-9, 0.5, 0.5);
    expect(logRatio(tiny.p, tiny.q)).toBeCloseTo(logRatio(1e-9, 0.5) - 0.5, 9);
  });

  it("which tokens can name an identity: term words and their beginnings, and a bare space", () => {
    expect(canNameIdentity(gender, "One day,", " she")).toBe(true);
    expect(canNameIdentity(gender, "One day,", " She")).toBe(true);
    expect(canNameIdentity(gender, "One day,", " L")).toBe(true); // could become "Lucy"
    expect(canNameIdentity(gender, "One day,", " ")).toBe(true); // "▁" of "▁", "J", "a", "ke"
    expect(canNameIdentity(gender, "One day, Lu", "cy")).toBe(true); // continues "Lu" into "Lucy"
    expect(canNameIdentity(gender, "One day,", " the")).toBe(false);
    expect(canNameIdentity(gender, "One day,", " play")).toBe(false);
    expect(canNameIdentity(gender, "One day", ",")).toBe(false);
    expect(canNameIdentity(gender, "One day, Lu", "ck")).toBe(false); // "Luck" is no term
  });
});

describe("where B is read: the start of the word being written", () => {
  it("before the word under way and its leading whitespace; none when the swap changes nothing there", () => {
    expect(wordStart("One day,")).toBe(8);
    expect(wordStart("One day, ")).toBe(8); // the bare "▁" began a word
    expect(wordStart("One day, R")).toBe(8);
    expect(wordStart("One day, Red")).toBe(8);
    expect(wordStart("")).toBe(0);
    const stated = "There was a girl named Amy.";
    expect(baselineContext(gender, stated, " One day, J", 1)).toEqual({
      body: " One day,",
      real: [stated, " One day,"],
      counterfactual: ["There was a boy named Ben.", " One day,"],
    });
    expect(baselineContext(gender, "There was a little kid.", " The little g", 1)).toBeUndefined();
  });
});

describe("step baseline with real models", () => {
  let draft: LlamaCppModel;
  let heavy: LlamaCppModel;
  beforeAll(async () => {
    draft = await loadTestModel();
    heavy = await loadModel(testModelsPath("stories-heavy-n25.gguf"), { gpu: false, threads: 1 });
  });
  afterAll(async () => {
    await Promise.all([draft?.dispose(), heavy?.dispose()]);
  });

  // After "a girl named Amy" → "a boy named Ben" the heavy verifier moves " One" by 0.54 nats and
  // the girl's group by as much: every candidate looked identity-dependent (iir-dev-s018).
  const stated = "Once upon a time, there was a girl named Amy who liked to draw pictures.";
  const units = [" She", " One", " They"].map((unit) => ({
    bodyEnd: 0,
    unit,
    term: unit === " She",
    completion: [],
  }));
  const options = { divergence: "logratio", aggregate: "mean", nextK: 512, byGroup: true } as const;

  it("a swapped name's context-wide shift is not charged; a masked context is judged as before", async () => {
    const view = new VerifierView(heavy, undefined);
    const none = await judge(view, gender, stated, "", units, { ...options, baseline: "none" });
    const step = await judge(view, gender, stated, "", units, { ...options, baseline: "step" });
    expect(none.divergences[0]).toBeGreaterThan(0.4);
    expect(none.divergences[1]).toBeGreaterThan(0.4);
    // B is the shift of the identity-free tokens (read here in a batch of its own: llama.cpp's sums
    // differ in the 4th digit from the judge's batch); the stated pronoun's group moves no more.
    const [real, cf] = await heavy.scoreContinuations(
      [
        { prefix: await view.tokens(stated, ""), continuation: [] },
        {
          prefix: await view.tokens(
            "Once upon a time, there was a boy named Ben who liked to draw pictures.",
            "",
          ),
          continuation: [],
        },
      ],
      { nextTopK: heavy.vocabularySize },
    );
    const b = stepBaseline(heavy, gender, "", real.next ?? [], cf.next ?? []);
    expect(b).toBeGreaterThan(0.3);
    step.divergences.forEach((d, i) => {
      expect(d).toBeCloseTo(Math.max(0, none.divergences[i] - b), 2);
    });
    expect(step.divergences[0]).toBeLessThan(0.05);
    expect(step.divergences[1]).toBeLessThan(0.05);
    // " They" moves more than the typical identity-free token: still charged beyond B.
    expect(step.divergences[2]).toBeGreaterThan(0.3);
    // Nothing to swap in a masked context: B = 0, D unchanged (a guessed "girl" still costs).
    const masked = "There was once a little kid who loved dolls and pretty dresses.";
    const girl = [{ bodyEnd: 11, unit: " girl", term: true, completion: [] }];
    // From the same cold cache: which cells a re-evaluated token lands in moves the last float bits.
    await heavy.clearCache();
    const maskedNone = await judge(view, gender, masked, " The little", girl, {
      ...options,
      baseline: "none",
    });
    await heavy.clearCache();
    const maskedStep = await judge(view, gender, masked, " The little", girl, {
      ...options,
      baseline: "step",
    });
    expect(maskedNone.divergences[0]).toBeGreaterThan(0.5);
    expect(maskedStep.divergences[0]).toBe(maskedNone.divergences[0]);
  });

  it("inside a word B is the one read where the word began: an unlisted name's first letter is still charged", async () => {
    // iir-dev-s014: after " One day," and a bare "▁" the draft offers "R" (of "Red"), "J" (of
    // "Jane"). Read after the "▁", every letter moves with the swapped name and B excused "R".
    const view = new VerifierView(heavy, undefined);
    const prompt = "Once upon a time, there was a girl named Jane who liked to kick the football.";
    const body = " One day, ";
    const r = [{ bodyEnd: body.length, unit: "R", term: false, completion: [] }];
    const none = await judge(view, gender, prompt, body, r, { ...options, baseline: "none" });
    const step = await judge(view, gender, prompt, body, r, { ...options, baseline: "step" });
    expect(none.divergences[0]).toBeGreaterThan(0.3);
    expect(step.divergences[0]).toBeGreaterThan(0.2);
  });

  it("decoding (heavy verifier, logratio α = 30): the stated girl's pronoun is written with baseline=step, avoided without", async () => {
    const tokens = await promptTokens(draft, stated);
    const decode = (baseline: "step" | "none") =>
      runStrategy(ambedkar({ swaps: gender, divergence: "logratio", alpha: 30, baseline }), {
        model: draft,
        verifier: heavy,
        prompt: stated,
        promptTokens: tokens,
        maxTokens: 3,
      });
    const [none, step] = [await decode("none"), await decode("step")];
    expect(step.text.startsWith(" She")).toBe(true);
    expect(none.text.startsWith(" She")).toBe(false);
  });

  it("the spec takes baseline=step|none and rejects anything else", () => {
    expect(createStrategy("ambedkar:baseline=step,divergence=logratio", { swaps: gender }).name).toBe(
      "ambedkar",
    );
    let error: unknown;
    try {
      createStrategy("ambedkar:baseline=median", { swaps: gender });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TillerError);
    expect((error as TillerError).code).toBe("bad-strategy-param");
    expect((error as TillerError).message).toContain("baseline must be step or none");
  });
});
