/**
 * The words of a text with the swap-map entry each names, as σ (sigma.ts) reads them. A step asks
 * σ of many texts that share a head (the prompt and generated text, each followed by another
 * candidate word or group term), so a text's words are kept and a longer text's are grown from
 * its head's instead of scanning the whole text again.
 */
import { type WordSpan, wordSpans } from "../../rewards/words.js";
import type { SwapMap, TermEntry } from "./swapMap.js";

/** A term's entry and the length of the part of the word it names ("Lily's": "Lily"). */
export interface TermMatch {
  entry: TermEntry;
  base: number;
}

/** A text's words, and per word the term it is, if any. */
export interface TermSpans {
  spans: readonly WordSpan[];
  terms: readonly (TermMatch | undefined)[];
  /** The indices of the words that are terms (most are not). */
  termIndices: readonly number[];
}

/** Texts kept per map before the cache is emptied (a step reads a few dozen). */
const CACHE_LIMIT = 512;

const cached = new WeakMap<SwapMap, Map<string, TermSpans>>();

/** The entry of a word, also for a possessive or contraction ("Lily's" → "lily" + "'s"). */
export function lookUp(map: SwapMap, word: string): TermMatch | undefined {
  const entry = map.terms.get(word);
  if (entry) return { entry, base: word.length };
  const apostrophe = word.indexOf("'");
  if (apostrophe > 0) {
    const base = map.terms.get(word.slice(0, apostrophe));
    if (base) return { entry: base, base: apostrophe };
  }
  return undefined;
}

/**
 * The words of `text` and their terms. Exact by construction: no word holds whitespace or reaches
 * past it, so the words of a text are those of its part before a whitespace character followed by
 * those of the rest. A text is grown from its head (its part before its last whitespace character:
 * the head the step's other texts share), the head from the longest part kept before it.
 */
export function termSpans(map: SwapMap, text: string): TermSpans {
  let texts = cached.get(map);
  if (!texts) {
    texts = new Map();
    cached.set(map, texts);
  }
  const known = texts.get(text);
  if (known) return known;
  const cut = lastWhitespace(text, text.length - 1);
  let head = EMPTY;
  if (cut > 0) {
    const headText = text.slice(0, cut);
    head = texts.get(headText) ?? keep(texts, headText, grow(map, longestKept(texts, headText), headText));
  }
  return keep(texts, text, grow(map, { spans: head, length: Math.max(cut, 0) }, text));
}

const EMPTY: TermSpans = { spans: [], terms: [], termIndices: [] };

/** Whitespace characters of a text, from its end, tried as the end of a part kept before it. */
const CUT_PROBES = 16;

/** The last whitespace character at or before `from`, or -1. */
function lastWhitespace(text: string, from: number): number {
  let at = from;
  while (at >= 0 && !/\s/u.test(text[at])) at--;
  return at;
}

/**
 * The positions of the last few whitespace characters of `text`, from its end: where a part of it
 * kept before may end (a word-local tokenization or a word scan grows from there).
 */
export function* whitespaceCuts(text: string): Generator<number> {
  let at = text.length - 1;
  for (let probe = 0; probe < CUT_PROBES; probe++) {
    at = lastWhitespace(text, at);
    if (at < 0) return;
    yield at--;
  }
}

/** The longest kept part of `text` that ends before one of its last whitespace characters (none: empty). */
function longestKept(texts: Map<string, TermSpans>, text: string): { spans: TermSpans; length: number } {
  for (const at of whitespaceCuts(text)) {
    if (at === 0) break;
    const spans = texts.get(text.slice(0, at));
    if (spans) return { spans, length: at };
  }
  return { spans: EMPTY, length: 0 };
}

/** The words of `text` from those of its first `head.length` characters (which end before whitespace, or are none). */
function grow(map: SwapMap, head: { spans: TermSpans; length: number }, text: string): TermSpans {
  const spans = head.spans.spans.slice();
  const terms = head.spans.terms.slice();
  const termIndices = head.spans.termIndices.slice();
  for (const span of wordSpans(text.slice(head.length))) {
    const term = lookUp(map, span.word);
    if (term) termIndices.push(spans.length);
    spans.push({ word: span.word, start: span.start + head.length, end: span.end + head.length });
    terms.push(term);
  }
  return { spans, terms, termIndices };
}

function keep(texts: Map<string, TermSpans>, text: string, spans: TermSpans): TermSpans {
  if (texts.size >= CACHE_LIMIT) texts.clear();
  texts.set(text, spans);
  return spans;
}
