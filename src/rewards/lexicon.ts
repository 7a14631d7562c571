import { TillerError } from "../errors.js";
import { readInputText } from "../util/inputFiles.js";
import type { Reward, RewardInput } from "./types.js";
import { phraseWords, wordSpans } from "./words.js";

/**
 * Lexicon reward: −penalty for every occurrence of a listed word (or phrase) in the text,
 * whole-word and case-insensitive ("Darn" counts for "darn", "darned" does not). Range (−∞, 0].
 */
export function lexiconReward(
  entries: readonly string[],
  options: { penalty?: number; name?: string; source?: string } = {},
): Reward {
  const phrases = entries.map(phraseWords).filter((words) => words.length > 0);
  if (phrases.length === 0)
    throw new TillerError("the lexicon reward needs at least one word", "bad-lexicon");
  const penalty = options.penalty ?? 1;
  return {
    name: options.name ?? "lexicon",
    description: `-${penalty} per occurrence of ${options.source ?? `${phrases.length} listed words`}; <= 0`,
    score(input: RewardInput): number {
      return -penalty * countOccurrences(input.text, phrases);
    },
  };
}

/** Occurrences of the phrases in `text` (each phrase a list of lower-cased words). */
export function countOccurrences(text: string, phrases: readonly (readonly string[])[]): number {
  const words = wordSpans(text).map((s) => s.word);
  let count = 0;
  for (const phrase of phrases) {
    for (let i = 0; i + phrase.length <= words.length; i++) {
      let ok = true;
      for (let j = 0; j < phrase.length && ok; j++) ok = words[i + j] === phrase[j];
      if (ok) count++;
    }
  }
  return count;
}

/** Parses a lexicon file's text: one word or phrase per line; blank lines and `#` comments skipped. */
export function parseLexicon(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.replace(/#.*$/, "").trim())
    .filter((line) => line.length > 0);
}

/** Reads a lexicon file (see `parseLexicon`), at most the input size limit. Missing or empty file → TillerError. */
export function readLexiconFile(path: string): string[] {
  const entries = parseLexicon(readInputText(path, "lexicon file", { notFoundCode: "lexicon-not-found" }));
  if (entries.length === 0) throw new TillerError(`lexicon file ${path} lists no words`, "bad-lexicon");
  return entries;
}
