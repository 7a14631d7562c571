import type { LanguageModel, Token } from "../lm/types.js";

/** Tokens of context a backend's `detokenize` uses to decode a piece as it reads in running text. */
const DECODE_CONTEXT = 8;

/**
 * The stop strings of a decode, checked incrementally. A token can only complete a stop string
 * that ends in its own text, so a check decodes just the tail that could hold one (the last
 * tokens whose text spans the longest stop string): O(1) per token however long the output,
 * where decoding the whole output each token is O(n). Every strategy, the text stream and the
 * reward's view of a candidate use this one detector.
 */
export class StopStrings {
  /** The non-empty stop strings. */
  readonly list: readonly string[];
  /** Length of the longest stop string (0 when there are none). */
  readonly longest: number;

  constructor(stopStrings: readonly string[] | undefined) {
    this.list = (stopStrings ?? []).filter((stop) => stop.length > 0);
    this.longest = this.list.reduce((m, stop) => Math.max(m, stop.length), 0);
  }

  get none(): boolean {
    return this.list.length === 0;
  }

  /** Where the first stop string starts in `text` (searching from `from`), or -1. */
  firstIn(text: string, from = 0): number {
    let first = -1;
    for (const stop of this.list) {
      const at = text.indexOf(stop, from);
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    return first;
  }

  /** Length of the longest tail of `text` that is a proper prefix of a stop string (a stream holds it back). */
  pendingPrefix(text: string): number {
    let longest = 0;
    for (const stop of this.list)
      for (let n = Math.min(stop.length - 1, text.length); n > longest; n--)
        if (text.endsWith(stop.slice(0, n))) {
          longest = n;
          break;
        }
    return longest;
  }

  /**
   * Whether `tokens` (generated after `context`, e.g. the prompt) hold a stop string that ends in
   * the text of their last `fresh` tokens. The tokens before those must have been checked already
   * (they hold no stop string), so only the tail is decoded: the fresh tokens and enough tokens
   * before them to hold the start of the longest stop string.
   */
  endsIn(model: LanguageModel, context: readonly Token[], tokens: readonly Token[], fresh = 1): boolean {
    if (this.none || tokens.length === 0 || fresh <= 0) return false;
    const firstFresh = Math.max(0, tokens.length - fresh);
    // A token usually decodes to at least one character: longest + 4 tokens back is enough,
    // and where it is not (byte tokens of one character) the window doubles.
    let back = this.longest + 4;
    for (;;) {
      const start = Math.max(0, firstFresh - back);
      const text = model.detokenize(tokens.slice(start), { context: tokensBefore(context, tokens, start) });
      if (this.firstIn(text) >= 0) return true;
      if (start === 0) return false;
      const freshText = model.detokenize(tokens.slice(firstFresh), {
        context: tokensBefore(context, tokens, firstFresh),
      });
      if (text.length - freshText.length >= this.longest - 1) return false;
      back *= 2;
    }
  }
}

/** The (up to 8) tokens that precede `tokens[start]` in `context` followed by `tokens`. */
export function tokensBefore(context: readonly Token[], tokens: readonly Token[], start: number): Token[] {
  if (start >= DECODE_CONTEXT) return tokens.slice(start - DECODE_CONTEXT, start);
  const fromContext = DECODE_CONTEXT - start;
  return [...context.slice(Math.max(0, context.length - fromContext)), ...tokens.slice(0, start)];
}
