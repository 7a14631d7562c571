/**
 * Prov-Decode's case-normalised lookup and minimum match length, with the real stories model and
 * an index of a slice of the shared (lowercased) corpus.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadTestModel, sharedPath } from "../../test/helpers.js";
import { deal } from "../decoding/deal/index.js";
import { runStrategy } from "../decoding/run.js";
import type { CandidateVeto } from "../decoding/veto.js";
import { TillerError } from "../errors.js";
import type { LlamaCppModel } from "../lm/llama/LlamaCppModel.js";
import { promptTokens } from "../lm/prompt.js";
import type { Token } from "../lm/types.js";
import { keywordsReward } from "../rewards/index.js";
import { buildIndex } from "./build-index.js";
import { PROV_DECODE_RECOMMENDED, ProvDecodeVeto, type ProvMatch } from "./prov-decode.js";
import { TraceIndex } from "./trace-index.js";

let model: LlamaCppModel;
let tmp: string;
let index: TraceIndex;
/** Corpus paragraphs written the way the model writes: sentence starts and names capitalised. */
let cased: string[];

function capitalise(text: string): string {
  return text
    .replace(/(^|[.!?]\s+)([a-z])/g, (_, a: string, b: string) => a + b.toUpperCase())
    .replace(/\b(lily|tom|ben|max|sue|tim|mia|sam|anna|lucy)\b/g, (w) => w[0].toUpperCase() + w.slice(1));
}

beforeAll(async () => {
  model = await loadTestModel();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tiller-provdecode-"));
  const shared = fs.readFileSync(sharedPath("corpora/tinystories-4m.txt"), "utf8");
  const slice = shared.slice(0, shared.indexOf("\n\n", 200_000));
  fs.writeFileSync(path.join(tmp, "slice.txt"), slice);
  await buildIndex(model, [path.join(tmp, "slice.txt")], path.join(tmp, "idx"), { lowercase: true });
  index = TraceIndex.open(path.join(tmp, "idx"));
  cased = slice
    .split(/\n[ \t]*\n/)
    .map((p) => p.trim())
    .filter((p) => p.length > 200)
    .slice(0, 40)
    .map(capitalise);
});

