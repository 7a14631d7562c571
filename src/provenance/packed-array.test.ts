import { describe, expect, it } from "vitest";
import { seededRandom } from "../lm/sampling.js";
import { bitWidthFor, PackedArray, packedWords } from "./packed-array.js";

describe("PackedArray", () => {
  it("bitWidthFor is ⌈log2 count⌉, at least 1", () => {
    expect([0, 1, 2, 3, 4, 5, 8, 9].map(bitWidthFor)).toEqual([1, 1, 1, 2, 2, 3, 3, 4]);
    expect(bitWidthFor(2 ** 21)).toBe(21);
    expect(bitWidthFor(2 ** 21 + 1)).toBe(22);
    expect(bitWidthFor(51_000_000)).toBe(26);
    expect(bitWidthFor(2 ** 32 - 1)).toBe(32);
    expect(bitWidthFor(2 ** 32)).toBe(32);
  });

  it("get/set round-trip for widths 1..32 at random indexes and word boundaries", () => {
    const r = seededRandom(11);
    for (let width = 1; width <= 32; width++) {
      const length = 257 + Math.floor(r() * 300);
      const a = new PackedArray(length, width);
      expect(a.data.length).toBe(packedWords(length, width));
      const ref = new Float64Array(length);
      const max = 2 ** width;
      // Entries that touch a word boundary (start in one word, end in the next or at its end).
      const boundary: number[] = [];
      for (let i = 0; i < length; i++) {
        const s = i * width;
        if (Math.floor(s / 32) !== Math.floor((s + width - 1) / 32) || (s + width) % 32 === 0 || s % 32 === 0)
          boundary.push(i);
      }
      expect(boundary.length).toBeGreaterThan(0);
      const order = [...boundary, ...Array.from({ length: 3 * length }, () => Math.floor(r() * length))];
      for (const i of order) {
        // Alternate extreme and random values so neighbours' bits are exercised.
        const v = r() < 0.3 ? (r() < 0.5 ? 0 : max - 1) : Math.floor(r() * max);
        a.set(i, v);
        ref[i] = v;
        expect(a.get(i)).toBe(v);
      }
      for (let i = 0; i < length; i++) expect(a.get(i), `width ${width} entry ${i}`).toBe(ref[i]);
      expect(a.words[a.words.length - 1]).toBe(0); // padding untouched
      expect([...a]).toEqual(Array.from(ref));
    }
  });

  it("packInPlace equals from() and reuses the input's memory", () => {
    const r = seededRandom(12);
    for (let width = 1; width <= 32; width++) {
      const length = 1 + Math.floor(r() * 500);
      const values = Array.from({ length }, () => Math.floor(r() * 2 ** width));
      const ref = PackedArray.from(values, width);
      const buf = new Int32Array(length + 1);
      for (let i = 0; i < length; i++) buf[i] = values[i] | 0;
      const packed = PackedArray.packInPlace(buf, length, width);
      expect(packed.words.buffer).toBe(buf.buffer);
      expect(Array.from(packed.words)).toEqual(Array.from(ref.words));
      for (let i = 0; i < length; i++) expect(packed.get(i)).toBe(values[i]);
    }
  });

  it("rejects bad widths and short word arrays", () => {
    expect(() => new PackedArray(4, 0)).toThrow(RangeError);
    expect(() => new PackedArray(4, 33)).toThrow(RangeError);
    expect(() => new PackedArray(64, 5, new Uint32Array(10))).toThrow(RangeError);
    expect(new PackedArray(64, 5, new Uint32Array(11)).length).toBe(64);
  });
});
