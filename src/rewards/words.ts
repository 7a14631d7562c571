/**
 * How rewards see words. A word is a run of letters, digits and combining marks, optionally
 * joined by apostrophes ("don't", "dog's" are one word each); everything else separates words
 * ("t-shirt" is two words). Matching is case-insensitive: words are lower-cased, and the curly
 * apostrophe ’ is read as '.
 */

const WORD = /[\p{L}\p{M}\p{N}]+(?:'[\p{L}\p{M}\p{N}]+)*/gu;

export interface WordSpan {
  /** Lower-cased word. */
  word: string;
  start: number;
  /** Offset just past the word's last character. */
  end: number;
}

/** Lower-cases and normalises apostrophes (offsets are unchanged: both are one UTF-16 unit). */
export function normaliseText(text: string): string {
  return text.replace(/’/g, "'").toLowerCase();
}

/** The words of `text`, lower-cased, with their offsets in `text`. */
export function wordSpans(text: string): WordSpan[] {
  const spans: WordSpan[] = [];
  // toLowerCase can change the length of some characters (e.g. "İ"), so match on the original
  // text with apostrophes normalised and lower-case each word on its own.
  const source = text.replace(/’/g, "'");
  for (const m of source.matchAll(WORD)) {
    const start = m.index ?? 0;
    spans.push({ word: m[0].toLowerCase(), start, end: start + m[0].length });
  }
  return spans;
}

/** Number of words in `text` (as defined above). */
export function countWords(text: string): number {
  return text.replace(/’/g, "'").match(WORD)?.length ?? 0;
}

/** Splits a keyword or lexicon entry into its lower-cased words ("Ice-cream" → ["ice", "cream"]). */
export function phraseWords(phrase: string): string[] {
  return wordSpans(phrase).map((s) => s.word);
}

/**
 * True when the word ending at `end` can no longer grow: the text goes on past it with a
 * character that cannot extend it. A word at the very end of the text, or followed only by an
 * apostrophe ("dog'" may become "dog's"), may still grow ("dog" → "dogma").
 */
export function wordIsClosed(text: string, end: number): boolean {
  const rest = text.slice(end);
  return !/^['’]?$/.test(rest);
}
