import { describe, expect, it } from "vitest";
import { seededRandom } from "../lm/sampling.js";
import { IndexBuilder } from "./builder.js";
import { suffixArray } from "./sais.js";

/** Deterministic PRNG so failures reproduce. */
const rng = seededRandom;

function naiveSuffixArray(t: ArrayLike<number>): number[] {
  const idx = Array.from({ length: t.length }, (_, i) => i);
  idx.sort((a, b) => {
    for (let k = 0; ; k++) {
      if (a + k >= t.length) return -1;
      if (b + k >= t.length) return 1;
      if (t[a + k] !== t[b + k]) return t[a + k] - t[b + k];
    }
  });
  return idx;
}

describe("SA-IS", () => {
  it("handles length 0 and 1", () => {
    expect([...suffixArray([], 5)]).toEqual([]);
    expect([...suffixArray([3], 5)]).toEqual([0]);
    expect([...suffixArray([0, 0], 1)]).toEqual([1, 0]);
  });

  it("equals a naive sort on random texts over tiny and larger alphabets", () => {
    const r = rng(1);
    for (let trial = 0; trial < 1500; trial++) {
      const n = Math.floor(r() * 80);
      const K = [1, 2, 3, 4, 17, 300][trial % 6];
      const t = Array.from({ length: n }, () => Math.floor(r() * K));
      expect([...suffixArray(t, K)], `text ${t.join(",")}`).toEqual(naiveSuffixArray(t));
    }
  });

  it("equals a naive sort on highly repetitive texts (deep recursion)", () => {
    const r = rng(2);
    for (let trial = 0; trial < 200; trial++) {
      const unit = Array.from({ length: 1 + Math.floor(r() * 5) }, () => Math.floor(r() * 3));
      const reps = 1 + Math.floor(r() * 60);
      const t: number[] = [];
      for (let i = 0; i < reps; i++) t.push(...unit);
      if (r() < 0.5) t.push(Math.floor(r() * 3));
      expect([...suffixArray(t, 3)], `text ${t.join(",")}`).toEqual(naiveSuffixArray(t));
    }
    const fib: number[][] = [[0], [0, 1]];
    for (let i = 2; i < 14; i++) fib.push([...fib[i - 1], ...fib[i - 2]]);
    const f = fib[13];
    expect([...suffixArray(f, 2)]).toEqual(naiveSuffixArray(f));
  });

  it("sorts a larger random text correctly (adjacent suffixes are ordered)", () => {
    const r = rng(3);
    const n = 200_000;
    const t = new Uint16Array(n);
    for (let i = 0; i < n; i++) t[i] = Math.floor(r() * r() * 50);
    const sa = suffixArray(t, 50);
    const seen = new Uint8Array(n);
    for (const p of sa) seen[p]++;
    expect(seen.every((c) => c === 1)).toBe(true);
    for (let i = 1; i < n; i++) {
      const a = sa[i - 1];
      const b = sa[i];
      let k = 0;
      while (a + k < n && b + k < n && t[a + k] === t[b + k]) k++;
      const ok = a + k === n || (b + k < n && t[a + k] < t[b + k]);
      if (!ok) expect.fail(`suffixes ${a} and ${b} out of order at row ${i}`);
    }
  });
});

function naiveCount(docs: number[][], pattern: number[]): number {
  let c = 0;
  for (const d of docs) {
    for (let i = 0; i + pattern.length <= d.length; i++) {
      let ok = true;
      for (let k = 0; k < pattern.length && ok; k++) ok = d[i + k] === pattern[k];
      if (ok) c++;
    }
  }
  return c;
}

function randomDocs(r: () => number, V: number, docs: number, maxLen: number): number[][] {
  return Array.from({ length: docs }, () =>
    Array.from({ length: 1 + Math.floor(r() * maxLen) }, () => Math.floor(r() * r() * V)),
  );
}

const identity = { id: "test", fileName: "test", tokenizerFingerprint: "0" };