afterAll(async () => {
  await model?.dispose();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** Reference for the normalised lookup: decode, cut the first word fragment, lowercase, re-tokenize whole, scan. */
async function reference(
  context: readonly Token[],
  candidate: Token,
  n: number,
): Promise<{ length: number; count: number; bci: number }> {
  const start = Math.max(0, context.length - n);
  let text = model.detokenize(context.slice(start), {
    context: context.slice(Math.max(0, start - 8), start),
  });
  if (start > 0 && !/^\s/.test(text)) {
    const cut = text.search(/\s/);
    text = cut < 0 ? "" : text.slice(cut);
  }
  const candidateText = model.detokenize([candidate], { context: context.slice(-1) });
  if (candidateText === "" || model.isStopToken(candidate)) return { length: 0, count: 0, bci: 0 };
  const q = await index.tokenizeQuery(model, `${text}${candidateText}`.replace(/^ +/, ""));
  for (let s = 0; s < q.length; s++) {
    const count = index.count(q.slice(s));
    if (count > 0) return { length: q.length - s, count, bci: index.bci(q, s) };
  }
  return { length: 0, count: 0, bci: 0 };
}

/** (context, candidate) pairs from capitalised corpus text: the true next token and a few others. */
function samples(limit: number): [Token[], Token[]][] {
  const out: [Token[], Token[]][] = [];
  for (const paragraph of cased) {
    const tokens = model.tokenizeSync(paragraph);
    for (let i = 3; i < tokens.length && out.length < limit; i += 7)
      out.push([tokens.slice(0, i), [tokens[i], 13, 100, 300, 511, tokens[i - 1]]]);
  }
  return out;
}

describe("Prov-Decode: case-normalised lookup", () => {
  it("finds the longest occurring suffix of the re-tokenized window + candidate", async () => {
    for (const n of [4, 12]) {
      const veto = new ProvDecodeVeto(index, { n, tau: 20, minLength: 1, normalize: { model } });
      for (const [context, candidates] of samples(300)) {
        const got = await veto.inspect(context, candidates);
        for (const [i, c] of candidates.entries()) {
          const ref = await reference(context, c, n);
          const where = `n ${n} ${JSON.stringify(model.detokenize(context.slice(-n)))} + ${JSON.stringify(model.detokenize([c]))}`;
          expect(got[i].length, where).toBe(ref.length);
          expect(got[i].count, where).toBe(ref.count);
          expect(got[i].bci, where).toBeCloseTo(ref.bci, 9);
          expect(got[i].vetoed, where).toBe(ref.bci > 20);
        }
      }
    }
  });

  it("catches capitalised copies that a raw-token lookup misses", async () => {
    const options = { n: 12, minLength: 8, tau: 20 };
    const raw = new ProvDecodeVeto(index, options);
    const normalized = new ProvDecodeVeto(index, { ...options, normalize: { model } });
    // Candidates that start a capitalised word ("Lily", "She"): the corpus only has them lowercased.
    let capitalised = 0;
    let rawVetoes = 0;
    let normalizedVetoes = 0;
    for (const paragraph of cased) {
      const tokens = await model.tokenize(paragraph);
      for (let i = 10; i < tokens.length; i++) {
        if (!/^ ?[A-Z]/.test(model.detokenize([tokens[i]], { context: tokens.slice(i - 1, i) }))) continue;
        capitalised++;
        const context = tokens.slice(0, i);
        if ((await raw.inspect(context, [tokens[i]]))[0].vetoed) rawVetoes++;
        if ((await normalized.inspect(context, [tokens[i]]))[0].vetoed) normalizedVetoes++;
      }
    }
    expect(capitalised).toBeGreaterThan(100);
    expect(rawVetoes).toBe(0);
    expect(normalizedVetoes).toBeGreaterThan(capitalised / 4);
  });

  it("vetoes exactly the matches of at least minLength tokens whose BCI exceeds tau", async () => {
    for (const minLength of [1, 6, 8]) {
      const veto = new ProvDecodeVeto(index, { n: 12, tau: 20, minLength, normalize: { model } });
      const fast = new ProvDecodeVeto(index, {
        n: 12,
        tau: 20,
        minLength,
        normalize: { model },
        mode: "hard",
      });
      let vetoed = 0;
      for (const [context, candidates] of samples(200)) {
        const got: ProvMatch[] = await veto.inspect(context, candidates);
        // assess takes shortcuts (it only needs the verdict) and must agree with inspect.
        const penalties = await fast.assess(context, candidates);
        for (const [i, c] of candidates.entries()) {
          const ref = await reference(context, c, 12);
          const expected = ref.length >= minLength && ref.bci > 20;
          expect(got[i].vetoed, `minLength ${minLength}`).toBe(expected);
          expect(penalties[i]).toBe(expected ? Number.POSITIVE_INFINITY : 0);
          if (expected) vetoed++;
        }
      }
      expect(vetoed).toBeGreaterThan(0);
    }
  });

  it("never vetoes a candidate without text (a stop token), and the raw lookup honours minLength", async () => {
    const veto = new ProvDecodeVeto(index, { ...PROV_DECODE_RECOMMENDED, normalize: { model } });
    const tokens = await model.tokenize(cased[0]);
    const eos = [...Array(model.vocabularySize).keys()].find((t) => model.isStopToken(t));
    if (eos !== undefined)
      expect((await veto.inspect(tokens.slice(0, 30), [eos]))[0]).toMatchObject({ length: 0, vetoed: false });
    const raw1 = new ProvDecodeVeto(index, { n: 8, tau: 20 });
    const raw9 = new ProvDecodeVeto(index, { n: 8, tau: 20, minLength: 9 });
    const lower = await index.tokenizeQuery(model, cased[0]);
    for (let i = 1; i < 60; i++) {
      const [a] = await raw1.inspect(lower.slice(0, i), [lower[i]]);
      const [b] = await raw9.inspect(lower.slice(0, i), [lower[i]]);
      expect(b.length).toBe(a.length);
      expect(b.vetoed).toBe(a.vetoed && a.length >= 9);
    }
    expect(() => new ProvDecodeVeto(index, { minLength: 0 })).toThrow(TillerError);
    for (const bad of [{ gamma: 0 }, { gamma: -1 }, { n: -1 }, { n: 1.5 }, { tau: Number.NaN }]) {
      let error: unknown;
      try {
        new ProvDecodeVeto(index, bad);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(bad)).toBeInstanceOf(TillerError);
      expect((error as TillerError).code).toBe("bad-prov-decode-option");
      expect((error as TillerError).message).toMatch(/^Prov-Decode \w+ \(--[a-z-]+\) must be/);
    }
  });
});

describe("Prov-Decode in DeAL", () => {
  it("a hard veto: DeAL never emits a token that completes a vetoed copy, and copies less", async () => {
    const prompt = "Once upon a time, there was a little girl named Lily.";
    const options = { ...PROV_DECODE_RECOMMENDED, mode: "hard" as const };
    const veto = new ProvDecodeVeto(index, { ...options, normalize: { model } });
    const run = async (vetoes: ProvDecodeVeto[]) =>
      runStrategy(
        deal({ reward: keywordsReward(["ball", "park"]), k: 5, lookahead: 8, lambda: 50, beams: 1, vetoes }),
        {
          model,
          prompt,
          promptTokens: await promptTokens(model, prompt),
          maxTokens: 96,
        },
      );
    const plain = await run([]);
    const guarded = await run([veto]);
    expect(veto.stats.vetoed).toBeGreaterThan(0);
    const check = new ProvDecodeVeto(index, { ...options, normalize: { model } });
    const all = [...(await promptTokens(model, prompt)), ...guarded.tokens];
    const offset = all.length - guarded.tokens.length;
    for (let i = offset; i < all.length; i++)
      expect((await check.inspect(all.slice(0, i), [all[i]]))[0].vetoed, `token ${i - offset}`).toBe(false);
    const longest = async (text: string) => {
      const q = await index.tokenizeQuery(model, text.trimStart());
      return Math.max(0, ...Array.from(index.longestMatches(q).lengths));
    };
    expect(await longest(guarded.text)).toBeLessThan(await longest(plain.text));
    expect(await longest(guarded.text)).toBeLessThan(16);
  });
});

/** Hard-vetoes the model's own 5 most likely next tokens (so every DeAL top-5 candidate is vetoed). */
class TopFiveVeto implements CandidateVeto {
  readonly name = "top-five";
  async assess(context: readonly Token[], candidates: readonly Token[]): Promise<number[]> {
    const [top] = await model.nextTokenDistributions([[...context]], { topK: 5 });
    const banned = new Set(top.map((entry) => entry.token));
    return candidates.map((c) => (banned.has(c) ? Number.POSITIVE_INFINITY : 0));
  }
}

describe("DeAL when hard vetoes drop every top-k candidate", () => {
  it("searches further down the distribution instead of ending the text", async () => {
    const prompt = "It was a sunny day.";
    const veto = new TopFiveVeto();
    const prefix = await promptTokens(model, prompt);
    const out = await runStrategy(
      deal({
        reward: keywordsReward(["dog", "tree"]),
        k: 5,
        lookahead: 8,
        lambda: 50,
        beams: 1,
        vetoes: [veto],
      }),
      { model, prompt, promptTokens: prefix, maxTokens: 40 },
    );
    expect(out.tokens.length).toBeGreaterThanOrEqual(20);
    const all = [...prefix, ...out.tokens];
    for (let i = prefix.length; i < all.length; i++) {
      const [penalty] = await veto.assess(all.slice(0, i), [all[i]]);
      expect(penalty, `token ${i - prefix.length}`).toBe(0);
    }
  });
});
