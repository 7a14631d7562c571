/**
 * Prov-Decode (TraceAlign): a {@link CandidateVeto} that steers a search away from candidates that
 * would extend a verbatim copy of the corpus.
 *
 * For a candidate token x after context c, let w be the last `n` tokens of c (default 8). The
 * *match* is the longest suffix of `w + x` that occurs in the corpus (so at most n + 1 tokens; a
 * copy that started earlier than the window still counts through its last n + 1 tokens). The
 * candidate is vetoed when the match's BCI (−Σ log p_unigram) exceeds τ — with `hard` the penalty
 * is Infinity (drop the candidate), with `soft` it is γ (subtract from its score). A match must end
 * at the candidate: a context that already copies the corpus does not, by itself, veto a
 * candidate that breaks the copy.
 *
 * We use the longest occurring suffix rather than requiring the whole window to occur: a copy
 * that has just begun (fewer than n copied tokens) is already caught once its BCI passes τ, and a
 * window that starts inside the prompt or crosses a document boundary still yields the copied
 * tail.
 *
 * Speed: per distinct window, the SA range of every suffix of the window is computed once and
 * cached (LRU); each candidate then costs one or a few range narrowings (two binary searches each)
 * inside those ranges.
 *
 * ## Minimum match length (`minLength`)
 * BCI = −Σ log p_unigram grows by ~2.5–6 nats per token in a TinyStories-like corpus (the, a, .,
 * was … are the cheapest), so with τ = 20 a 4-token match of common words ("she wanted to play")
 * already exceeds τ and "longest matching suffix, veto if BCI > τ" vetoes most fluent candidates:
 * the search is pushed into odd text and keyword coverage falls, while the copies we care about
 * are long ones. `minLength` (in index tokens) makes length the primary test: a candidate is only
 * vetoed when window + candidate extends a verbatim match of at least `minLength` tokens, and τ
 * then only spares long runs of very frequent tokens. `minLength = 8` targets exactly what the
 * regurgitation metric counts (8-grams of the output found in the corpus): a veto fires on the
 * token that would complete such an 8-gram. The class default stays 1 (the paper's rule, every
 * match length); {@link PROV_DECODE_RECOMMENDED} holds the settings `tiller align` and
 * `npm run bench:index` use. `maxCount` (veto only matches that occur at most that often) is the
 * other knob; it is unset by default because the metric counts common 8-grams as copies too.
 *
 * ## Case-normalised lookup (`normalize`)
 * An index built with `--lowercase` stores lowercased text, while the model writes "Lily" (one
 * token) where the corpus has "lily" (two): a lookup of raw model ids misses most copies. With
 * `normalize: { model }` the window and candidate are mapped into the index's token space: the
 * last `n` context tokens + the candidate are detokenized, lowercased (when the index is), cut to
 * start at a word boundary (the window's first word may be a fragment) and re-tokenized with
 * {@link TraceIndex.tokenizeQuery} — how the regurgitation metric tokenizes an output. The match is
 * then the longest occurring suffix of those tokens, so it still ends at the candidate's text.
 * Because a re-tokenized window can be longer or shorter than `n` model tokens, choose `n` a few
 * tokens above `minLength` (the recommended settings use n = 12 for minLength = 8). A candidate
 * with no text (a stop token) is never vetoed. Cost: per window, the window's text is decoded
 * once (cached, LRU); per candidate, one detokenize of the candidate, one tokenize of ~n tokens of
 * text and a binary search over the suffix lengths (a few SA range lookups); results are cached
 * per (window, candidate) so a search that revisits a context pays nothing.
 */
import type { CandidateVeto } from "../decoding/veto.js";
import { TillerError } from "../errors.js";
import type { LanguageModel, Token } from "../lm/types.js";
import type { TraceIndex } from "./trace-index.js";

export interface ProvDecodeOptions {
  /** Context tokens looked up before the candidate (default 8). */
  n?: number;
  /** Veto when the match's BCI exceeds this (default 20, the paper's τ). */
  tau?: number;
  /** `hard` (default): penalty Infinity; `soft`: penalty `gamma`. */
  mode?: "hard" | "soft";
  /** Soft penalty (default 1). */
  gamma?: number;
  /** Only veto matches that occur at most this often in the corpus (default: no limit). */
  maxCount?: number;
  /**
   * Only veto matches of at least this many tokens (index tokens when normalised; default 1 = any
   * length, the paper's rule). See "Minimum match length" above.
   */
  minLength?: number;
  /**
   * Look the window up in the index's token space: detokenize with `model`, lowercase (default: when
   * the index was built with --lowercase), re-tokenize with the index's query tokenizer.
   */
  normalize?: { model: LanguageModel; lowercase?: boolean };
  /** Distinct windows kept in the cache (default 4096). */
  cacheSize?: number;
}

