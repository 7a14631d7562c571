import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { vetoPenalties } from "../src/decoding/veto.js";
import { isTillerError } from "../src/errors.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import type { Token } from "../src/lm/types.js";
import { buildIndex } from "../src/provenance/build-index.js";
import { ProvDecodeVeto } from "../src/provenance/prov-decode.js";
import { regurgitation } from "../src/provenance/regurgitation.js";
import { shieldGeneration, traceShield } from "../src/provenance/shield.js";
import { TraceIndex } from "../src/provenance/trace-index.js";
import { loadTestModel, sharedPath } from "./helpers.js";

const HANDMADE = [
  "The lighthouse keeper Bartholomew polished the brass telescope every Tuesday at dawn.",
  "Seven crimson kites drifted over the marsh while the heron counted its reflections.",
  "A quiet librarian catalogued thunderstorms by the colour of their first lightning.",
  "once upon a time, there was a little girl named lily. she loved to play outside.",
];

let model: LlamaCppModel;
let tmp: string;
let smallDir: string;
let sliceDir: string;
let paragraphs: string[];

function expectTillerError(fn: () => unknown, code: string, message: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(isTillerError(e), `expected a TillerError, got ${String(e)}`).toBe(true);
    expect((e as { code: string }).code).toBe(code);
    expect((e as Error).message).toMatch(message);
    return;
  }
  expect.fail(`expected TillerError ${code}`);
}

beforeAll(async () => {
  model = await loadTestModel();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tiller-prov-"));
  // A small handmade corpus over two files, blank-line separated.
  fs.writeFileSync(path.join(tmp, "a.txt"), `${HANDMADE.slice(0, 2).join("\n\n")}\n`);
  fs.writeFileSync(path.join(tmp, "b.txt"), `${HANDMADE.slice(2).join("\n\n\n")}\n`);
  smallDir = path.join(tmp, "small");
  await buildIndex(model, [path.join(tmp, "a.txt"), path.join(tmp, "b.txt")], smallDir);
  // The first ~400 KB of the shared corpus (lowercased, blank-line separated).
  const shared = fs.readFileSync(sharedPath("corpora/tinystories-4m.txt"), "utf8");
  const cut = shared.indexOf("\n\n", 400_000);
  const slice = shared.slice(0, cut);
  paragraphs = slice
    .split(/\n[ \t]*\n/)
    .map((p) => p.trim())
    .filter(Boolean);
  fs.writeFileSync(path.join(tmp, "slice.txt"), slice);
  sliceDir = path.join(tmp, "slice");
  await buildIndex(model, [path.join(tmp, "slice.txt")], sliceDir, { lowercase: true });
});

