import type { Token } from "../../lm/types.js";
import type { TraceIndex } from "../../provenance/trace-index.js";

/** A suffix of the query found in the corpus: its length and the SA rows `[lo, hi)` of its occurrences. */
export interface CorpusMatch {
  length: number;
  lo: number;
  hi: number;
}

/**
 * The longest suffix of `query` that occurs in the corpus at least `minCount` times, if it has at
 * least `minMatch` tokens. A suffix of a pattern occurs at least as often as the pattern, so the
 * shortest start that still qualifies is found by binary search (a few SA range lookups, not one
 * per start).
 */
export function longestSuffixMatch(
  index: TraceIndex,
  query: readonly Token[],
  minMatch: number,
  minCount = 1,
): CorpusMatch | undefined {
  let a = 0;
  let b = query.length; // query.slice(b) (empty) occurs at every position
  while (a < b) {
    const mid = (a + b) >>> 1;
    if (index.count(query.slice(mid)) >= minCount) b = mid;
    else a = mid + 1;
  }
  const length = query.length - a;
  if (length < minMatch) return undefined;
  const { lo, hi } = index.range(query.slice(a));
  return { length, lo, hi };
}

/**
 * Up to `n` tokens continuing a match, each the most frequent next token among its occurrences
 * (the greedy path through REST's continuation trie). The occurrences of a pattern are contiguous
 * SA rows sorted by the token that follows, so each next token's occurrences form one run: the
 * longest run is found by counting all rows when there are at most `samples`, else `samples`
 * evenly spaced ones. Stops at a document end or where the corpus's estimate of the whole draft
 * (the product of each chosen token's share of the occurrences) falls below `minShare` after the
 * first token: an uncertain guess costs verification work and is likely rejected.
 */
export function continuation(
  index: TraceIndex,
  match: CorpusMatch,
  n: number,
  samples: number,
  minShare: number,
): Token[] {
  const out: Token[] = [];
  let { lo, hi } = match;
  let depth = match.length;
  let share = 1;
  const T = index.tokens;
  while (out.length < n && hi > lo) {
    const size = hi - lo;
    const rows = Math.min(size, samples);
    const counts = new Map<number, number>();
    for (let j = 0; j < rows; j++) {
      const row = rows === size ? lo + j : lo + Math.floor(((j + 0.5) * size) / rows);
      const token = T[index.sa.get(row) + depth];
      counts.set(token, (counts.get(token) ?? 0) + 1);
    }
    let best = -1;
    let bestCount = 0;
    for (const [token, count] of counts)
      if (count > bestCount) {
        best = token;
        bestCount = count;
      }
    share *= bestCount / rows;
    // The first token is proposed however unsure: verifying one token more costs the target
    // little next to the call itself.
    if (best >= index.vocabularySize || best < 0 || (out.length > 0 && share < minShare)) break;
    const nextLo = index.narrow(lo, hi, depth, best);
    hi = index.lastHi;
    lo = nextLo;
    out.push(best);
    depth++;
  }
  return out;
}