/** What Prov-Decode found for one candidate. */
export interface ProvMatch {
  /** Tokens in the match (window suffix + candidate); 0 when the candidate never occurs. */
  length: number;
  count: number;
  bci: number;
  vetoed: boolean;
}

interface WindowInfo {
  window: Token[];
  /** SA range of window[s..] for s ≥ first; first = smallest s whose suffix occurs. */
  first: number;
  lo: Float64Array;
  hi: Float64Array;
  /** BCI of window[s..]. */
  bci: Float64Array;
}

export class ProvDecodeVeto implements CandidateVeto {
  readonly name = "prov-decode";
  readonly n: number;
  readonly tau: number;
  readonly mode: "hard" | "soft";
  readonly gamma: number;
  readonly maxCount: number;
  readonly minLength: number;
  private readonly model: LanguageModel | undefined;
  private readonly lowercase: boolean;
  private readonly cacheSize: number;
  private modelChecked: Promise<void> | undefined;
  private readonly textCache = new Map<string, TextWindow>();
  private readonly words = new Map<string, Token[]>();
  private readonly candidateTexts = new Map<number, string>();
  private readonly cache = new Map<string, WindowInfo>();
  /** Counters for reports: candidates assessed and vetoed. */
  readonly stats = { assessed: 0, vetoed: 0, ms: 0 };

  constructor(
    readonly index: TraceIndex,
    options: ProvDecodeOptions = {},
  ) {
    this.n = options.n ?? 8;
    this.tau = options.tau ?? 20;
    this.mode = options.mode ?? "hard";
    this.gamma = options.gamma ?? 1;
    this.maxCount = options.maxCount ?? Number.POSITIVE_INFINITY;
    this.cacheSize = options.cacheSize ?? 4096;
    this.minLength = options.minLength ?? 1;
    this.model = options.normalize?.model;
    this.lowercase = options.normalize?.lowercase ?? index.header.build.lowercase;
    const bad = (message: string) => new TillerError(message, "bad-prov-decode-option");
    if (!(Number.isInteger(this.n) && this.n >= 0))
      throw bad(`Prov-Decode n (--window) must be an integer ≥ 0, got ${this.n}`);
    if (!(Number.isInteger(this.minLength) && this.minLength >= 1))
      throw bad(`Prov-Decode minLength (--min-match) must be an integer ≥ 1, got ${this.minLength}`);
    if (Number.isNaN(this.tau)) throw bad("Prov-Decode tau (--tau) must be a number, got NaN");
    if (!(this.gamma > 0)) throw bad(`Prov-Decode gamma (--gamma) must be > 0, got ${this.gamma}`);
    if (!(this.maxCount >= 1))
      throw bad(`Prov-Decode maxCount (--max-count) must be ≥ 1, got ${this.maxCount}`);
    if (this.mode !== "hard" && this.mode !== "soft")
      throw bad(`Prov-Decode mode (--veto) must be "hard" or "soft", got "${this.mode}"`);
    // The tokenizer check is async (a remote model tokenizes over the network): done on first use.
  }

  private windowInfo(context: readonly Token[]): WindowInfo {
    const start = Math.max(0, context.length - this.n);
    const window = context.slice(start);
    const key = window.join(",");
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    const w = window.length;
    const idx = this.index;
    const lo = new Float64Array(w + 1);
    const hi = new Float64Array(w + 1);
    const bci = new Float64Array(w + 1);
    lo[w] = 0;
    hi[w] = idx.size;
    let first = w;
    for (let s = w - 1; s >= 0; s--) {
      bci[s] = bci[s + 1] + idx.bci(window, s, s + 1);
      const r = idx.range(window.slice(s));
      if (r.hi <= r.lo) {
        for (let k = s - 1; k >= 0; k--) bci[k] = bci[k + 1] + idx.bci(window, k, k + 1);
        break;
      }
      lo[s] = r.lo;
      hi[s] = r.hi;
      first = s;
    }
    const info: WindowInfo = { window, first, lo, hi, bci };
    this.cache.set(key, info);
    if (this.cache.size > this.cacheSize) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    return info;
  }

  private matchIn(info: WindowInfo, candidate: Token): ProvMatch {
    const idx = this.index;
    const w = info.window.length;
    for (let s = info.first; s <= w; s++) {
      const lo = idx.narrow(info.lo[s], info.hi[s], w - s, candidate);
      const hi = idx.lastHi;
      if (hi > lo) {
        const bci = info.bci[s] + idx.negLogProb[candidate];
        const count = hi - lo;
        const length = w - s + 1;
        return { length, count, bci, vetoed: this.vetoes(length, count, bci) };
      }
    }
    return { length: 0, count: 0, bci: 0, vetoed: false };
  }

