/**
 * The direct path (directEvaluate.ts) drives node-llama-cpp's native context itself. It must give
 * what node-llama-cpp's own `controlledEvaluate` gives for the same wave, float for float, and
 * leave each sequence's bookkeeping (its tokens, its next index) as node-llama-cpp would, so
 * either path may evaluate next.
 */
import {
  type ControlledEvaluateInputItem,
  getLlama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaModel,
} from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { evaluateDirect } from "../src/lm/llama/directEvaluate.js";
import { guardLogitReads } from "../src/lm/llama/logitReadGuard.js";
import { ProbabilityList } from "../src/lm/llama/probabilityList.js";
import { SamplerPool } from "../src/lm/llama/samplerPool.js";
import { testModelPath } from "./helpers.js";

let model: LlamaModel;
const contexts: LlamaContext[] = [];

beforeAll(async () => {
  const llama = await getLlama({ gpu: false });
  model = await llama.loadModel({ modelPath: testModelPath() });
});

afterAll(async () => {
  await Promise.all(contexts.map((context) => context.dispose()));
  await model?.dispose();
});

async function sequencesOf(
  count: number,
  options: { batchSize?: number } = {},
): Promise<LlamaContextSequence[]> {
  const context = await model.createContext({ contextSize: 256, sequences: count, threads: 1, ...options });
  guardLogitReads(context);
  contexts.push(context);
  return Array.from({ length: count }, () => context.getSequence());
}

/** `tokens` with every position from `from` on read as asked. */
function input(tokens: readonly number[], from: number, ask: object): ControlledEvaluateInputItem[] {
  return tokens.map((token, i) =>
    i >= from ? ([token, { generateNext: ask }] as ControlledEvaluateInputItem) : (token as never),
  );
}

/** A position's output with its probabilities as plain pairs (a Map or a ProbabilityList alike). */
function plain(next: { token?: unknown; confidence?: number; probabilities?: unknown } | undefined) {
  if (!next) return next;
  const probabilities = next.probabilities as ReadonlyMap<number, number> | ProbabilityList | undefined;
  return {
    token: next.token,
    confidence: next.confidence,
    probabilities: probabilities
      ? [...probabilities.keys()].map((t) => [t, probabilities.get(t)])
      : undefined,
  };
}

describe("evaluateDirect", () => {
  it("reads what controlledEvaluate reads, float for float, and keeps the sequences' bookkeeping", async () => {
    // Two contexts, the wave's sequences interleaved over them as the pool interleaves its own.
    const pair = async () => {
      const [a, b] = [await sequencesOf(2), await sequencesOf(1)];
      return [a[0], b[0], a[1]];
    };
    const [direct, reference] = [await pair(), await pair()];
    const samplers = new SamplerPool(direct[0]);
    const asks = [
      { probabilities: true },
      { token: true, confidence: true },
      { probabilities: true, token: true },
    ];
    /** One wave on both (the same inputs), compared output for output and in their bookkeeping. */
    const wave = async (texts: readonly string[], reads: number) => {
      const inputs = texts.map((text, i) => {
        const tokens = model.tokenize(text);
        return input(tokens, Math.max(0, tokens.length - reads), asks[i]);
      });
      const got = await evaluateDirect(direct, inputs, samplers);
      const want = await Promise.all(reference.map((sequence, i) => sequence.controlledEvaluate(inputs[i])));
      expect(got).toBeDefined();
      inputs.forEach((each, i) => {
        for (let j = 0; j < each.length; j++)
          expect(plain(got?.[i][j]), `${texts[i]} @${j}`).toEqual(plain(want[i][j]?.next));
        expect(direct[i].contextTokens).toEqual(reference[i].contextTokens);
        expect(direct[i].nextTokenIndex).toBe(reference[i].nextTokenIndex);
      });
      return got;
    };
    try {
      const first = await wave(["Once upon a time, there was", "The dog ran to the", "Lily and Tom"], 2);
      expect(first?.[0].at(-1)?.probabilities).toBeInstanceOf(ProbabilityList);
      // The kept samplers again, on sequences that now hold a prefix: several positions read each.
      await wave([" a little girl", " park and", " went to the park"], 3);

      // node-llama-cpp's own path goes on from what the direct path left: the same again.
      const more = model.tokenize(" a little");
      const after = await Promise.all(
        [direct[0], reference[0]].map((sequence) =>
          sequence.controlledEvaluate(input(more, more.length - 1, asks[0])),
        ),
      );
      expect(plain(after[0].at(-1)?.next)).toEqual(plain(after[1].at(-1)?.next));
    } finally {
      samplers.dispose();
    }
  });

  it("leaves reads with sampling options to node-llama-cpp", async () => {
    const [sequence] = await sequencesOf(1);
    const samplers = new SamplerPool(sequence);
    try {
      const tokens = model.tokenize("Once upon a time");
      const sampled = input(tokens, tokens.length - 1, { token: true, options: { temperature: 0.8 } });
      expect(await evaluateDirect([sequence], [sampled], samplers)).toBeUndefined();
      expect(sequence.nextTokenIndex).toBe(0);
      expect(
        await evaluateDirect([sequence], [input(tokens, tokens.length - 1, { token: true })], undefined),
      ).toBeUndefined();
    } finally {
      samplers.dispose();
    }
  });

  it("leaves a wave over the batch size to node-llama-cpp, touching nothing", async () => {
    const [sequence] = await sequencesOf(1, { batchSize: 4 });
    const samplers = new SamplerPool(sequence);
    try {
      const tokens = model.tokenize("Once upon a time, there was a little girl");
      expect(tokens.length).toBeGreaterThan(4);
      expect(
        await evaluateDirect([sequence], [input(tokens, tokens.length - 1, { token: true })], samplers),
      ).toBeUndefined();
      expect(sequence.nextTokenIndex).toBe(0);
      expect(sequence.contextTokens).toEqual([]);
    } finally {
      samplers.dispose();
    }
  });
});

describe("ProbabilityList", () => {
  it("answers what a Map of the same pairs answers, in order", () => {
    const flat = [5, 0.5, 2, 0.3, 9, 0.2];
    const list = new ProbabilityList(flat);
    const map = new Map([
      [5, 0.5],
      [2, 0.3],
      [9, 0.2],
    ]);
    expect(list.size).toBe(map.size);
    expect([...list.keys()]).toEqual([...map.keys()]);
    expect([...list.values()]).toEqual([...map.values()]);
    for (const token of [5, 2, 9, 7]) expect(list.get(token)).toBe(map.get(token));
    expect(() => new ProbabilityList([1, 0.5, 2])).toThrow(/odd-length/);
  });
});
