/**
 * Building a trace index from tokenized documents.
 *
 * Memory: tokens are appended to a growable typed array (u16 or u32, capacity doubling, so up to
 * 2× slack while tokenizing; it is trimmed before the suffix array is built). The suffix array is
 * built in place over that buffer (the token values are shifted by one for SA-IS's sentinel and
 * restored afterwards), so the peak is tokens (2 bytes/token for u16) + suffix array (4) + SA-IS
 * working space (≤ 2 bytes/token for the first recursion's buckets, plus 1 bit/token of types)
 * ≈ 8.1 bytes per corpus token (10.1 with u32 tokens). The corpus text itself is streamed and
 * never held whole. The limit is 2^31 − 2 tokens (a 32-bit signed suffix array in memory).
 *
 * The suffix array is then bit-packed (⌈log2 tokens⌉ bits per entry, see ./FORMAT.md) in place,
 * into the front of SA-IS's own Int32Array, so packing needs no second copy and adds nothing to
 * the peak; the packed words are what `sa.bin` holds and what a {@link TraceIndex} reads.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { TillerError } from "../errors.js";
import { throwIfAborted } from "../util/cooperative.js";
import { fsError } from "../util/fsErrors.js";
import type { ModelIdentity } from "./fingerprint.js";
import {
  assertLittleEndian,
  checkIndexTarget,
  commitDirectory,
  FORMAT_NAME,
  FORMAT_VERSION,
  type IndexHeader,
  makeStaging,
  SA_FILE,
  separatorFor,
  TOKENS_FILE,
  tokenWidthFor,
  UNIGRAMS_FILE,
  writeBinary,
  writeHeader,
} from "./format.js";
import { bitWidthFor, PackedArray } from "./packed-array.js";
import { suffixArrayOfShifted, suffixArrayOfShiftedAsync } from "./sais.js";
import { TraceIndex } from "./trace-index.js";

export type { ModelIdentity } from "./fingerprint.js";

export interface IndexBuilderOptions {
  vocabularySize: number;
  model: ModelIdentity;
  docSep?: string;
  lowercase?: boolean;
  /** Initial token capacity (grows by doubling). */
  initialCapacity?: number;
}

export type BuildPhase = "suffix-array" | "write";

/** What a built index holds in memory (before it is written or queried). */
export interface IndexArrays {
  header: IndexHeader;
  tokens: Uint16Array | Uint32Array;
  docStarts: Uint32Array;
  unigrams: Float64Array;
  sa: PackedArray;
}

const MAX_TOKENS = 0x7fffffff - 2;

export class IndexBuilder {
  readonly vocabularySize: number;
  readonly tokenWidth: 2 | 4;
  readonly separator: number;
  private buf: Uint16Array | Uint32Array;
  private length = 0;
  private docStarts: Uint32Array;
  private docCount = 0;
  private readonly unigrams: Float64Array;
  private readonly sources: IndexHeader["sources"] = [];
  private finished = false;

  constructor(private readonly options: IndexBuilderOptions) {
    const V = options.vocabularySize;
    if (!Number.isInteger(V) || V <= 0 || V >= 0xffffffff - 1) {
      throw new TillerError(`unsupported vocabulary size ${V}`, "index-vocab");
    }
    this.vocabularySize = V;
    this.tokenWidth = tokenWidthFor(V);
    this.separator = separatorFor(this.tokenWidth);
    const cap = Math.max(16, options.initialCapacity ?? 1 << 16);
    this.buf = this.tokenWidth === 2 ? new Uint16Array(cap) : new Uint32Array(cap);
    this.docStarts = new Uint32Array(1024);
    this.unigrams = new Float64Array(V);
  }

  /** Corpus tokens so far (separators excluded). */
  get corpusTokens(): number {
    return this.length - this.docCount;
  }

  get documents(): number {
    return this.docCount;
  }

  /** Start a new source file; documents added until the next call are attributed to it. */
  beginSource(file: string, bytes: number): void {
    this.sources.push({ path: file, bytes, firstDocument: this.docCount, documents: 0 });
  }

  /** Append one document (token ids in `[0, vocabularySize)`); empty documents are skipped. */
  addDocument(tokens: ArrayLike<number>): void {
    if (this.finished) throw new Error("IndexBuilder already finished");
    const m = tokens.length;
    if (m === 0) return;
    const need = this.length + m + 2; // + separator + the sentinel slot SA-IS needs
    if (need > MAX_TOKENS) throw new TillerError(`corpus exceeds ${MAX_TOKENS} tokens`, "index-too-large");
    if (need > this.buf.length) this.grow(need);
    const V = this.vocabularySize;
    const buf = this.buf;
    const uni = this.unigrams;
    let p = this.length;
    for (let i = 0; i < m; i++) {
      const t = tokens[i];
      if (!(t >= 0 && t < V && Number.isInteger(t))) {
        throw new TillerError(`token id ${t} outside the vocabulary [0, ${V})`, "index-bad-token");
      }
      buf[p++] = t;
      uni[t]++;
    }
    buf[p++] = this.separator;
    if (this.docCount + 2 > this.docStarts.length) {
      const next = new Uint32Array(this.docStarts.length * 2);
      next.set(this.docStarts);
      this.docStarts = next;
    }
    this.docStarts[this.docCount++] = this.length;
    this.length = p;
    const src = this.sources.at(-1);
    if (src) src.documents++;
  }

