/**
 * A loaded trace index and its queries: count, find, longest matches, attribute, BCI.
 *
 * Every query is a binary search over the suffix array. A pattern is matched token by token:
 * the range of suffixes starting with `p[0..k)` is narrowed to those whose token at depth k is
 * `p[k]` (two binary searches inside the current range). The range for the first token comes
 * from the unigram counts for free (suffixes are bucketed by their first token). Patterns never
 * match across documents: every document is followed by the separator, which is not a token.
 * The suffix array stays bit-packed in memory as on disk ({@link PackedArray}); document starts
 * are found at open time by scanning the tokens for separators.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { TillerError } from "../errors.js";
import type { LanguageModel, Token } from "../lm/types.js";
import { tokenizerFingerprint } from "./fingerprint.js";
import {
  assertLittleEndian,
  DATA_FILES,
  type IndexHeader,
  readBinaryInto,
  readHeader,
  SA_FILE,
  TOKENS_FILE,
  UNIGRAMS_FILE,
} from "./format.js";
import { bitWidthFor, PackedArray, packedWords } from "./packed-array.js";

/** Probability given to a token the corpus never contains (BCI, as in TraceAlign). */
export const UNSEEN_TOKEN_PROBABILITY = 1e-9;

export interface OpenIndexOptions {
  /** Verify each file's sha256 against the header (default true; costs one pass over the files). */
  verify?: boolean;
}

/** One occurrence of a pattern. */
export interface Occurrence {
  /** Document number (0-based, in build order). */
  document: number;
  /** Token offset of the match inside its document. */
  offset: number;
  /** Token position in the index's token array. */
  position: number;
}

export interface FindResult {
  count: number;
  /** Up to `limit` occurrences, by position. */
  occurrences: Occurrence[];
}

export interface AttributeOptions {
  /** Keep spans of at least this many tokens (default 4). */
  minLen?: number;
  /** Keep spans that occur at most this many times in the corpus (default 3, as in TraceAlign). */
  maxCount?: number;
  /** Example occurrences reported per span (default 3). */
  examples?: number;
}

/** A maximal span of the query found verbatim in the corpus. */
export interface AttributedSpan {
  /** Token range `[start, end)` in the query. */
  start: number;
  end: number;
  length: number;
  /** Occurrences in the corpus. */
  count: number;
  /** Belief Conflict Index: −Σ log p_unigram(token) over the span (natural log). */
  bci: number;
  examples: Occurrence[];
}

/** For each start of a query, the longest prefix found in the corpus and its SA range. */
export interface LongestMatches {
  lengths: Int32Array;
  /** SA range `[lo, hi)` of the longest match at each start (hi − lo = its count). */
  lo: Int32Array;
  hi: Int32Array;
}

export class TraceIndex {
  /** Corpus tokens (separators excluded) = suffix array length. */
  readonly size: number;
  readonly vocabularySize: number;
  readonly documents: number;
  /** −log p_unigram(token), with p = 1e-9 for unseen tokens. */
  readonly negLogProb: Float64Array;
  /** SA range of suffixes starting with token t: `[bucketStart[t], bucketStart[t + 1])`. */
  private readonly bucketStart: Float64Array;

  constructor(
    readonly header: IndexHeader,
    /** Corpus tokens, one separator after each document. */
    readonly tokens: Uint16Array | Uint32Array,
    /** Start of each document in `tokens`, plus a final entry = tokens.length. */
    readonly docStarts: Uint32Array,
    /** Occurrences of each token id. */
    readonly unigrams: Float64Array,
    /** Positions of the non-separator suffixes, sorted (bit-packed). */
    readonly sa: PackedArray,
  ) {
    this.size = sa.length;
    this.vocabularySize = header.vocabularySize;
    this.documents = docStarts.length - 1;
    const V = this.vocabularySize;
    this.negLogProb = new Float64Array(V);
    this.bucketStart = new Float64Array(V + 1);
    let sum = 0;
    const unseen = -Math.log(UNSEEN_TOKEN_PROBABILITY);
    for (let t = 0; t < V; t++) {
      this.bucketStart[t] = sum;
      sum += unigrams[t];
      this.negLogProb[t] = unigrams[t] > 0 ? -Math.log(unigrams[t] / this.size) : unseen;
    }
    this.bucketStart[V] = sum;
    if (sum !== this.size)
      throw new TillerError(
        "trace index is inconsistent: unigram counts do not sum to the suffix array length",
        "index-corrupt",
      );
  }

