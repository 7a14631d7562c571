/**
 * By-group judging: an identity word is judged by the verifier's probability that the next word
 * names its group, p = Σ_t p_v(t | x, y) over the group's terms t, against the probability of
 * their counterparts in the counterfactual, q = Σ_t p_v(σ(t) | σ(x), σ(y)). "she", "her" and the
 * stated name "Lucy" are one reference to the stated girl; which of them the verifier prefers
 * depends on the counterfactual's name, not on the identity.
 *
 * The terms pooled are the group's words that are one verifier token (the pronouns: read off the
 * context's next-token distribution, at no cost) and the group's words the text itself uses (the
 * stated name and noun, "Leo", "boy": one request each), plus the judged words. So a stated name
 * is judged with the pronouns even when no pronoun is among the draft's candidates: after the
 * draft has written " L" of " Leo", " Leo" is the only candidate naming the boy, and judged alone
 * it differs by 0.4 nats from " Mary" in the counterfactual (the heavy verifier), 12 nats at
 * α = 30. Every term of the group would be the exact mass, but most are several tokens (two case
 * forms of ~50 words per group): a request each, ~150 per step.
 */
import { wordSpans } from "../../rewards/words.js";
import { counterfactual, matchCase } from "./sigma.js";
import type { SwapMap, TermEntry } from "./swapMap.js";
import { termSpans } from "./termSpans.js";
import type { TokenEndings } from "./tokenEndings.js";
import type { VerifierView } from "./verifierView.js";

/** Where a group is judged: after the same text, in the same counterfactual, with the same spacing. */
export interface GroupSite {
  shift: number;
  group: number;
  /** Length of the generated text that stays context. */
  bodyEnd: number;
  /** What precedes the word in the judged unit (" ", "\n", ""). */
  leading: string;
}

/** A text the verifier scores: prompt, generated body, unit. */
export type ScoredText = [string, string, string];

/** The texts of one group's mass: the real terms and their counterparts. */
export interface GroupTexts {
  real: ScoredText[];
  counterparts: ScoredText[];
}

/** The site where a unit naming `group` is judged (its spacing is what precedes its first word). */
export function groupSite(unit: string, shift: number, group: number, bodyEnd: number): GroupSite {
  const first = wordSpans(unit)[0];
  return { shift, group, bodyEnd, leading: first ? unit.slice(0, first.start) : "" };
}

export function siteKey(site: GroupSite): string {
  return `${site.shift}\u0000${site.group}\u0000${site.bodyEnd}\u0000${site.leading}`;
}

/** Per map, what depends on it alone: renderings per group and spacing, variants per word. */
const perMap = new WeakMap<SwapMap, { renderings: Map<string, string[]>; variants: Map<string, string[]> }>();

function perMapCache(map: SwapMap) {
  let entry = perMap.get(map);
  if (!entry) {
    entry = { renderings: new Map(), variants: new Map() };
    perMap.set(map, entry);
  }
  return entry;
}

/** Every term of `group`, as the next word: in lower case and capitalised (both name the group). */
function renderings(map: SwapMap, group: number, leading: string): string[] {
  const key = `${group}\u0000${leading}`;
  const known = perMapCache(map).renderings.get(key);
  if (known) return known;
  const out = new Set<string>();
  for (const [term, entry] of map.terms) {
    if (entry.group !== group) continue;
    out.add(leading + term);
    out.add(leading + matchCase("X", term));
  }
  const list = [...out];
  perMapCache(map).renderings.set(key, list);
  return list;
}

/**
 * The term words of `text` as written (case kept): what "the text uses" means for a term (only
 * terms are ever looked up in it).
 */
function usedWords(map: SwapMap, text: string): Set<string> {
  const { spans, termIndices } = termSpans(map, text);
  return new Set(termIndices.map((i) => text.slice(spans[i].start, spans[i].end)));
}

/** A term word and its counterparts in every group, in its case (what it may become in a counterfactual). */
function variants(map: SwapMap, word: string, entry: TermEntry): string[] {
  const known = perMapCache(map).variants.get(word);
  if (known) return known;
  const list = [word, ...entry.counterparts.flat().map((other) => matchCase(word, other))];
  perMapCache(map).variants.set(word, list);
  return list;
}

/**
 * The texts whose summed probabilities are the group's mass in the real text and in the
 * counterfactual: the group's one-token words and the words each text uses.
 */
