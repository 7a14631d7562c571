/**
 * What a candidate token is judged as. σ maps whole words, never word pieces: "girl" is three
 * tokens in the stories vocabulary, so the candidate "▁g" is judged as the word the draft would
 * write with it ("girl"), found by a short greedy lookahead. Only a piece that could still become
 * a term of the swap map is completed; any other candidate is judged as its own text.
 */
import type { LanguageModel, Token } from "../../lm/types.js";
import { wordSpans } from "../../rewards/words.js";
import type { DraftMemo } from "./draftMemo.js";
import { couldBeTerm, isTerm } from "./sigma.js";
import type { SwapMap } from "./swapMap.js";

export interface JudgedUnit {
  /** Length of the generated text that stays context (the unit replaces what follows). */
  bodyEnd: number;
  /** The text judged: a whole term word (with its leading space) or the candidate's own text. */
  unit: string;
  /** Whether `unit` is a term of the swap map. */
  term: boolean;
  /** Draft tokens the lookahead added to complete the word (for the trace). */
  completion: Token[];
}

/** A word that is still growing at the end of `text`: its span, or undefined. */
function trailingWord(text: string): { start: number; word: string } | undefined {
  const last = wordSpans(text).at(-1);
  return last && last.end === text.length ? { start: last.start, word: last.word } : undefined;
}

export interface Open {
  index: number;
  /** Generated text from the word start on, plus the candidate and the completion so far. */
  text: string;
  wordStart: number;
  tokens: Token[];
}

/** The units known without a lookahead, and the candidates whose word must be completed first. */
export interface StartedUnits {
  units: (JudgedUnit | undefined)[];
  open: Open[];
}

/**
 * The judged unit of every candidate that needs no lookahead (its own text, or a term it closes);
 * the others (a piece that could still grow into a term) are left open. Costs no model call.
 */
export function startUnits(
  draft: LanguageModel,
  map: SwapMap,
  prefix: readonly Token[],
  generated: string,
  candidates: readonly (Token | undefined)[],
): StartedUnits {
  const units: (JudgedUnit | undefined)[] = candidates.map(() => undefined);
  const open: Open[] = [];
  // The generated text's last word (when it reaches the end) is the same for every candidate.
  let trailing: { found?: { start: number; word: string } } | undefined;
  candidates.forEach((token, index) => {
    if (token === undefined || draft.isStopToken(token)) return;
    const text = draft.detokenize([token], { context: prefix.slice(-8) });
    // The word the candidate belongs to starts in the generated text when it continues one.
    const continues = /^[\p{L}\p{M}\p{N}']/u.test(text);
    if (continues) trailing ??= { found: trailingWord(generated) };
    const partial = continues ? trailing?.found : undefined;
    let wordStart = partial ? partial.start : generated.length;
    while (wordStart > 0 && /\s/.test(generated[wordStart - 1])) wordStart--;
    const unitText = generated.slice(wordStart) + text;
    const first = wordSpans(unitText)[0];
    if (!first) units[index] = ownText(generated, text);
    else if (first.end < unitText.length)
      units[index] = isTerm(map, first.word)
        ? { bodyEnd: wordStart, unit: unitText, term: true, completion: [] }
        : ownText(generated, text);
    else if (couldBeTerm(map, first.word)) open.push({ index, text: unitText, wordStart, tokens: [] });
    else units[index] = ownText(generated, text);
  });
  return { units, open };
}

/** A candidate judged as its own text (after the whole generated text). */
function ownText(generated: string, text: string, completion: Token[] = []): JudgedUnit {
  return { bodyEnd: generated.length, unit: text, term: false, completion };
}

/**
 * The judged unit of every candidate. `generated` is the generated text so far, `prefix` the
 * draft's tokens (prompt + generated). Completions of all open words run as one batch per token.
 */
export async function judgedUnits(
  draft: LanguageModel,
  map: SwapMap,
  prefix: readonly Token[],
  generated: string,
  candidates: readonly (Token | undefined)[],
  options: {
    lookahead: number;
    /** Where completions' distributions are kept for the next step. */
    memo: DraftMemo;
    /** Entries per stored distribution (what the next step's draft call would ask for). */
    topK: number;
    /** Read only each lookahead position's argmax (topK 1; nobody reads the rest). Defaults to false. */
    argmaxOnly?: boolean;
    /**
     * Prefixes whose distributions the first lookahead call also fetches into the memo (a
     * self-verifying draft's contexts: the verifier then reads them there). Defaults to none.
     */
    alongside?: readonly (readonly Token[])[];
    signal?: AbortSignal;
  },
): Promise<(JudgedUnit | undefined)[]> {
  const started = startUnits(draft, map, prefix, generated, candidates);
  const { units } = started;
  let { open } = started;
  const ownTextOf = (index: number, completion: Token[]) =>
    ownText(generated, candidateText(draft, prefix, candidates[index] as Token), completion);
  for (let step = 0; step < options.lookahead && open.length > 0; step++) {
    const prefixes = open.map((o) => [...prefix, candidates[o.index] as Token, ...o.tokens]);
    const next = await nextTokens(draft, options, prefixes, step === 0 ? (options.alongside ?? []) : []);
    const still: Open[] = [];
    open.forEach((o, i) => {
      const token = next[i];
      const closed = draft.isStopToken(token);
      const added = closed ? "" : draft.detokenize([token], { context: prefixes[i].slice(-8) });
      const text = o.text + added;
      const first = wordSpans(text)[0];
      if (closed || first.end < text.length) {
        units[o.index] = isTerm(map, first.word)
          ? { bodyEnd: o.wordStart, unit: text.slice(0, first.end), term: true, completion: o.tokens }
          : ownTextOf(o.index, o.tokens);
      } else if (couldBeTerm(map, first.word)) still.push({ ...o, text, tokens: [...o.tokens, token] });
      else units[o.index] = ownTextOf(o.index, o.tokens);
    });
    open = still;
  }
  // Words still open after the lookahead are judged as far as they got.
  for (const o of open) {
    const word = wordSpans(o.text)[0].word;
    units[o.index] = isTerm(map, word)
      ? { bodyEnd: o.wordStart, unit: o.text, term: true, completion: o.tokens }
      : ownTextOf(o.index, o.tokens);
  }
  return units;
}

/**
 * The draft's next token after each of `prefixes`. A word is completed by the argmax alone, so
 * one stored in any entry (a free run's, an argmax lookahead's) is taken as it is; the others are
 * read, with `along`, as the memo's whole distributions (the next step's, should the word be
 * chosen). With nothing to read, `along` waits for the judge's own call.
 */
async function nextTokens(
  draft: LanguageModel,
  options: {
    memo: DraftMemo;
    topK: number;
    argmaxOnly?: boolean;
    signal?: AbortSignal;
  },
  prefixes: readonly (readonly Token[])[],
  along: readonly (readonly Token[])[],
): Promise<Token[]> {
  const stored = prefixes.map((p) => options.memo.get(p, 1)?.[0].token);
  const missing = prefixes.filter((_, i) => stored[i] === undefined);
  if (missing.length === 0) return stored as Token[];
  const read = await options.memo.next(
    draft,
    [...missing, ...along],
    options.topK,
    options.signal,
    options.argmaxOnly,
  );
  let m = 0;
  return stored.map((token) => token ?? read[m++][0].token);
}

function candidateText(draft: LanguageModel, prefix: readonly Token[], token: Token): string {
  return draft.detokenize([token], { context: prefix.slice(-8) });
}
