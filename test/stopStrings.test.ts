/**
 * The incremental stop-string detector and the text stream, against full decodes of the real
 * stories model's tokens (its byte tokens split multi-byte characters across tokens).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStrategy } from "../src/decoding/registry.js";
import { rolloutText } from "../src/decoding/rolloutText.js";
import { runStrategy } from "../src/decoding/run.js";
import { StopStrings } from "../src/decoding/stopStrings.js";
import { TextStream } from "../src/decoding/textStream.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import type { LanguageModel, Token } from "../src/lm/types.js";
import { loadTestModel } from "./helpers.js";

let model: LlamaCppModel;
beforeAll(async () => {
  model = await loadTestModel();
});
afterAll(async () => {
  await model?.dispose();
});

const TEXT =
  "Once upon a time, there was a little girl named Lily. She went to the café with 日本語 books 🙂 and a big box. The end!";

describe("StopStrings (pure)", () => {
  it("finds the first stop string, from an offset", () => {
    const stops = new StopStrings(["box", "big", ""]);
    expect(stops.list).toEqual(["box", "big"]);
    expect(stops.longest).toBe(3);
    expect(stops.firstIn("a big box")).toBe(2);
    expect(stops.firstIn("a big box", 3)).toBe(6);
    expect(stops.firstIn("nothing here")).toBe(-1);
    expect(new StopStrings(undefined).none).toBe(true);
  });

  it("measures the tail that could still become a stop string", () => {
    const stops = new StopStrings(["park", "big box"]);
    expect(stops.pendingPrefix("in the pa")).toBe(2);
    expect(stops.pendingPrefix("a big b")).toBe(5);
    expect(stops.pendingPrefix("a big")).toBe(3);
    expect(stops.pendingPrefix("the end")).toBe(0);
    // A whole stop string is not pending: it is a stop.
    expect(stops.pendingPrefix("park")).toBe(0);
  });
});

describe("StopStrings.endsIn (decodes only the tail)", () => {
  it("agrees with a full decode after every token, for one and several fresh tokens", async () => {
    const context = await model.tokenize("Hello.");
    const tokens = await model.tokenize(TEXT, { addBos: false });
    const full = (n: number) => model.detokenize(tokens.slice(0, n), { context });
    const stopSets = [
      ["big box"],
      ["日本"],
      ["🙂"],
      ["é w", "Lily."],
      ["a"],
      ["The end!"],
      ["was a little girl named"],
    ];
    for (const list of stopSets) {
      const stops = new StopStrings(list);
      // Up to the first stop string, as a decode would go.
      const stopAt = tokens.findIndex((_, i) => stops.firstIn(full(i + 1)) >= 0);
      expect(stopAt, `${list} occurs in the text`).toBeGreaterThanOrEqual(0);
      for (let n = 1; n <= stopAt + 1; n++)
        expect(stops.endsIn(model, context, tokens.slice(0, n)), `${list} after ${n} tokens`).toBe(
          n === stopAt + 1,
        );
      // Several tokens committed at once (DeAL commits a lookahead).
      for (const fresh of [2, 5]) {
        for (let n = fresh; n <= stopAt + 1; n += fresh) {
          const expected = n > stopAt;
          expect(
            stops.endsIn(model, context, tokens.slice(0, n), fresh),
            `${list}, ${fresh} fresh, ${n}`,
          ).toBe(expected);
          if (expected) break;
        }
      }
    }
  });

  it("costs the same per token however long the output is (no re-decoding of the whole output)", async () => {
    const decoded = { tokens: 0 };
    const counting: LanguageModel = Object.create(model, {
      detokenize: {
        value: (tokens: readonly Token[], options?: { context?: readonly Token[] }) => {
          decoded.tokens += tokens.length;
          return model.detokenize(tokens, options);
        },
      },
    });
    for (const spec of ["greedy", "beam:width=2"]) {
      const perToken: number[] = [];
      for (const maxTokens of [32, 128]) {
        decoded.tokens = 0;
        // A veto that vetoes nothing makes greedy decode step by step, checking stop strings itself.
        const strategy = createStrategy(spec, {
          vetoes: [{ name: "none", assess: (_c, cands) => cands.map(() => 0) }],
        });
        const result = await runStrategy(strategy, {
          model: counting,
          prompt: "Once upon a time",
          promptTokens: await model.tokenize("Once upon a time"),
          maxTokens,
          stopStrings: ["zebra crossing"],
        });
        expect(result.tokens.length, `${spec} ran to the budget`).toBe(maxTokens);
        perToken.push(decoded.tokens / maxTokens);
      }
      // Decoding the whole output each token would make the 128-token run ~4× as costly per token.
      const [short, long] = perToken;
      expect(
        long,
        `${spec}: ${short.toFixed(1)} vs ${long.toFixed(1)} tokens decoded per token`,
      ).toBeLessThan(short * 1.5);
    }
  });
});

describe("TextStream", () => {
  it("streams exactly the full decode, holding back split multi-byte characters", async () => {
    const context = await model.tokenize("Hello.");
    const tokens = await model.tokenize(TEXT, { addBos: false });
    const pieces: string[] = [];
    const stream = new TextStream(model, context, (text) => pieces.push(text));
    for (const token of tokens) stream.push(token);
    stream.end();
    expect(pieces.join("")).toBe(model.detokenize(tokens, { context }));
    for (const piece of pieces) expect(piece).not.toContain("\uFFFD");
  });

  it("cuts at the first stop string exactly where the final text is cut", async () => {
    const context = await model.tokenize("Hello.");
    const tokens = await model.tokenize(TEXT, { addBos: false });
    for (const list of [["big box"], ["日本語"], ["🙂"], ["e e"], ["girl", "Lily"], ["no such text"]]) {
      const pieces: string[] = [];
      const stream = new TextStream(model, context, (text) => pieces.push(text), list);
      for (const token of tokens) stream.push(token);
      stream.end();
      const final = rolloutText(
        model,
        context,
        { tokens, logprobs: tokens.map(() => 0), stopReason: "max-tokens" },
        list,
      );
      expect(pieces.join(""), String(list)).toBe(final.text);
    }
  });

  it("never emits stop tokens", async () => {
    const context = await model.tokenize("Hello.");
    const tokens = await model.tokenize("The end.", { addBos: false });
    const pieces: string[] = [];
    const stream = new TextStream(model, context, (text) => pieces.push(text));
    for (const token of [...tokens, ...model.stopTokens]) stream.push(token);
    stream.end();
    expect(pieces.join("")).toBe(model.detokenize(tokens, { context }));
  });
});
