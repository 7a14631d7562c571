/** Regurgitation metric (for `tiller eval`): how much of a generation is copied from a corpus. */
import type { Token } from "../lm/types.js";
import type { TraceIndex } from "./trace-index.js";

export interface RegurgitationResult {
  n: number;
  /** Token n-grams in the generation (max(0, tokens − n + 1)). */
  ngrams: number;
  /** Of those, the ones that occur verbatim in the corpus. */
  found: number;
  /** found / ngrams (0 when there are no n-grams). */
  share: number;
  /** Longest span of the generation found verbatim in the corpus, in tokens. */
  longestSpan: number;
  /** Its start in `tokens` (−1 when nothing matches). */
  longestStart: number;
}

/**
 * The share of the generation's token n-grams (default n = 8) found verbatim in the index, and the
 * longest verbatim span. Uses the longest match at every start, so both come from one pass.
 */
export function regurgitation(
  index: TraceIndex,
  tokens: readonly Token[],
  options: { n?: number } = {},
): RegurgitationResult {
  const n = options.n ?? 8;
  if (!(Number.isInteger(n) && n >= 1)) throw new RangeError("regurgitation n must be an integer ≥ 1");
  const { lengths } = index.longestMatches(tokens);
  const ngrams = Math.max(0, tokens.length - n + 1);
  let found = 0;
  let longestSpan = 0;
  let longestStart = -1;
  for (let i = 0; i < lengths.length; i++) {
    if (i < ngrams && lengths[i] >= n) found++;
    if (lengths[i] > longestSpan) {
      longestSpan = lengths[i];
      longestStart = i;
    }
  }
  return { n, ngrams, found, share: ngrams > 0 ? found / ngrams : 0, longestSpan, longestStart };
}