afterAll(async () => {
  await model?.dispose();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe("trace index built with the real tokenizer", () => {
  it("stores every document and its tokens", async () => {
    const idx = TraceIndex.open(smallDir);
    expect(idx.documents).toBe(HANDMADE.length);
    for (let d = 0; d < HANDMADE.length; d++) {
      expect(Array.from(idx.documentTokens(d))).toEqual(model.tokenizeSync(HANDMADE[d], { addBos: false }));
    }
    expect(idx.header.sources.map((s) => [path.basename(s.path), s.documents])).toEqual([
      ["a.txt", 2],
      ["b.txt", 2],
    ]);
    expect(idx.header.build.lowercase).toBe(false);
  });

  it("stores at most 6 bytes per corpus token (bit-packed suffix array) for a slice of the shared corpus", async () => {
    const idx = TraceIndex.open(sliceDir);
    const h = idx.header;
    expect(h.version).toBe(2);
    expect(h.saWidth).toBe(Math.ceil(Math.log2(h.tokens)));
    expect(fs.statSync(path.join(sliceDir, "sa.bin")).size).toBe(
      Math.ceil((h.corpusTokens * h.saWidth) / 32) * 4,
    );
    const bytes = fs.readdirSync(sliceDir).reduce((a, f) => a + fs.statSync(path.join(sliceDir, f)).size, 0);
    expect(h.corpusTokens).toBeGreaterThan(100_000);
    expect(bytes / h.corpusTokens).toBeLessThanOrEqual(6);
    // Document starts derived from the separators agree with the documents' tokens.
    expect(idx.documents).toBe(paragraphs.length);
    expect(Array.from(idx.documentTokens(7))).toEqual(
      model.tokenizeSync(paragraphs[7].toLowerCase(), { addBos: false }),
    );
  });

  it("attributes a copied sentence to its document", async () => {
    const idx = TraceIndex.open(smallDir);
    const query = await idx.tokenizeQuery(
      model,
      "I read that a quiet librarian catalogued thunderstorms by the colour of it.",
    );
    const spans = idx.attribute(query, { minLen: 4, maxCount: 3 });
    expect(spans.length).toBe(1);
    const [s] = spans;
    expect(s.examples[0].document).toBe(2);
    expect(model.detokenize(query.slice(s.start, s.end), { context: query.slice(0, s.start) })).toBe(
      // "a" differs: "A" opens the document (the small index is not lowercased).
      " quiet librarian catalogued thunderstorms by the colour of",
    );
    expect(s.count).toBe(1);
    expect(s.bci).toBeGreaterThan(20);
  });

  it("never matches across documents", async () => {
    const idx = TraceIndex.open(smallDir);
    // End of document 0 + start of document 1: each half occurs, the join does not.
    const end0 = model.tokenizeSync("every Tuesday at dawn.", { addBos: false });
    const start1 = model.tokenizeSync("Seven crimson kites", { addBos: false }).slice(0);
    expect(idx.count(end0)).toBe(1);
    expect(idx.count(start1)).toBe(1);
    const joined = [
      ...Array.from(idx.documentTokens(0)).slice(-end0.length),
      ...Array.from(idx.documentTokens(1)).slice(0, 3),
    ];
    expect(idx.count(joined)).toBe(0);
    const spans = idx.attribute(joined, { minLen: 1, maxCount: 100 });
    for (const s of spans) {
      for (const e of s.examples) {
        expect(e.offset + s.length).toBeLessThanOrEqual(idx.documentTokens(e.document).length);
      }
    }
  });

  it("attributes sentences copied from a slice of the shared corpus to their paragraphs", async () => {
    const idx = TraceIndex.open(sliceDir);
    expect(idx.documents).toBe(paragraphs.length);
    let checked = 0;
    for (let k = 7; k < paragraphs.length; k += Math.floor(paragraphs.length / 12)) {
      const sentences = paragraphs[k].split(/(?<=[.!?])\s+/).filter((x) => x.length > 60);
      if (sentences.length === 0) continue;
      const sentence = sentences[0];
      const query = await idx.tokenizeQuery(
        model,
        `Then, ${sentence.toUpperCase().slice(0, 1)}${sentence.slice(1)}`,
      );
      const spans = idx.attribute(query, { minLen: 6, maxCount: 1000, examples: 1000 });
      const best = spans.reduce((a, b) => (b.length > a.length ? b : a));
      const docs = best.examples.map((e) => e.document);
      const docTexts = docs.map((d) => paragraphs[d]);
      expect(docTexts.some((t) => t.includes(sentence.slice(2, -2)))).toBe(true);
      expect(docs).toContain(k);
      checked++;
    }
    expect(checked).toBeGreaterThan(5);
  });

  it("counts equal a naive scan over the real token stream", async () => {
    const idx = TraceIndex.open(sliceDir);
    const docs = paragraphs.map((p) => model.tokenizeSync(p, { addBos: false }));
    const patterns: Token[][] = [
      model.tokenizeSync("once upon a time", { addBos: false }),
      model.tokenizeSync("the little dog", { addBos: false }),
      model.tokenizeSync("lily", { addBos: false }),
      model.tokenizeSync("zebra quantum", { addBos: false }),
    ];
    for (const p of patterns) {
      let naive = 0;
      for (const d of docs)
        for (let i = 0; i + p.length <= d.length; i++) if (p.every((t, k) => d[i + k] === t)) naive++;
      expect(idx.count(p), JSON.stringify(p)).toBe(naive);
    }
  });
});

describe("opening a bad index", () => {
  function copyIndex(name: string): string {
    const dir = path.join(tmp, name);
    fs.cpSync(smallDir, dir, { recursive: true });
    return dir;
  }

  it("rejects a missing directory and a directory without a header", async () => {
    expectTillerError(() => TraceIndex.open(path.join(tmp, "nope")), "index-not-found", /no trace index/);
    const dir = copyIndex("noheader");
    fs.rmSync(path.join(dir, "header.json"));
    expectTillerError(() => TraceIndex.open(dir), "index-not-found", /not a trace index/);
  });

  it("rejects a truncated file even without checksum verification", async () => {
    const dir = copyIndex("truncated");
    const f = path.join(dir, "sa.bin");
    fs.truncateSync(f, fs.statSync(f).size - 4);
    expectTillerError(() => TraceIndex.open(dir, { verify: false }), "index-truncated", /truncated/);
  });

  it("rejects a corrupted file by its checksum", async () => {
    const dir = copyIndex("corrupt");
    const f = path.join(dir, "tokens.bin");
    const bytes = fs.readFileSync(f);
    bytes[10] ^= 0x01;
    fs.writeFileSync(f, bytes);
    expectTillerError(() => TraceIndex.open(dir), "index-checksum", /checksum/);
  });

  it("rejects a foreign format version and a foreign format", async () => {
    const dir = copyIndex("version");
    const h = JSON.parse(fs.readFileSync(path.join(dir, "header.json"), "utf8"));
    fs.writeFileSync(path.join(dir, "header.json"), JSON.stringify({ ...h, version: 99 }));
    expectTillerError(() => TraceIndex.open(dir), "index-version", /version 99/);
    fs.writeFileSync(path.join(dir, "header.json"), JSON.stringify({ ...h, format: "infini-gram" }));
    expectTillerError(() => TraceIndex.open(dir), "index-foreign", /not a tiller trace index/);
    fs.writeFileSync(path.join(dir, "header.json"), "{ not json");
    expectTillerError(() => TraceIndex.open(dir), "index-corrupt", /not valid JSON/);
  });

  it("rejects a version-1 index (u32 sa.bin + docs.bin) with a rebuild message", async () => {
    const dir = copyIndex("v1");
    const h = JSON.parse(fs.readFileSync(path.join(dir, "header.json"), "utf8"));
    const { saWidth: _, ...v1 } = h;
    fs.writeFileSync(path.join(dir, "header.json"), JSON.stringify({ ...v1, version: 1 }));
    expectTillerError(() => TraceIndex.open(dir), "index-version", /version 1 \(older\).*rebuild it/);
  });

  it("rejects a header whose saWidth disagrees with its token count", async () => {
    const dir = copyIndex("width");
    const h = JSON.parse(fs.readFileSync(path.join(dir, "header.json"), "utf8"));
    fs.writeFileSync(path.join(dir, "header.json"), JSON.stringify({ ...h, saWidth: h.saWidth + 1 }));
    expectTillerError(() => TraceIndex.open(dir, { verify: false }), "index-corrupt", /saWidth/);
  });

  it("rejects a model whose tokenizer differs", async () => {
    const dir = copyIndex("foreign-model");
    const h = JSON.parse(fs.readFileSync(path.join(dir, "header.json"), "utf8"));
    h.model.tokenizerFingerprint = "0000000000000000";
    fs.writeFileSync(path.join(dir, "header.json"), JSON.stringify(h));
    const idx = TraceIndex.open(dir);
    const mismatch = await idx.checkModel(model).then(
      () => undefined,
      (error: unknown) => error,
    );
    expectTillerError(
      () => {
        if (mismatch) throw mismatch;
      },
      "index-model-mismatch",
      /tokenizes differently/,
    );
    await TraceIndex.open(smallDir).checkModel(model);
  });

  it("refuses to overwrite a directory that is not an index", async () => {
    const dir = path.join(tmp, "precious");
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "notes.txt"), "keep me");
    await expect(buildIndex(model, [path.join(tmp, "a.txt")], dir)).rejects.toThrow(/refusing to overwrite/);
    expect(fs.readFileSync(path.join(dir, "notes.txt"), "utf8")).toBe("keep me");
  });
});