describe("index queries on random corpora", () => {
  it("builder SA equals a naive sort of the non-separator suffixes", () => {
    const r = rng(4);
    for (let trial = 0; trial < 100; trial++) {
      const V = [1, 2, 5, 40][trial % 4];
      const docs = randomDocs(r, V, 1 + Math.floor(r() * 6), 12);
      const b = new IndexBuilder({ vocabularySize: V, model: identity, initialCapacity: 4 });
      for (const d of docs) b.addDocument(d);
      const idx = b.buildInMemory();
      // Reference: separator is larger than every token; compare within the token array.
      const flat: number[] = [];
      for (const d of docs) flat.push(...d, V);
      const ref = naiveSuffixArray(flat).filter((p) => flat[p] !== V);
      expect([...idx.sa]).toEqual(ref);
      expect([...idx.tokens]).toEqual(flat.map((x) => (x === V ? 0xffff : x)));
    }
  });

  it("count equals a naive scan and never spans documents", () => {
    const r = rng(5);
    for (let trial = 0; trial < 60; trial++) {
      const V = [2, 3, 8, 100][trial % 4];
      const docs = randomDocs(r, V, 1 + Math.floor(r() * 10), 30);
      const b = new IndexBuilder({ vocabularySize: V, model: identity });
      for (const d of docs) b.addDocument(d);
      const idx = b.buildInMemory();
      for (let q = 0; q < 40; q++) {
        // Half the patterns straddle two documents when concatenated.
        const flat = docs.flat();
        const len = 1 + Math.floor(r() * 6);
        const start = Math.floor(r() * Math.max(1, flat.length - len));
        const pattern =
          r() < 0.5 ? flat.slice(start, start + len) : Array.from({ length: len }, () => Math.floor(r() * V));
        expect(idx.count(pattern), `pattern ${pattern}`).toBe(naiveCount(docs, pattern));
        const found = idx.find(pattern, { limit: 1000 });
        expect(found.count).toBe(naiveCount(docs, pattern));
        for (const o of found.occurrences) {
          expect(docs[o.document].slice(o.offset, o.offset + pattern.length)).toEqual(pattern);
        }
      }
      expect(idx.count([])).toBe(idx.size);
      expect(idx.count([V])).toBe(0);
      expect(idx.count([-1])).toBe(0);
    }
  });

  it("attribute returns maximal, in-document spans with correct counts and BCI", () => {
    const r = rng(6);
    for (let trial = 0; trial < 40; trial++) {
      const V = [3, 6, 30][trial % 3];
      const docs = randomDocs(r, V, 2 + Math.floor(r() * 8), 40);
      const b = new IndexBuilder({ vocabularySize: V, model: identity });
      for (const d of docs) b.addDocument(d);
      const idx = b.buildInMemory();
      const flat = docs.flat();
      const query = [
        ...flat.slice(0, 20),
        ...Array.from({ length: 10 }, () => Math.floor(r() * V)),
        ...flat.slice(-20),
      ];
      const minLen = 1 + Math.floor(r() * 4);
      const maxCount = 1 + Math.floor(r() * 5);
      const spans = idx.attribute(query, { minLen, maxCount, examples: 100 });
      const n = idx.size;
      for (const s of spans) {
        const piece = query.slice(s.start, s.end);
        expect(s.length).toBeGreaterThanOrEqual(minLen);
        expect(s.count).toBe(naiveCount(docs, piece));
        expect(s.count).toBeGreaterThan(0);
        expect(s.count).toBeLessThanOrEqual(maxCount);
        // Longest at its start: one token more is not in the corpus.
        if (s.end < query.length) expect(naiveCount(docs, query.slice(s.start, s.end + 1))).toBe(0);
        let bci = 0;
        for (const t of piece) bci -= Math.log(naiveCount(docs, [t]) / n);
        expect(s.bci).toBeCloseTo(bci, 9);
        for (const e of s.examples)
          expect(docs[e.document].slice(e.offset, e.offset + s.length)).toEqual(piece);
      }
      // No kept span contains another.
      for (const a of spans)
        for (const c of spans) if (a !== c) expect(a.start <= c.start && c.end <= a.end).toBe(false);
      // Every qualifying longest match is covered by a kept span.
      const { lengths } = idx.longestMatches(query);
      for (let i = 0; i < query.length; i++) {
        const L = lengths[i];
        if (L >= minLen && naiveCount(docs, query.slice(i, i + L)) <= maxCount) {
          expect(spans.some((s) => s.start <= i && i + L <= s.end)).toBe(true);
        }
      }
    }
  });
});