  /** Open the index in `dir`: header checks, sizes, and (by default) checksums. */
  static open(dir: string, options: OpenIndexOptions = {}): TraceIndex {
    assertLittleEndian();
    const header = readHeader(dir);
    const verify = options.verify ?? true;
    const N = header.tokens;
    const n = header.corpusTokens;
    const d = header.documents;
    if (N !== n + d)
      throw new TillerError(
        `${dir}: header counts disagree (tokens ≠ corpus tokens + documents)`,
        "index-corrupt",
      );
    if (header.saWidth !== bitWidthFor(N))
      throw new TillerError(
        `${dir}: header saWidth ${header.saWidth} disagrees with ${N} tokens (expected ${bitWidthFor(N)})`,
        "index-corrupt",
      );
    const saWords = packedWords(n, header.saWidth);
    const expectBytes: Record<string, number> = {
      [TOKENS_FILE]: N * header.tokenWidth,
      [UNIGRAMS_FILE]: header.vocabularySize * 8,
      [SA_FILE]: saWords * 4,
    };
    for (const name of DATA_FILES) {
      const entry = header.files[name];
      if (!entry) throw new TillerError(`${dir}: header lists no ${name}`, "index-corrupt");
      if (entry.bytes !== expectBytes[name]) {
        throw new TillerError(
          `${dir}: header size of ${name} (${entry.bytes}) disagrees with its counts`,
          "index-corrupt",
        );
      }
    }
    const read = (name: string, target: ArrayBufferView): void => {
      const file = path.join(dir, name);
      let actual: number;
      try {
        actual = fs.statSync(file).size;
      } catch {
        throw new TillerError(`trace index ${dir} is missing ${name}`, "index-corrupt");
      }
      if (actual < target.byteLength) {
        throw new TillerError(
          `trace index file ${file} is truncated (${actual} of ${target.byteLength} bytes)`,
          "index-truncated",
        );
      }
      if (actual > target.byteLength) {
        throw new TillerError(
          `trace index file ${file} has ${actual} bytes, expected ${target.byteLength}`,
          "index-corrupt",
        );
      }
      const digest = readBinaryInto(file, target, verify);
      if (verify && digest !== header.files[name]?.sha256) {
        throw new TillerError(
          `trace index file ${file} fails its checksum (corrupted); rebuild the index`,
          "index-checksum",
        );
      }
    };
    const tokens = header.tokenWidth === 2 ? new Uint16Array(N) : new Uint32Array(N);
    read(TOKENS_FILE, tokens);
    const counts = new BigUint64Array(header.vocabularySize);
    read(UNIGRAMS_FILE, counts);
    const saWordArray = new Uint32Array(saWords + 1); // + the zero padding word PackedArray reads
    read(SA_FILE, saWordArray.subarray(0, saWords));
    const sa = new PackedArray(n, header.saWidth, saWordArray);
    const unigrams = new Float64Array(counts.length);
    for (let i = 0; i < counts.length; i++) unigrams[i] = Number(counts[i]);
    const docStarts = documentStarts(tokens, header.separator, d);
    if (!docStarts)
      throw new TillerError(
        `${dir}: ${TOKENS_FILE} does not hold ${d} separator-terminated documents`,
        "index-corrupt",
      );
    return new TraceIndex(header, tokens, docStarts, unigrams, sa);
  }