describe("TraceShield", () => {
  it("refuses a text that copies a rare passage", async () => {
    const idx = TraceIndex.open(smallDir);
    const v = await traceShield(
      idx,
      model,
      "He wrote: the lighthouse keeper Bartholomew polished the brass telescope.",
    );
    expect(v.verdict).toBe("refuse");
    expect(v.maxBci).toBeGreaterThan(20);
    expect(v.spans[0].examples[0].document).toBe(0);
  });

  it("passes novel text and short or common overlaps", async () => {
    const idx = TraceIndex.open(sliceDir);
    const novel = await traceShield(
      idx,
      model,
      "Quantum compilers rarely dream of purple integrals in Zurich.",
    );
    expect(novel.verdict).toBe("pass");
    // Very common in TinyStories: every long match occurs more than maxCount times.
    const common = await traceShield(idx, model, "Yesterday, upon a time, there was a little");
    expect(idx.count(await idx.tokenizeQuery(model, "upon a time, there was a little"))).toBeGreaterThan(3);
    expect(common.verdict).toBe("pass");
    // The same check with a permissive maxCount finds the common span and refuses.
    expect(
      (await traceShield(idx, model, "Yesterday, upon a time, there was a little", { maxCount: 1e9 }))
        .verdict,
    ).toBe("refuse");
  });

  it("follows tau", async () => {
    const idx = TraceIndex.open(smallDir);
    const text = "Seven crimson kites drifted over the marsh while the heron counted";
    const v = await traceShield(idx, model, text);
    expect(v.refuse).toBe(true);
    expect((await traceShield(idx, model, text, { tau: v.maxBci + 1 })).refuse).toBe(false);
    expect((await traceShield(idx, model, text, { tau: v.maxBci - 1 })).refuse).toBe(true);
  });

  it("the strategy wrapper regenerates, then refuses", async () => {
    const idx = TraceIndex.open(smallDir);
    const outputs = [
      "The lighthouse keeper Bartholomew polished the brass telescope every Tuesday.",
      "A fox sang to the moon about cheese.",
    ];
    const gen = async (attempt: number) => ({
      text: outputs[Math.min(attempt, outputs.length - 1)],
      attempt,
    });
    const check = (t: string) => traceShield(idx, model, t);
    const ok = await shieldGeneration(gen, check, { regenerate: 2 });
    expect(ok.refused).toBe(false);
    expect(ok.attempts).toBe(2);
    expect(ok.output?.attempt).toBe(1);
    expect(ok.verdicts.map((v) => v.verdict)).toEqual(["refuse", "pass"]);
    const no = await shieldGeneration(gen, check, { regenerate: 0, refusal: "nope" });
    expect(no).toMatchObject({ refused: true, attempts: 1, text: "nope", output: undefined });
  });
});

