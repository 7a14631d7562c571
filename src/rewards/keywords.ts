import { TillerError } from "../errors.js";
import type { Reward, RewardInput } from "./types.js";
import { phraseWords, type WordSpan, wordIsClosed, wordSpans } from "./words.js";

/**
 * Keyword coverage: which of the required keywords the text contains.
 *
 * Matching is whole-word and case-insensitive ("Dog" matches "dog", "dogma" does not). A keyword
 * may be a phrase ("ice cream", "t-shirt"): its words must appear consecutively.
 *
 * With `inflections`, the last word of a keyword also matches these regular forms (w = keyword):
 * - plural / 3rd person: w+s, w+es ("dogs", "boxes"); consonant+y → ies ("fly" → "flies");
 * - possessive: w+'s ("dog's"; "dogs'" is covered by "dogs");
 * - past: w+ed, w+d when w ends in e ("baked"), consonant+y → ied ("carried");
 * - progressive: w+ing, dropping a final e ("bake" → "baking", but "see" → "seeing");
 * - a doubled final consonant before -ed / -ing ("stop" → "stopped", "run" → "running").
 * Not covered: irregular forms (mouse/mice, run/ran), -er/-est/-ly, and the reverse direction
 * (the keyword "dogs" does not match "dog").
 */
export interface KeywordOptions {
  /** Also match the regular inflections listed above. Default false. */
  inflections?: boolean;
}

export interface KeywordCoverage {
  /** Fraction of keywords present, in [0, 1] (1 when there are no keywords). */
  soft: number;
  /** 1 when every keyword is present, else 0. */
  hard: number;
  /** Present keywords, as given. */
  present: string[];
  /** Missing keywords, as given. */
  missing: string[];
}

const VOWELS = new Set(["a", "e", "i", "o", "u"]);

/** The surface forms a keyword's last word matches (see `KeywordOptions`). */
export function inflectedForms(word: string): string[] {
  const forms = new Set([word, `${word}s`, `${word}es`, `${word}'s`, `${word}ed`, `${word}ing`]);
  const last = word.at(-1) ?? "";
  const prev = word.at(-2) ?? "";
  if (last === "e") {
    forms.add(`${word}d`);
    if (prev !== "e") forms.add(`${word.slice(0, -1)}ing`);
  }
  if (last === "y" && prev && !VOWELS.has(prev)) {
    forms.add(`${word.slice(0, -1)}ies`);
    forms.add(`${word.slice(0, -1)}ied`);
  }
  if (/^[a-z]$/.test(last) && !VOWELS.has(last) && !"wxy".includes(last) && VOWELS.has(prev)) {
    forms.add(`${word}${last}ed`);
    forms.add(`${word}${last}ing`);
  }
  return [...forms];
}

interface CompiledKeyword {
  keyword: string;
  words: string[];
  /** Accepted forms of the last word. */
  lastForms: Set<string>;
}

function compileKeywords(keywords: readonly string[], options: KeywordOptions): CompiledKeyword[] {
  return keywords.map((keyword) => {
    const words = phraseWords(keyword);
    if (words.length === 0) {
      throw new TillerError(`keyword ${JSON.stringify(keyword)} contains no word characters`, "bad-keyword");
    }
    const last = words.at(-1) as string;
    const lastForms = new Set(options.inflections ? inflectedForms(last) : [last]);
    return { keyword, words, lastForms };
  });
}

/** End offsets (in the text) of every occurrence of the keyword. */
function matchEnds(spans: readonly WordSpan[], kw: CompiledKeyword): number[] {
  const ends: number[] = [];
  const n = kw.words.length;
  for (let i = 0; i + n <= spans.length; i++) {
    let ok = true;
    for (let j = 0; j < n - 1 && ok; j++) ok = spans[i + j].word === kw.words[j];
    if (ok && kw.lastForms.has(spans[i + n - 1].word)) ends.push(spans[i + n - 1].end);
  }
  return ends;
}

function coverageOf(spans: readonly WordSpan[], compiled: readonly CompiledKeyword[]): KeywordCoverage {
  const present: string[] = [];
  const missing: string[] = [];
  for (const kw of compiled) (matchEnds(spans, kw).length > 0 ? present : missing).push(kw.keyword);
  const total = compiled.length;
  return {
    soft: total === 0 ? 1 : present.length / total,
    hard: missing.length === 0 ? 1 : 0,
    present,
    missing,
  };
}

/** Pure keyword coverage of `text` (for eval metrics). */
export function keywordCoverage(
  text: string,
  keywords: readonly string[],
  options: KeywordOptions = {},
): KeywordCoverage {
  return coverageOf(wordSpans(text), compileKeywords(keywords, options));
}

export interface KeywordsRewardOptions extends KeywordOptions {
  /** "soft" (default): fraction present, in [0, 1]; "hard": 1 if all present, else 0. */
  mode?: "soft" | "hard";
  name?: string;
}

/**
 * Keyword reward, in [0, 1]. `wantedWords` lists the missing keywords (for lexical lookahead);
 * `saturated` is true once every keyword has an occurrence that later text cannot undo (its last
 * word is followed by a separator, or the text is finished).
 */
export function keywordsReward(keywords: readonly string[], options: KeywordsRewardOptions = {}): Reward {
  if (keywords.length === 0)
    throw new TillerError("the keywords reward needs at least one keyword", "bad-keyword");
  const compiled = compileKeywords(keywords, options);
  const mode = options.mode ?? "soft";
  const flavour = `${mode}${options.inflections ? ", with inflections" : ""}`;
  return {
    name: options.name ?? "keywords",
    description: `keyword coverage (${flavour}) of ${keywords.join(", ")}; 0..1`,
    score(input: RewardInput): number {
      const coverage = coverageOf(wordSpans(input.text), compiled);
      return mode === "hard" ? coverage.hard : coverage.soft;
    },
    wantedWords(input: RewardInput): string[] {
      return coverageOf(wordSpans(input.text), compiled).missing;
    },
    saturated(input: RewardInput): boolean {
      const spans = wordSpans(input.text);
      return compiled.every((kw) =>
        matchEnds(spans, kw).some((end) => input.finished || wordIsClosed(input.text, end)),
      );
    },
  };
}