  /** Throws unless `model` tokenizes exactly as the model the index was built with. */
  async checkModel(model: LanguageModel): Promise<void> {
    const fp = await tokenizerFingerprint(model);
    if (model.vocabularySize !== this.vocabularySize || fp !== this.header.model.tokenizerFingerprint) {
      throw new TillerError(
        `the index was built with the tokenizer of ${this.header.model.fileName}; ${model.id} tokenizes differently — use the same model`,
        "index-model-mismatch",
      );
    }
  }

  /** Tokens of a query text, normalised as the corpus was (lowercased when built with --lowercase). */
  tokenizeQuery(model: LanguageModel, text: string): Promise<Token[]> {
    return model.tokenize(this.header.build.lowercase ? text.toLowerCase() : text, { addBos: false });
  }

  /**
   * Narrow the SA range `[lo, hi)` whose suffixes share a prefix of length `depth` to those whose
   * token at `depth` is `token`. Returns the new lo; the new hi is in `this.lastHi`.
   */
  narrow(lo: number, hi: number, depth: number, token: number): number {
    if (!(token >= 0 && token < this.vocabularySize)) {
      this.lastHi = lo;
      return lo;
    }
    if (depth === 0 && lo === 0 && hi === this.size) {
      this.lastHi = this.bucketStart[token + 1];
      return this.bucketStart[token];
    }
    const sa = this.sa;
    const T = this.tokens;
    // lower bound: first i with T[sa[i] + depth] >= token
    let a = lo;
    let b = hi;
    while (a < b) {
      const mid = (a + b) >>> 1;
      if (T[sa.get(mid) + depth] < token) a = mid + 1;
      else b = mid;
    }
    const newLo = a;
    b = hi;
    while (a < b) {
      const mid = (a + b) >>> 1;
      if (T[sa.get(mid) + depth] <= token) a = mid + 1;
      else b = mid;
    }
    this.lastHi = a;
    return newLo;
  }
  /** Upper end of the range returned by the last {@link narrow}. */
  lastHi = 0;

  /** SA range `[lo, hi)` of the suffixes starting with `pattern` (empty range: lo = hi). */
  range(pattern: readonly number[] | ArrayLike<number>): { lo: number; hi: number } {
    let lo = 0;
    let hi = this.size;
    for (let k = 0; k < pattern.length && lo < hi; k++) {
      lo = this.narrow(lo, hi, k, pattern[k]);
      hi = this.lastHi;
    }
    return { lo, hi: Math.max(lo, hi) };
  }

  /** Occurrences of `pattern` in the corpus (the empty pattern occurs at every token). */
  count(pattern: readonly number[] | ArrayLike<number>): number {
    let lo = 0;
    let hi = this.size;
    for (let k = 0; k < pattern.length && lo < hi; k++) {
      lo = this.narrow(lo, hi, k, pattern[k]);
      hi = this.lastHi;
    }
    return hi > lo ? hi - lo : 0;
  }

  /** The document containing token position `position`. */
  documentOf(position: number): number {
    const ds = this.docStarts;
    let a = 0;
    let b = ds.length - 1;
    while (b - a > 1) {
      const mid = (a + b) >>> 1;
      if (ds[mid] <= position) a = mid;
      else b = mid;
    }
    return a;
  }

  occurrenceAt(position: number): Occurrence {
    const document = this.documentOf(position);
    return { document, offset: position - this.docStarts[document], position };
  }

  /** Occurrences in SA rows `[lo, min(hi, lo + limit))`, sorted by position. */
  occurrencesIn(lo: number, hi: number, limit: number): Occurrence[] {
    const out: Occurrence[] = [];
    for (let i = lo; i < hi && out.length < limit; i++) out.push(this.occurrenceAt(this.sa.get(i)));
    return out.sort((x, y) => x.position - y.position);
  }

