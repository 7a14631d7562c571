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
 */
import type { CandidateVeto } from "../decoding/veto.js";
import type { Token } from "../lm/types.js";
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
  private readonly cacheSize: number;
  private readonly cache = new Map<string, WindowInfo>();
  /** Counters for reports: candidates assessed and vetoed. */
  readonly stats = { assessed: 0, vetoed: 0 };

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
    if (!(Number.isInteger(this.n) && this.n >= 0))
      throw new RangeError("Prov-Decode n must be an integer ≥ 0");
    if (!(this.gamma > 0)) throw new RangeError("Prov-Decode gamma must be > 0");
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
        return { length: w - s + 1, count, bci, vetoed: bci > this.tau && count <= this.maxCount };
      }
    }
    return { length: 0, count: 0, bci: 0, vetoed: false };
  }

  /** The match for each candidate after `context` (for traces and tests). */
  inspect(context: readonly Token[], candidates: readonly Token[]): ProvMatch[] {
    const info = this.windowInfo(context);
    return candidates.map((c) => this.matchIn(info, c));
  }

  assess(context: readonly Token[], candidates: readonly Token[]): number[] {
    const info = this.windowInfo(context);
    const penalty = this.mode === "hard" ? Number.POSITIVE_INFINITY : this.gamma;
    const out = new Array<number>(candidates.length);
    for (let i = 0; i < candidates.length; i++) {
      const m = this.matchIn(info, candidates[i]);
      out[i] = m.vetoed ? penalty : 0;
      if (m.vetoed) this.stats.vetoed++;
    }
    this.stats.assessed += candidates.length;
    return out;
  }
}
