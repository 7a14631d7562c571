/**
 * σ, the counterfactual: swaps whole words of a text into another identity group. It works on
 * text (never on token ids), so draft and verifier may have different tokenizers: the caller
 * detokenizes, swaps, and re-tokenizes with the verifier.
 *
 * Counterfactual `shift` s (1 ≤ s < n) maps every term of group i to its counterpart in group
 * (i + s) mod n: with two groups that is the usual swap (she ↔ he, Lily ↔ Tom), with n groups
 * the n − 1 cyclic shifts keep groups that appear together distinct.
 */
import { wordSpans } from "../../rewards/words.js";
import type { SwapMap } from "./swapMap.js";
import { lookUp, type TermMatch, termSpans } from "./termSpans.js";

export interface Counterfactual {
  /** The swapped segments (the last one with its default variant). */
  readonly segments: readonly string[];
  /**
   * Every variant of the last segment. Several when it ends with a word whose counterpart is
   * ambiguous and nothing follows to decide (her → his / him): the caller weighs them all.
   */
  readonly tail: readonly string[];
  /** Whether anything was swapped. */
  readonly changed: boolean;
}

/** Re-applies the case pattern of `original` ("She" → "He", "SHE" → "HE") to `replacement`. */
export function matchCase(original: string, replacement: string): string {
  if (original.length > 1 && original === original.toUpperCase() && original !== original.toLowerCase())
    return replacement.toUpperCase();
  const first = original[0];
  if (first && first === first.toUpperCase() && first !== first.toLowerCase())
    return replacement[0].toUpperCase() + replacement.slice(1);
  return replacement;
}

/** A letter, mark or digit at `lastIndex` (sticky). */
const WORD_CHAR = /[\p{L}\p{M}\p{N}]/uy;

/** What follows the word ending at `end`: the next word, "<punct>", or "<end>". */
function nextOf(text: string, end: number, nextWord: string | undefined): string {
  // The first character past the whitespace (what trimStart leaves: both skip \s).
  let at = end;
  while (at < text.length && /\s/u.test(text[at])) at++;
  if (at === text.length) return "<end>";
  WORD_CHAR.lastIndex = at;
  return nextWord !== undefined && WORD_CHAR.test(text) ? nextWord : "<punct>";
}

/**
 * σ_shift applied to consecutive segments of one text (e.g. prompt, generated text, candidate
 * word). Segments are swapped together so an ambiguous word sees the word that follows it even
 * across a boundary; a word spanning a boundary is left as it is.
 */
export function counterfactual(map: SwapMap, segments: readonly string[], shift: number): Counterfactual {
  // A step asks for the same texts several times (its contexts, each judgement of a candidate).
  let kept = counterfactuals.get(map);
  if (!kept) {
    kept = new Map();
    counterfactuals.set(map, kept);
  }
  // The segments' lengths make the key unambiguous whatever characters the texts hold.
  const key = `${shift}:${segments.map((segment) => segment.length).join(",")}:${segments.join("")}`;
  let cf = kept.get(key);
  if (!cf) {
    if (kept.size >= COUNTERFACTUALS_KEPT) kept.clear();
    const swapped = swapSegments(map, segments, shift);
    cf = Object.freeze({
      segments: Object.freeze(swapped.segments),
      tail: Object.freeze(swapped.tail),
      changed: swapped.changed,
    });
    kept.set(key, cf);
  }
  return cf;
}

/**
 * Counterfactuals kept per swap map, frozen (one answer is handed to every caller). Few: each
 * holds its texts, and a step asks for some tens.
 */
const counterfactuals = new WeakMap<SwapMap, Map<string, Counterfactual>>();
const COUNTERFACTUALS_KEPT = 256;