  private vetoes(length: number, count: number, bci: number): boolean {
    return length >= this.minLength && bci > this.tau && count <= this.maxCount;
  }

  /** The window's text (normalised, starting at a word boundary), cached per window. */
  private async textWindow(model: LanguageModel, context: readonly Token[]): Promise<TextWindow> {
    const start = Math.max(0, context.length - this.n);
    const window = context.slice(start);
    const key = window.join(",");
    const hit = this.textCache.get(key);
    if (hit) {
      this.textCache.delete(key);
      this.textCache.set(key, hit);
      return hit;
    }
    let text = model.detokenize(window, { context: context.slice(Math.max(0, start - 8), start) });
    // A window that does not start the text may start inside a word: drop that fragment.
    if (start > 0 && !/^\s/.test(text)) {
      const cut = text.search(/\s/);
      text = cut < 0 ? "" : text.slice(cut);
    }
    text = text.replace(/^ +/, "");
    if (this.lowercase) text = text.toLowerCase();
    // Split off the last word: a candidate can only change how that word tokenizes.
    const lastSpace = text.lastIndexOf(" ");
    const head = lastSpace < 0 ? [] : await this.wordTokens(model, text.slice(0, lastSpace));
    const info: TextWindow = {
      window,
      last: window[window.length - 1],
      head,
      lastWord: text.slice(lastSpace + 1),
      headMatch: this.longestSuffix(head).length,
      headRanges: new Map(),
      matches: new Map(),
    };
    this.textCache.set(key, info);
    if (this.textCache.size > this.cacheSize) {
      const oldest = this.textCache.keys().next().value;
      if (oldest !== undefined) this.textCache.delete(oldest);
    }
    return info;
  }

  /**
   * Index tokens of a normalised text. The tokenizer does not merge across a space (a word's
   * pieces carry its leading "▁"), so the text is tokenized word by word and each word's tokens
   * are cached; a text with doubled spaces goes to the tokenizer whole. Equal to
   * `index.tokenizeQuery(model, text)` (tested on corpus text).
   */
  private async wordTokens(model: LanguageModel, text: string): Promise<Token[]> {
    if (text.length === 0) return [];
    if (text.includes("  ") || text.startsWith(" ") || text.endsWith(" "))
      return await this.index.tokenizeQuery(model, text);
    const out: Token[] = [];
    for (const word of text.split(" ")) {
      let tokens = this.words.get(word);
      if (!tokens) {
        tokens = await this.index.tokenizeQuery(model, word);
        if (this.words.size >= 65536) this.words.clear();
        this.words.set(word, tokens);
      }
      for (const t of tokens) out.push(t);
    }
    return out;
  }

  /** The text of `candidate` after `previous` (cached: only the leading space depends on it). */
  private candidateText(model: LanguageModel, previous: Token | undefined, candidate: Token): string {
    const key = (previous ?? -1) * 1_000_003 + candidate;
    let text = this.candidateTexts.get(key);
    if (text === undefined) {
      text = model.detokenize([candidate], { context: previous === undefined ? [] : [previous] });
      if (this.lowercase) text = text.toLowerCase();
      // A piece of a multi-byte character depends on more context: do not cache it.
      if (!text.includes("\uFFFD")) {
        if (this.candidateTexts.size >= 262144) this.candidateTexts.clear();
        this.candidateTexts.set(key, text);
      }
    }
    return text;
  }

  /** The match of window + candidate in the index's token space (normalised lookup). */
  private async normalizedMatch(
    model: LanguageModel,
    tw: TextWindow,
    candidate: Token,
    exact: boolean,
  ): Promise<ProvMatch> {
    const hit = tw.matches.get(candidate);
    if (hit && (hit.exact || !exact)) return hit.match;
    let match = NO_MATCH;
    let isExact = true;
    const text = model.isStopToken(candidate) ? "" : this.candidateText(model, tw.last, candidate);
    if (text.length > 0) {
      const tail = await this.wordTokens(model, `${tw.lastWord}${text}`.replace(/^ +/, ""));
      const q = [...tw.head, ...tail];
      // Shortcuts when only the verdict matters: a match of ≥ minLength tokens needs the last
      // minLength − |tail| head tokens to occur (known per window), and the last minLength tokens.
      const need = this.minLength - tail.length;
      const cannot =
        !exact &&
        (q.length < this.minLength ||
          (need > 0 && need > tw.headMatch) ||
          (this.minLength > 1 && !this.lastOccurs(tw, tail)));
      if (cannot) isExact = false;
      else match = this.longestSuffix(q);
    }
    tw.matches.set(candidate, { match, exact: isExact });
    return match;
  }