  private grow(need: number): void {
    let cap = this.buf.length;
    while (cap < need) cap = Math.min(MAX_TOKENS + 2, cap * 2);
    const next = this.tokenWidth === 2 ? new Uint16Array(cap) : new Uint32Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  /** Build the suffix array and return the index arrays (the builder cannot be used after). */
  build(): IndexArrays {
    const shifted = this.shiftForSuffixArray();
    return this.assemble(shifted, suffixArrayOfShifted(shifted.work, this.length, shifted.max));
  }

  /**
   * {@link build} that gives way to the event loop while the suffix array is built (seconds on a
   * large corpus) and rejects with the abort error once `signal` fires.
   */
  async buildAsync(signal?: AbortSignal): Promise<IndexArrays> {
    const shifted = this.shiftForSuffixArray();
    const full = await suffixArrayOfShiftedAsync(shifted.work, this.length, shifted.max, signal);
    return this.assemble(shifted, full);
  }

  /** The text SA-IS sorts: tokens → 1..V, separator → V + 1 (largest), sentinel 0 at N. */
  private shiftForSuffixArray(): {
    buf: Uint16Array | Uint32Array;
    work: Uint16Array | Uint32Array;
    max: number;
  } {
    if (this.finished) throw new Error("IndexBuilder already finished");
    this.finished = true;
    const N = this.length;
    const V = this.vocabularySize;
    const sep = this.separator;
    // Trim to N + 1 (sentinel slot) so the peak below stays at the stated bound.
    let buf: Uint16Array | Uint32Array = this.buf;
    if (buf.length > N + 1) {
      buf = buf.slice(0, N + 1);
      this.buf = buf;
    }
    // Shift in place (into a wider copy only when V = 65535 exactly).
    let work: Uint16Array | Uint32Array = buf;
    const shiftedMax = V + 1;
    if (shiftedMax > (this.tokenWidth === 2 ? 0xffff : 0xffffffff)) work = new Uint32Array(N + 1);
    for (let i = 0; i < N; i++) {
      const t = buf[i];
      work[i] = t === sep ? shiftedMax : t + 1;
    }
    return { buf, work, max: shiftedMax };
  }

  /** Undoes the shift and packs the suffix array with the other index arrays. */
  private assemble(
    shifted: { buf: Uint16Array | Uint32Array; work: Uint16Array | Uint32Array; max: number },
    full: Int32Array,
  ): IndexArrays {
    const N = this.length;
    const V = this.vocabularySize;
    const sep = this.separator;
    const { buf, work, max: shiftedMax } = shifted;
    if (work === buf) {
      for (let i = 0; i < N; i++) {
        const t = buf[i];
        buf[i] = t === shiftedMax ? sep : t - 1;
      }
    }
    const n = this.corpusTokens;
    // Separator suffixes sort last (separator is the largest symbol): keep the first n, packed in
    // place (n + documents ≥ packed words + 1 padding word, since width ≤ 32 and documents ≥ 1).
    const saWidth = bitWidthFor(N);
    const sa = N === 0 ? new PackedArray(0, saWidth) : PackedArray.packInPlace(full, n, saWidth);
    const docStarts = new Uint32Array(this.docCount + 1);
    docStarts.set(this.docStarts.subarray(0, this.docCount));
    docStarts[this.docCount] = N;
    const header: IndexHeader = {
      format: FORMAT_NAME,
      version: FORMAT_VERSION,
      tokenWidth: this.tokenWidth,
      separator: sep,
      vocabularySize: V,
      tokens: N,
      corpusTokens: n,
      documents: this.docCount,
      saWidth,
      model: { ...this.options.model },
      build: {
        docSep: this.options.docSep ?? "blank-line",
        lowercase: this.options.lowercase ?? false,
        createdAt: new Date().toISOString(),
        tiller: "0.1.0",
      },
      sources: this.sources.map((s) => ({ ...s })),
      files: {},
    };
    return { header, tokens: buf.subarray(0, N), docStarts, unigrams: this.unigrams, sa };
  }

  /** Build in memory and return a queryable index (tests, benchmarks). */
  buildInMemory(): TraceIndex {
    const data = this.build();
    return new TraceIndex(data.header, data.tokens, data.docStarts, data.unigrams, data.sa);
  }

  /**
   * Build and write the index to `out` atomically: every file goes into a staging directory
   * beside `out`, the header last, then the directory is renamed into place. `out` must be
   * absent, an empty folder, or a tiller index (replaced). The write phase yields to the event
   * loop and stops when `signal` fires; the staging folder is then removed.
   */
  async write(
    out: string,
    options: { onPhase?: (phase: BuildPhase) => void; signal?: AbortSignal } = {},
  ): Promise<IndexHeader> {
    assertLittleEndian();
    checkIndexTarget(out);
    const { onPhase, signal } = options;
    throwIfAborted(signal);
    onPhase?.("suffix-array");
    const data = await this.buildAsync(signal);
    onPhase?.("write");
    const staging = makeStaging(out);
    try {
      const header = data.header;
      header.files[TOKENS_FILE] = await writeBinary(path.join(staging, TOKENS_FILE), data.tokens, signal);
      const counts = new BigUint64Array(this.vocabularySize);
      for (let i = 0; i < counts.length; i++) counts[i] = BigInt(data.unigrams[i]);
      header.files[UNIGRAMS_FILE] = await writeBinary(path.join(staging, UNIGRAMS_FILE), counts, signal);
      header.files[SA_FILE] = await writeBinary(path.join(staging, SA_FILE), data.sa.data, signal);
      writeHeader(staging, header);
      throwIfAborted(signal);
      commitDirectory(staging, out);
      return header;
    } catch (e) {
      try {
        fs.rmSync(staging, { recursive: true, force: true });
      } catch {
        // The next build removes it (a staging folder of a dead process).
      }
      throw fsError("write the index", out, e, "index-write-failed");
    }
  }
}
