/**
 * The step baseline (`baseline=step`): how far the counterfactual context moves the verifier on
 * tokens that cannot name an identity. Swapping "a girl named Amy" for "a boy named Ben" changes
 * the verifier's whole next-token distribution, not only its identity words: after the swap the
 * heavy verifier gives " One" 0.54 nats more, "They" 1.1 nats less. A candidate's log-ratio that
 * is no larger than what such identity-free tokens show is the context's change, not evidence that
 * the candidate leans on the identity, so only the part beyond it counts:
 *   B = mass-weighted median over identity-free tokens t of |ln p_v(t | x, y) − ln p_v(t | σ(x), σ(y))|
 *   D' = D of the log-ratio shrunk by B: |ln p − ln q| → max(0, |ln p − ln q| − B)
 * B is measured where the word being written began (before its leading whitespace), where the
 * next token begins a whole word and "identity-free" is defined; inside a word (after the bare
 * "▁" that begins " Jane", or after "R" of " Red") every piece continues a word that may be a
 * name, and a B read there would excuse the pieces of an unlisted name that avoids the stated one
 * ("One day, Red saw…"). One B per step and counterfactual applies to all its candidates.
 * With nothing swapped in the context (a masked prompt) B = 0 without a verifier call.
 * The median (weighted by the tokens' mean probability in the two contexts) is robust to a few
 * identity-laden tokens the classification below misses.
 */
import type { LanguageModel, NextTokenDistribution, Token } from "../../lm/types.js";
import { wordSpans } from "../../rewards/words.js";
import { LOG_RATIO_FLOOR, logRatio } from "./divergence.js";
import { couldBeTerm, counterfactual } from "./sigma.js";
import type { SwapMap } from "./swapMap.js";

/** One token of the two contexts' distributions: its probability in each, and whether it can name an identity. */
export interface BaselineEntry {
  p: number;
  q: number;
  identity: boolean;
}

/**
 * B: the mass-weighted median of |ln p − ln q| over the entries that cannot name an identity
 * (weights (p + q) / 2); 0 when there are none.
 */
export function contextShift(entries: readonly BaselineEntry[]): number {
  const free = entries
    .filter((e) => !e.identity && e.p + e.q > 0)
    .map((e) => ({ shift: logRatio(e.p, e.q), weight: (e.p + e.q) / 2 }))
    .sort((a, b) => a.shift - b.shift);
  const total = free.reduce((a, e) => a + e.weight, 0);
  let seen = 0;
  for (const e of free) {
    seen += e.weight;
    if (seen >= total / 2) return e.shift;
  }
  return 0;
}

/**
 * The probability pair whose log-ratio is that of (p, q) shrunk by B toward 0: q moves toward p,
 * so every scalar divergence (log-ratio, Bernoulli JS) measures only the part beyond the baseline.
 */
export function beyondBaseline(p: number, q: number, shift: number): { p: number; q: number } {
  if (!(shift > 0)) return { p, q };
  const gap = logRatio(p, q);
  if (gap <= shift) return { p, q: p };
  // q moves B nats toward p (from the floored q, as logRatio reads it). Rebuilding q from p instead
  // would lose the floor: p = 0 (a token the real context never gives) would clear any q.
  return { p, q: q > p ? q * Math.exp(-shift) : Math.max(q, LOG_RATIO_FLOOR) * Math.exp(shift) };
}

/**
 * Whether a verifier token, written after `body`, could name an identity: the word it begins or
 * continues could still become a term of the map. A token ending in whitespace begins an empty
 * word, which could become any term (the stories vocabulary writes " Jake" as "▁", "J", "a", "ke").
 */
export function canNameIdentity(map: SwapMap, body: string, tokenText: string): boolean {
  const partial = /^[\p{L}\p{M}\p{N}']/u.test(tokenText) ? trailingWord(body) : "";
  const text = partial + tokenText;
  const first = wordSpans(text)[0];
  if (!first) return /\s$/u.test(tokenText);
  if (first.end === text.length) return couldBeTerm(map, first.word);
  // A whole word and more ("Lucy," "she."): the word decides, and so does a word begun at the end.
  const last = wordSpans(text).at(-1);
  return (
    couldBeTerm(map, first.word) ||
    /\s$/u.test(tokenText) ||
    (last !== undefined && last.end === text.length && couldBeTerm(map, last.word))
  );
}

/** The word still growing at the end of `text` (lower-cased as wordSpans gives it), or "". */
function trailingWord(text: string): string {
  const last = wordSpans(text).at(-1);
  return last && last.end === text.length ? text.slice(last.start, last.end) : "";
}

/** Each verifier's token texts, read once (with a neutral context, so a leading space is kept). */
const tokenTexts = new WeakMap<LanguageModel, Map<Token, string>>();

function tokenText(verifier: LanguageModel, token: Token): string {
  let texts = tokenTexts.get(verifier);
  if (!texts) {
    texts = new Map();
    tokenTexts.set(verifier, texts);
  }
  let text = texts.get(token);
  if (text === undefined) {
    text = verifier.detokenize([token], { context: [token] });
    texts.set(token, text);
  }
  return text;
}

/**
 * B for one context pair from the verifier's next-token distributions after the real context
 * (`real`, after `body`) and after the counterfactual one. Tokens missing from one side (a
 * truncated distribution) are left out.
 */
export function stepBaseline(
  verifier: LanguageModel,
  map: SwapMap,
  body: string,
  real: NextTokenDistribution,
  counterfactual: NextTokenDistribution,
): number {
  const q = new Map(counterfactual.map((e) => [e.token, e.logprob]));
  const entries: BaselineEntry[] = [];
  for (const { token, logprob } of real) {
    const other = q.get(token);
    if (other === undefined) continue;
    entries.push({
      p: Math.exp(logprob),
      q: Math.exp(other),
      identity: verifier.isStopToken(token) ? false : canNameIdentity(map, body, tokenText(verifier, token)),
    });
  }
  return contextShift(entries);
}

/** A real context and its counterfactual, whose next-token distributions give B. */
export interface ContextPair {
  body: string;
  real: [string, string];
  counterfactual: [string, string];
}

/** Where the word being written at the end of `generated` began, its leading whitespace included. */
export function wordStart(generated: string): number {
  const last = wordSpans(generated).at(-1);
  let start = last && last.end === generated.length ? last.start : generated.length;
  while (start > 0 && /\s/u.test(generated[start - 1])) start--;
  return start;
}

/** The step's context pair for counterfactual `shift`, or undefined when the swap changes nothing there (B = 0). */
export function baselineContext(
  map: SwapMap,
  prompt: string,
  generated: string,
  shift: number,
): ContextPair | undefined {
  const body = generated.slice(0, wordStart(generated));
  const cf = counterfactual(map, [prompt, body], shift);
  if (!cf.changed) return undefined;
  return { body, real: [prompt, body], counterfactual: [cf.segments[0], cf.segments[1]] };
}