  /**
   * Whether the last `minLength` tokens of head + tail occur: the SA range of the head's part is
   * computed once per window (per head length needed), then narrowed by the tail's tokens.
   */
  private lastOccurs(tw: TextWindow, tail: readonly Token[]): boolean {
    const idx = this.index;
    const need = Math.max(0, this.minLength - tail.length);
    let range = tw.headRanges.get(need);
    if (!range) {
      range = idx.range(tw.head.slice(tw.head.length - need));
      tw.headRanges.set(need, range);
    }
    let { lo, hi } = range;
    for (let k = Math.max(0, tail.length - this.minLength); k < tail.length && hi > lo; k++) {
      lo = idx.narrow(lo, hi, need + k - Math.max(0, tail.length - this.minLength), tail[k]);
      hi = idx.lastHi;
    }
    return hi > lo;
  }

  /**
   * The longest suffix of `q` that occurs in the corpus. Occurrence is monotone in the suffix
   * length (a suffix of an occurring string occurs), so binary search on the start.
   */
  private longestSuffix(q: readonly Token[]): ProvMatch {
    const idx = this.index;
    const m = q.length;
    const last = m === 0 ? 0 : idx.count([q[m - 1]]);
    if (last === 0) return NO_MATCH;
    // Invariant: q[good..] occurs; q[bad..] does not (bad = −1: nothing known not to occur).
    let good = m - 1;
    let bad = -1;
    let goodCount = last;
    while (good - bad > 1) {
      const mid = (good + bad) >>> 1;
      const c = idx.count(q.slice(mid));
      if (c > 0) {
        good = mid;
        goodCount = c;
      } else bad = mid;
    }
    const length = m - good;
    const bci = idx.bci(q, good, m);
    return { length, count: goodCount, bci, vetoed: this.vetoes(length, goodCount, bci) };
  }

  /** With `exact` false, a match that cannot be vetoed may be reported as no match (faster). */
  private async matches(
    context: readonly Token[],
    candidates: readonly Token[],
    exact: boolean,
  ): Promise<ProvMatch[]> {
    if (this.model) {
      const model = this.model;
      this.modelChecked ??= this.index.checkModel(model);
      await this.modelChecked;
      const tw = await this.textWindow(model, context);
      const out: ProvMatch[] = [];
      for (const c of candidates) out.push(await this.normalizedMatch(model, tw, c, exact));
      return out;
    }
    const info = this.windowInfo(context);
    return candidates.map((c) => this.matchIn(info, c));
  }

  /** The match for each candidate after `context` (for traces and tests). */
  inspect(context: readonly Token[], candidates: readonly Token[]): Promise<ProvMatch[]> {
    return this.matches(context, candidates, true);
  }

  async assess(context: readonly Token[], candidates: readonly Token[]): Promise<number[]> {
    const t0 = performance.now();
    const found = await this.matches(context, candidates, false);
    const penalty = this.mode === "hard" ? Number.POSITIVE_INFINITY : this.gamma;
    const out = new Array<number>(candidates.length);
    for (let i = 0; i < candidates.length; i++) {
      out[i] = found[i].vetoed ? penalty : 0;
      if (found[i].vetoed) this.stats.vetoed++;
    }
    this.stats.assessed += candidates.length;
    this.stats.ms += performance.now() - t0;
    return out;
  }
}

interface TextWindow {
  window: Token[];
  last: Token | undefined;
  /** Index tokens of the window's normalised text (from its first word boundary) up to its last space. */
  head: Token[];
  /** The text after that space (the word a candidate may continue). */
  lastWord: string;
  /** Length of the longest suffix of `head` that occurs in the corpus. */
  headMatch: number;
  /** SA range of the last k head tokens, by k (filled on demand). */
  headRanges: Map<number, { lo: number; hi: number }>;
  /** Matches per candidate after this window (`exact` false: only known not to be vetoed). */
  matches: Map<Token, { match: ProvMatch; exact: boolean }>;
}

const NO_MATCH: ProvMatch = Object.freeze({ length: 0, count: 0, bci: 0, vetoed: false });

/**
 * The settings `tiller align --provenance` and `npm run bench:index` use with a lowercased corpus
 * index (see "Minimum match length" and "Case-normalised lookup" above): veto a candidate that
 * would complete an 8-token verbatim copy, looked up in the index's token space.
 */
export const PROV_DECODE_RECOMMENDED = { n: 12, minLength: 8, tau: 20, gamma: 10 } as const;