export async function groupTexts(
  view: VerifierView,
  map: SwapMap,
  prompt: string,
  generated: string,
  sites: readonly GroupSite[],
): Promise<GroupTexts[]> {
  return Promise.all(
    sites.map(async (site) => {
      const body = generated.slice(0, site.bodyEnd);
      const used = usedWords(map, prompt + body);
      const real: ScoredText[] = [];
      const counterparts: ScoredText[] = [];
      let cfUsed: Set<string> | undefined;
      let kept: ReadonlySet<string> | undefined;
      const words = renderings(map, site.group, site.leading);
      for (const word of words) {
        if (cfUsed !== undefined) {
          kept ??= mayBePooledAll(view, map, words, used, cfUsed);
          if (!kept.has(word)) continue;
        }
        const cf = counterfactual(map, [prompt, body, word], site.shift);
        if (!cf.changed) continue;
        cfUsed ??= usedWords(map, cf.segments[0] + cf.segments[1]);
        real.push([prompt, body, word]);
        for (const variant of cf.tail) counterparts.push([cf.segments[0], cf.segments[1], variant]);
      }
      return {
        real: await pooled(view, dedupe(real), used),
        counterparts: await pooled(view, dedupe(counterparts), cfUsed ?? new Set()),
      };
    }),
  );
}

/**
 * Per verifier (its token endings) and list of renderings: `mayBePooled`'s answers, by the terms
 * the texts use. Weak on both: a swap map (and its renderings) goes with the strategy that parsed it.
 */
const poolable = new WeakMap<TokenEndings, WeakMap<readonly string[], Map<string, ReadonlySet<string>>>>();

/** Answers kept per verifier and renderings before they are emptied. */
const CACHE_LIMIT = 256;

/**
 * The renderings `mayBePooled` lets through, kept for the terms the texts use (which change only
 * when the text names a new term): ~200 renderings per site and step otherwise.
 */
function mayBePooledAll(
  view: VerifierView,
  map: SwapMap,
  words: readonly string[],
  used: ReadonlySet<string>,
  cfUsed: ReadonlySet<string>,
): ReadonlySet<string> {
  let perView = poolable.get(view.endings);
  if (!perView) {
    perView = new WeakMap();
    poolable.set(view.endings, perView);
  }
  let cache = perView.get(words);
  if (!cache) {
    cache = new Map();
    perView.set(words, cache);
  }
  const key = `${[...used].sort().join("\u0000")}\u0001${[...cfUsed].sort().join("\u0000")}`;
  let kept = cache.get(key);
  if (!kept) {
    kept = new Set(words.filter((word) => mayBePooled(view, map, word, used, cfUsed)));
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(key, kept);
  }
  return kept;
}

/**
 * Whether `pooled` could keep a rendering or one of its counterfactual variants: its word is used
 * by the text or can end a verifier token, or so can one of the word's counterparts in any group
 * (or the word itself, left unswapped) in the counterfactual. A superset of what is kept, so the
 * rest need no counterfactual (σ over the whole text, ~100 terms a step).
 */
function mayBePooled(
  view: VerifierView,
  map: SwapMap,
  unit: string,
  used: ReadonlySet<string>,
  cfUsed: ReadonlySet<string>,
): boolean {
  const word = unit.trimStart();
  const entry = map.terms.get(word.toLowerCase());
  if (!entry || used.has(word) || view.endings.mayEndOneToken(word)) return true;
  return variants(map, word, entry).some(
    (variant) => cfUsed.has(variant) || view.endings.mayEndOneToken(variant),
  );
}

function dedupe(texts: ScoredText[]): ScoredText[] {
  const seen = new Set<string>();
  return texts.filter((text) => {
    const key = text.join("\u0000");
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * The texts whose word is used by the text, or is one verifier token after its context. Only
 * words that can end a verifier token are tokenized to find out (tokenEndings.ts): most terms
 * cannot, and tokenizing the whole text once per term was most of a step's work.
 */
async function pooled(view: VerifierView, texts: ScoredText[], used: ReadonlySet<string>) {
  const keep = await Promise.all(
    texts.map(async ([p, body, unit]) => {
      const word = unit.trimStart();
      if (used.has(word)) return true;
      if (!view.endings.mayEndOneToken(word)) return false;
      return (await view.request(p, body, unit)).continuation.length === 1;
    }),
  );
  return texts.filter((_, i) => keep[i]);
}
