import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { planForks, SequenceForker } from "../src/lm/llama/sequenceFork.js";
import { assignContiguous, commonPrefixLength } from "../src/lm/llama/sequencePool.js";
import { loadTestModel, testModelPath } from "./helpers.js";

describe("planForks: which sequence takes a copy of which", () => {
  const cached = [
    [1, 2, 3],
    [1, 2, 3, 4, 5, 6, 7],
    [9, 9],
  ];
  /** What each prefix has in common with each cache (the pool computes it once per wave). */
  const sharedWith = (prefixes: number[][]) =>
    prefixes.map((prefix) => cached.map((tokens) => commonPrefixLength(prefix, tokens)));
  it("copies the sequence that shares the most of the prefix into one that shares less", () => {
    // Prefix 0 is assigned to sequence 0 (shares 3), sequence 1 shares 6: copy 1 → 0.
    expect(planForks(sharedWith([[1, 2, 3, 4, 5, 6, 8]]), [0], [6], 1)).toEqual([{ donor: 1, recipient: 0 }]);
    // Its own cache already shares the most: nothing to copy.
    expect(planForks(sharedWith([[1, 2, 3, 4, 5, 6, 8]]), [1], [6], 1)).toEqual([]);
  });

  it("counts only what the prefix can reuse, against the minimum gain", () => {
    // Only 3 tokens reusable (the 4th is read again): sequence 1 saves nothing over sequence 0.
    expect(planForks(sharedWith([[1, 2, 3, 4, 5, 6, 8]]), [0], [3], 1)).toEqual([]);
    // A gain of 3 tokens is below a minimum of 4.
    expect(planForks(sharedWith([[1, 2, 3, 4, 5, 6, 8]]), [0], [6], 4)).toEqual([]);
    expect(planForks(sharedWith([[1, 2, 3, 4, 5, 6, 8]]), [0], [6], 3)).toEqual([{ donor: 1, recipient: 0 }]);
  });

  it("lets a sequence assigned to another prefix of the wave be a donor", () => {
    const plans = planForks(
      sharedWith([
        [1, 2, 3, 4, 5, 6, 7, 8],
        [1, 2, 3, 4, 5, 6, 7, 9],
      ]),
      [1, 2],
      [7, 7],
      1,
    );
    expect(plans).toEqual([{ donor: 1, recipient: 2 }]);
  });
});

describe("copySequences on the real model (stories260K)", () => {
  let copying: LlamaCppModel;
  let plain: LlamaCppModel;
  beforeAll(async () => {
    copying = await loadTestModel({ sequences: 4, copySequences: true });
    plain = await loadTestModel({ sequences: 4, copySequences: false });
  });
  afterAll(async () => {
    await copying?.dispose();
    await plain?.dispose();
  });

  /**
   * Two DeAL-like steps: four candidates scored (one of them the stretch then committed), then
   * four candidates after it. Only the first step's winner holds the committed stretch.
   */
  async function twoSteps(model: LlamaCppModel) {
    await model.clearCache();
    const prompt = await model.tokenize("Once upon a time, there was a little girl named Lily.");
    const committed = await model.tokenize(" She loved to play outside", { addBos: false });
    const others = [10, 20, 30].map((t) => [t, t + 1, t + 2]);
    const before = model.usage.evaluatedTokens;
    const first = await model.scoreContinuations(
      [committed, ...others].map((continuation) => ({ prefix: prompt, continuation })),
      { nextTopK: 5 },
    );
    const second = await model.scoreContinuations(
      [[40], ...others].map((continuation) => ({ prefix: [...prompt, ...committed], continuation })),
      { nextTopK: 5 },
    );
    return { results: [...first, ...second], evaluated: model.usage.evaluatedTokens - before, committed };
  }

  it("evaluates a prefix the candidates share once, with the same scores", async () => {
    const withCopies = await twoSteps(copying);
    const without = await twoSteps(plain);
    // Without copies the three other sequences evaluate the committed stretch again; with them
    // they take the winner's cache and evaluate only its last token (whose output is read).
    expect(without.committed.length).toBeGreaterThan(2);
    expect(without.evaluated - withCopies.evaluated).toBe(3 * (without.committed.length - 1));
    withCopies.results.forEach((scored, i) => {
      scored.logprobs.forEach((lp, j) => {
        expect(lp).toBeCloseTo(without.results[i].logprobs[j], 4);
      });
      expect(scored.next?.map((e) => e.token)).toEqual(without.results[i].next?.map((e) => e.token));
    });
  });

  it("greedy rollouts from a copied prefix equal those without copies", async () => {
    const run = async (model: LlamaCppModel) => {
      await model.clearCache();
      const prompt = await model.tokenize("One day, a little boy named Tom");
      const [a] = await model.rollouts([{ prefix: prompt }], { maxTokens: 12, temperature: 0 });
      const longer = [...prompt, ...a.tokens.slice(0, 6)];
      return model.rollouts(
        [0, 1, 2].map(() => ({ prefix: longer })),
        { maxTokens: 10, temperature: 0 },
      );
    };
    const [withCopies, without] = [await run(copying), await run(plain)];
    expect(withCopies.map((r) => r.tokens)).toEqual(without.map((r) => r.tokens));
  });
});