/** Longest suffix of (last n context tokens + candidate) found in the index, by brute force. */
function bruteMatch(
  idx: TraceIndex,
  context: readonly Token[],
  cand: Token,
  n: number,
): { length: number; bci: number } {
  const window = [...context.slice(Math.max(0, context.length - n)), cand];
  for (let s = 0; s < window.length; s++) {
    const piece = window.slice(s);
    if (idx.count(piece) > 0) return { length: piece.length, bci: idx.bci(piece) };
  }
  return { length: 0, bci: 0 };
}

/** Greedy decoding over the top-k with the veto's penalties (a minimal search for the tests). */
async function greedyWithVeto(
  veto: ProvDecodeVeto | undefined,
  prompt: string,
  steps: number,
): Promise<Token[]> {
  const promptTokens = model.tokenizeSync(prompt);
  const out: Token[] = [];
  for (let i = 0; i < steps; i++) {
    const context = [...promptTokens, ...out];
    const [dist] = await model.nextTokenDistributions([context], { topK: 20 });
    const cands = dist.map((d) => d.token);
    const pen = await vetoPenalties(veto ? [veto] : [], context, cands);
    let best = -1;
    for (let k = 0; k < cands.length; k++) {
      if (!Number.isFinite(pen[k])) continue;
      if (best < 0 || dist[k].logprob - pen[k] > dist[best].logprob - pen[best]) best = k;
    }
    if (best < 0) break;
    if (model.isStopToken(cands[best])) break;
    out.push(cands[best]);
  }
  return out;
}