  /** Count and (up to `limit`, default 10) occurrences of `pattern`. */
  find(pattern: readonly number[], options: { limit?: number } = {}): FindResult {
    const { lo, hi } = this.range(pattern);
    return { count: hi - lo, occurrences: this.occurrencesIn(lo, hi, options.limit ?? 10) };
  }

  /** Tokens of document `document` (separator excluded). */
  documentTokens(document: number): Uint16Array | Uint32Array {
    if (!(document >= 0 && document < this.documents)) throw new RangeError(`no document ${document}`);
    return this.tokens.subarray(this.docStarts[document], this.docStarts[document + 1] - 1);
  }

  /** BCI of a token sequence: −Σ log p_unigram(t), unseen tokens at p = 1e-9. */
  bci(tokens: ArrayLike<number>, from = 0, to = tokens.length): number {
    const unseen = -Math.log(UNSEEN_TOKEN_PROBABILITY);
    let s = 0;
    for (let i = from; i < to; i++) {
      const t = tokens[i];
      s += t >= 0 && t < this.vocabularySize ? this.negLogProb[t] : unseen;
    }
    return s;
  }

  /** For each start position of `query`, the longest span starting there that the corpus contains. */
  longestMatches(query: ArrayLike<number>): LongestMatches {
    const m = query.length;
    const lengths = new Int32Array(m);
    const los = new Int32Array(m);
    const his = new Int32Array(m);
    for (let i = 0; i < m; i++) {
      let lo = 0;
      let hi = this.size;
      let L = 0;
      for (let k = i; k < m; k++) {
        const nlo = this.narrow(lo, hi, k - i, query[k]);
        const nhi = this.lastHi;
        if (nlo >= nhi) break;
        lo = nlo;
        hi = nhi;
        L++;
      }
      lengths[i] = L;
      los[i] = L > 0 ? lo : 0;
      his[i] = L > 0 ? hi : 0;
    }
    return { lengths, lo: los, hi: his };
  }

  /**
   * The maximal spans of `query` found verbatim in the corpus (infini-gram's attribution): for
   * each start, the longest match; keep it when length ≥ minLen and count ≤ maxCount; drop a span
   * contained in a longer kept one. Spans are returned by start.
   */
  attribute(query: ArrayLike<number>, options: AttributeOptions = {}): AttributedSpan[] {
    const minLen = Math.max(1, options.minLen ?? 4);
    const maxCount = options.maxCount ?? 3;
    const examples = options.examples ?? 3;
    const { lengths, lo, hi } = this.longestMatches(query);
    const spans: AttributedSpan[] = [];
    // Ends i + L_i never decrease (a match's suffix also matches), so a span is inside an earlier
    // kept one exactly when it ends where the last kept span ends.
    let lastEnd = -1;
    for (let i = 0; i < lengths.length; i++) {
      const L = lengths[i];
      const count = hi[i] - lo[i];
      if (L < minLen || count > maxCount) continue;
      const end = i + L;
      if (end <= lastEnd) continue;
      lastEnd = end;
      spans.push({
        start: i,
        end,
        length: L,
        count,
        bci: this.bci(query, i, end),
        examples: this.occurrencesIn(lo[i], hi[i], examples),
      });
    }
    return spans;
  }
}

/**
 * Start of each document in `tokens` plus a final entry = `tokens.length`, found by scanning for
 * the separator that ends every document; undefined unless there are exactly `documents`
 * separators and the last token is one.
 */
export function documentStarts(
  tokens: Uint16Array | Uint32Array,
  separator: number,
  documents: number,
): Uint32Array | undefined {
  const starts = new Uint32Array(documents + 1);
  let k = 0;
  for (let i = tokens.indexOf(separator); i >= 0; i = tokens.indexOf(separator, i + 1)) {
    if (k === documents) return undefined;
    starts[++k] = i + 1;
  }
  if (k !== documents || starts[documents] !== tokens.length) return undefined;
  return starts;
}