describe("contiguousWaves: a wave on consecutive sequences, in order", () => {
  it("picks the run of sequences that reuses the most, the lowest on a tie", () => {
    // shared[p][s] (what prefix p has in common with sequence s's cache), reusable per prefix.
    const shared = [
      [0, 5, 0, 9],
      [0, 0, 7, 0],
    ];
    // Runs: 0,1 reuses 0; 1,2 reuses 5 + 7; 2,3 reuses 0 + 0.
    expect(assignContiguous(shared, [20, 20])).toEqual([1, 2]);
    // Capped by what each prefix can reuse (2 each): 1,2 still reuses the most (2 + 2).
    expect(assignContiguous(shared, [2, 2])).toEqual([1, 2]);
    expect(assignContiguous([[0, 0, 0]], [4])).toEqual([0]);
    expect(
      assignContiguous(
        [
          [3, 3, 3],
          [3, 3, 3],
        ],
        [4, 4],
      ),
    ).toEqual([0, 1]);
  });

  it("scores as the plain pool does, waves of unequal lengths padded and the padding erased after", async () => {
    const contiguous = await loadTestModel({ sequences: 4, copySequences: true, contiguousWaves: true });
    const plain = await loadTestModel({ sequences: 4, copySequences: false });
    try {
      const prompt = await contiguous.tokenize("Once upon a time, there was a little girl named Lily.");
      const run = async (model: LlamaCppModel) => {
        await model.clearCache();
        const before = model.usage.evaluatedTokens;
        // Continuations of 1, 2, 3 and 1 tokens: a wave the padding evens out.
        const first = await model.scoreContinuations(
          [[10], [20, 21], [30, 31, 32], [40]].map((continuation) => ({ prefix: prompt, continuation })),
          { nextTopK: 5 },
        );
        const second = await model.scoreContinuations(
          [[50], [20, 60]].map((continuation) => ({ prefix: prompt, continuation })),
          { nextTopK: 5 },
        );
        const next = await model.nextTokenDistributions([prompt, [...prompt, 30]], { topK: 5 });
        return { scored: [...first, ...second], next, evaluated: model.usage.evaluatedTokens - before };
      };
      const [a, b] = [await run(contiguous), await run(plain)];
      a.scored.forEach((scored, i) => {
        scored.logprobs.forEach((lp, j) => {
          expect(lp).toBeCloseTo(b.scored[i].logprobs[j], 4);
        });
        expect(scored.next?.map((e) => e.token)).toEqual(b.scored[i].next?.map((e) => e.token));
      });
      expect(a.next.map((d) => d.map((e) => e.token))).toEqual(b.next.map((d) => d.map((e) => e.token)));
      // Rollouts from prefixes of unequal lengths in one wave go on from their prefixes (a padded
      // wave would put its padding between a prefix and its rollout).
      const rollouts = async (model: LlamaCppModel) => {
        await model.clearCache();
        // From an empty cache the wave evaluates 2 and 4 tokens more than the prompt: padded.
        return model.rollouts(
          [prompt, [...prompt, 20, 21], [...prompt, 30, 31, 32, 33]].map((prefix) => ({ prefix })),
          { maxTokens: 8, temperature: 0 },
        );
      };
      const [ra, rb] = [await rollouts(contiguous), await rollouts(plain)];
      expect(ra.map((r) => r.tokens)).toEqual(rb.map((r) => r.tokens));
      // The padding is evaluated (and counted), never read.
      expect(a.evaluated).toBeGreaterThan(0);
    } finally {
      await contiguous.dispose();
      await plain.dispose();
    }
  });
});

describe("SequenceForker on node-llama-cpp's own sequences", () => {
  it("copies a sequence exactly; a failed copy empties the recipient and stops copying", async () => {
    const llama = await getLlama({ gpu: false });
    const model = await llama.loadModel({ modelPath: testModelPath() });
    const context = await model.createContext({ contextSize: 256, sequences: 2, threads: 1 });
    const base = mkdtempSync(join(tmpdir(), "tiller-fork-test-"));
    try {
      const [donor, recipient] = [context.getSequence(), context.getSequence()];
      await donor.evaluateWithoutGeneratingNewTokens(model.tokenize("Once upon a time, there was a girl."));
      const forker = new SequenceForker(base);
      await forker.apply([donor, recipient], [{ donor: 0, recipient: 1 }]);
      expect(recipient.contextTokens).toEqual(donor.contextTokens);
      forker.dispose();
      expect(readdirSync(base)).toEqual([]);

      // A folder that cannot be made (its parent is missing): no throw, the recipient is empty.
      const failing = new SequenceForker(join(base, "missing", "deeper"));
      await failing.apply([donor, recipient], [{ donor: 0, recipient: 1 }]);
      expect(recipient.contextTokens).toEqual([]);
      // Copying has stopped: a later plan leaves the recipient as it is.
      await failing.apply([donor, recipient], [{ donor: 0, recipient: 1 }]);
      expect(recipient.contextTokens).toEqual([]);
    } finally {
      rmSync(base, { recursive: true, force: true });
      await context.dispose();
      await model.dispose();
    }
  });
});