describe("Prov-Decode", () => {
  it("finds the longest occurring suffix of window + candidate", async () => {
    const idx = TraceIndex.open(sliceDir);
    const veto = new ProvDecodeVeto(idx, { n: 8, tau: 20 });
    const doc = Array.from(idx.documentTokens(3));
    const novel = model.tokenizeSync("quantum zebra", { addBos: false });
    const contexts = [doc.slice(0, 12), [...novel, ...doc.slice(0, 3)], doc.slice(0, 1), [], novel];
    for (const ctx of contexts) {
      const cands = [doc[ctx.length] ?? 5, 0, 13, 100, 300, 511, 1];
      const got = await veto.inspect(ctx, cands);
      cands.forEach((c, i) => {
        const ref = bruteMatch(idx, ctx, c, 8);
        expect(got[i].length, `ctx ${ctx} cand ${c}`).toBe(ref.length);
        expect(got[i].bci).toBeCloseTo(ref.bci, 9);
        expect(got[i].vetoed).toBe(ref.bci > 20);
      });
    }
  });

  it("hard veto: greedy decoding never emits a vetoed continuation and copies less", async () => {
    const idx = TraceIndex.open(sliceDir);
    const tau = 20;
    const veto = new ProvDecodeVeto(idx, { tau, mode: "hard" });
    const prompt = "once upon a time, there was a little girl named lily.";
    const plain = await greedyWithVeto(undefined, prompt, 60);
    const guarded = await greedyWithVeto(veto, prompt, 60);
    expect(veto.stats.vetoed).toBeGreaterThan(0);
    const promptTokens = model.tokenizeSync(prompt);
    const all = [...promptTokens, ...guarded];
    for (let i = promptTokens.length; i < all.length; i++) {
      const m = bruteMatch(idx, all.slice(0, i), all[i], 8);
      expect(m.bci, `token ${i}`).toBeLessThanOrEqual(tau);
    }
    const rPlain = regurgitation(idx, await idx.tokenizeQuery(model, model.detokenize(plain)));
    const rGuarded = regurgitation(idx, await idx.tokenizeQuery(model, model.detokenize(guarded)));
    expect(rGuarded.longestSpan).toBeLessThan(rPlain.longestSpan);
  });

  it("soft veto demotes by gamma exactly where the hard veto drops", async () => {
    const idx = TraceIndex.open(sliceDir);
    const hard = new ProvDecodeVeto(idx, { tau: 20, mode: "hard" });
    const soft = new ProvDecodeVeto(idx, { tau: 20, mode: "soft", gamma: 1.5 });
    const context = model.tokenizeSync("once upon a time, there was a little");
    const [dist] = await model.nextTokenDistributions([context], { topK: 20 });
    const cands = dist.map((d) => d.token);
    const h = await hard.assess(context, cands);
    const s = await soft.assess(context, cands);
    expect(h.some((x) => x === Number.POSITIVE_INFINITY)).toBe(true);
    for (let i = 0; i < h.length; i++) expect(s[i]).toBe(h[i] === 0 ? 0 : 1.5);
    // A huge gamma demotes vetoed candidates below every kept one: same output as hard.
    const huge = new ProvDecodeVeto(idx, { tau: 20, mode: "soft", gamma: 1e6 });
    const prompt = "once upon a time, there was a little girl named lily.";
    expect(await greedyWithVeto(huge, prompt, 30)).toEqual(await greedyWithVeto(hard, prompt, 30));
  });
});

describe("regurgitation", () => {
  it("counts verbatim 8-grams and the longest span", async () => {
    const idx = TraceIndex.open(sliceDir);
    const copied = Array.from(idx.documentTokens(5)).slice(0, 30);
    const novel = model.tokenizeSync(" zebra quantum purple integral compiler", { addBos: false });
    const mixed = [...copied, ...novel];
    const r = regurgitation(idx, mixed, { n: 8 });
    let found = 0;
    for (let i = 0; i + 8 <= mixed.length; i++) if (idx.count(mixed.slice(i, i + 8)) > 0) found++;
    expect(r.ngrams).toBe(mixed.length - 7);
    expect(r.found).toBe(found);
    expect(r.share).toBeCloseTo(found / (mixed.length - 7), 12);
    expect(r.longestSpan).toBeGreaterThanOrEqual(30);
    expect(r.longestStart).toBe(0);
    expect(regurgitation(idx, novel, { n: 8 })).toMatchObject({ found: 0, share: 0 });
    expect(regurgitation(idx, [], { n: 8 })).toMatchObject({ ngrams: 0, share: 0, longestSpan: 0 });
  });
});
