/**
 * A fixed-width bit-packed array of unsigned integers (1–32 bits per entry), the storage of a
 * trace index's suffix array (see ./FORMAT.md).
 *
 * Entry i occupies bits `[i·w, (i+1)·w)` of a little-endian stream of 32-bit words: bit b is bit
 * `b mod 32` of word `⌊b/32⌋` (equivalently bit `b mod 8` of byte `⌊b/8⌋`), least significant
 * bit first. Reading an entry combines at most two words. The backing `words` array carries one
 * zero padding word after the last data word so `get` can always read two words without a bounds
 * branch; the padding is not part of the file.
 */

/** Bits needed to store every value in `[0, count)`: `max(1, ⌈log2 count⌉)`. */
export function bitWidthFor(count: number): number {
  if (!(count >= 0 && count <= 2 ** 32)) throw new RangeError(`no bit width for ${count} values`);
  return count <= 2 ? 1 : 32 - Math.clz32(count - 1);
}

/** Data words of `length` entries of `width` bits: `⌈length·width/32⌉`. */
export function packedWords(length: number, width: number): number {
  return Math.ceil((length * width) / 32);
}

export class PackedArray {
  /** Data words followed by one zero padding word (see {@link PackedArray.data}). */
  readonly words: Uint32Array;
  private readonly mask: number;

  /**
   * `words`, when given, must hold at least `packedWords(length, width) + 1` words (the last one
   * zero); otherwise a zeroed array is allocated.
   */
  constructor(
    readonly length: number,
    readonly width: number,
    words?: Uint32Array,
  ) {
    if (!(Number.isInteger(width) && width >= 1 && width <= 32))
      throw new RangeError(`packed width ${width} outside 1..32`);
    if (!(Number.isInteger(length) && length >= 0)) throw new RangeError(`bad packed length ${length}`);
    const need = packedWords(length, width) + 1;
    if (words && words.length < need)
      throw new RangeError(`packed array needs ${need} words, got ${words.length}`);
    this.words = words ? words.subarray(0, need) : new Uint32Array(need);
    this.mask = width === 32 ? 0xffffffff : 2 ** width - 1;
  }

  /** The data words as stored on disk (without the padding word). */
  get data(): Uint32Array {
    return this.words.subarray(0, this.words.length - 1);
  }

  /** Entry `i` (no bounds check beyond the typed array's: callers pass `0 ≤ i < length`). */
  get(i: number): number {
    const bit = i * this.width;
    const w = Math.floor(bit / 32);
    const off = bit - w * 32;
    const words = this.words;
    // `(hi << 1) << (31 − off)` is hi shifted left by 32 − off, and 0 when off = 0.
    return (((words[w] >>> off) | ((words[w + 1] << 1) << (31 - off))) & this.mask) >>> 0;
  }

  /** Set entry `i` to `value` (an integer in `[0, 2^width)`). */
  set(i: number, value: number): void {
    const width = this.width;
    const bit = i * width;
    const w = Math.floor(bit / 32);
    const off = bit - w * 32;
    const words = this.words;
    const v = (value & this.mask) >>> 0;
    const lowBits = Math.min(width, 32 - off);
    const lowMask = lowBits === 32 ? 0xffffffff : (2 ** lowBits - 1) * 2 ** off;
    words[w] = ((words[w] & ~lowMask) | ((v << off) & lowMask)) >>> 0;
    if (lowBits < width) {
      const highMask = 2 ** (width - lowBits) - 1;
      words[w + 1] = ((words[w + 1] & ~highMask) | (v >>> lowBits)) >>> 0;
    }
  }

  *[Symbol.iterator](): IterableIterator<number> {
    for (let i = 0; i < this.length; i++) yield this.get(i);
  }

  /** A packed copy of `values` (allocates; see {@link PackedArray.packInPlace} to avoid that). */
  static from(values: ArrayLike<number>, width: number): PackedArray {
    const out = new PackedArray(values.length, width);
    for (let i = 0; i < values.length; i++) out.set(i, values[i]);
    return out;
  }

  /**
   * Pack the first `length` entries of `values` (each in `[0, 2^width)`) into the front of
   * `values`' own memory, left to right, with no second copy: packed word k is written only after
   * every entry it holds has been read, and those entries have indexes ≥ k (width ≤ 32), so no
   * entry is overwritten before it is read. `values` must have room for the padding word:
   * `values.length ≥ packedWords(length, width) + 1`. `values` is garbage afterwards.
   */
  static packInPlace(values: Uint32Array | Int32Array, length: number, width: number): PackedArray {
    const nWords = packedWords(length, width);
    if (values.length < nWords + 1) throw new RangeError("packInPlace needs room for one padding word");
    const words = new Uint32Array(values.buffer, values.byteOffset, nWords + 1);
    const src =
      values instanceof Uint32Array ? values : new Uint32Array(values.buffer, values.byteOffset, length);
    const mask = width === 32 ? 0xffffffff : 2 ** width - 1;
    // acc holds `fill` pending low bits (fill < 32) of the word being assembled.
    let acc = 0;
    let fill = 0;
    let k = 0;
    for (let i = 0; i < length; i++) {
      const v = (src[i] & mask) >>> 0;
      acc = (acc | (v << fill)) >>> 0;
      fill += width;
      if (fill >= 32) {
        words[k++] = acc;
        fill -= 32;
        // The bits of v that did not fit: v >>> (width − fill); none when fill = 0.
        acc = fill === 0 ? 0 : v >>> (width - fill);
      }
    }
    if (fill > 0) words[k++] = acc;
    words[k] = 0; // padding
    return new PackedArray(length, width, words);
  }
}