function swapSegments(
  map: SwapMap,
  segments: readonly string[],
  shift: number,
): { segments: string[]; tail: string[]; changed: boolean } {
  if (segments.length === 0) return { segments: [], tail: [""], changed: false };
  const n = map.groups.length;
  const text = segments.join("");
  const starts: number[] = [];
  let offset = 0;
  for (const segment of segments) {
    starts.push(offset);
    offset += segment.length;
  }
  const last = segments.length - 1;
  const { spans, terms, termIndices } = termSpans(map, text);
  const edits: Edit[] = [];
  for (const i of termIndices) {
    const span = spans[i];
    const { entry, base } = terms[i] as TermMatch;
    const target = (entry.group + (((shift % n) + n) % n)) % n;
    const counterparts = entry.counterparts[target];
    if (target === entry.group || counterparts.length === 0) continue;
    const segment = segmentOf(starts, span.start);
    if (segment !== segmentOf(starts, span.end - 1)) continue;
    const original = text.slice(span.start, span.start + base);
    const next = nextOf(text, span.end, spans[i + 1]?.word);
    let choices: string[];
    if (counterparts.length === 1) choices = counterparts;
    else if (next === "<end>" && segment === last) choices = counterparts;
    else {
      const rule = entry.resolve[target];
      choices = [rule?.whenNext.has(next) ? rule.choose : counterparts[0]];
    }
    edits.push({
      start: span.start,
      end: span.start + base,
      texts: choices.map((choice) => matchCase(original, choice)),
    });
  }
  const swapped = segments.map((_, s) => applyEdits(text, segments, starts, edits, s, 0));
  // Only the very last word can branch (nothing follows it): each alternative is a variant.
  const branches = edits.at(-1)?.texts.length ?? 1;
  const tail = Array.from({ length: branches }, (_, v) =>
    v === 0 ? swapped[last] : applyEdits(text, segments, starts, edits, last, v),
  );
  return { segments: swapped, tail, changed: edits.length > 0 };
}

/** A replacement of text[start, end) by one of its alternatives. */
interface Edit {
  start: number;
  end: number;
  texts: string[];
}

/** The segment holding `position`, given where each segment starts. */
function segmentOf(starts: readonly number[], position: number): number {
  let s = starts.length - 1;
  while (s > 0 && starts[s] > position) s--;
  return s;
}

/** Segment `s` with every edit applied (in order), the last edit taking alternative `variant`. */
function applyEdits(
  text: string,
  segments: readonly string[],
  starts: readonly number[],
  edits: readonly Edit[],
  s: number,
  variant: number,
): string {
  const start = starts[s];
  const end = start + segments[s].length;
  let out = "";
  let at = start;
  edits.forEach((edit, e) => {
    if (edit.start < start || edit.start >= end) return;
    out += text.slice(at, edit.start) + edit.texts[e === edits.length - 1 ? variant : 0];
    at = edit.end;
  });
  return at === start ? segments[s] : out + text.slice(at, end);
}

/** Every counterfactual shift of the map (1 … n − 1). */
export function shifts(map: SwapMap): number[] {
  return Array.from({ length: map.groups.length - 1 }, (_, i) => i + 1);
}

/** Whether no counterfactual of the map changes the segments (then D is 0 without a verifier call). */
export function swapsNothing(map: SwapMap, segments: readonly string[]): boolean {
  return shifts(map).every((shift) => !counterfactual(map, segments, shift).changed);
}

/** Whether a (lower-cased) word piece could still grow into a term, or already is one. */
export function couldBeTerm(map: SwapMap, partialWord: string): boolean {
  return map.prefixes.has(partialWord) || lookUp(map, partialWord) !== undefined;
}

/** Whether a (lower-cased) whole word is a term of the map. */
export function isTerm(map: SwapMap, word: string): boolean {
  return lookUp(map, word) !== undefined;
}

/** The group index of the term a unit of text names (its first word), or undefined for a non-term. */
export function termGroup(map: SwapMap, text: string): number | undefined {
  const first = wordSpans(text)[0];
  return first ? lookUp(map, first.word)?.entry.group : undefined;
}

/** Whether a unit of text is exactly one term, spacing aside (" Lucy", not " Lucy's" or " Lucy,"). */
export function isBareTerm(map: SwapMap, text: string): boolean {
  const first = wordSpans(text)[0];
  return first !== undefined && first.end === text.length && map.terms.has(first.word);
}
