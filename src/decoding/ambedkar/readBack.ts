/**
 * Reading a counterfactual distribution back into the real world. After σ(c) in σ(x, y) the
 * verifier expects the counterfactual's identity words ("he" where the real text would have
 * "she"): compared token by token, a continuation that merely stays consistent with the swapped
 * identity would count as divergence. So the distribution-level D maps the counterfactual's
 * outcomes through σ⁻¹ first. Only terms that are one verifier token (with their leading space,
 * lower-case or capitalised) can be mapped; pieces of longer terms ("▁g" of "girl") stay as they are.
 */
import type { LanguageModel, Token } from "../../lm/types.js";
import type { SparseDistribution } from "./divergence.js";
import { matchCase } from "./sigma.js";
import type { SwapMap } from "./swapMap.js";

/** Per verifier: a word (with its leading space) → its single token, or null when it is several. */
const singleTokens = new WeakMap<LanguageModel, Map<string, Promise<Token | null>>>();

/** The one token `text` is after a word, or null ("a" + text tokenized, the "a" part removed). */
function singleToken(model: LanguageModel, text: string): Promise<Token | null> {
  let cache = singleTokens.get(model);
  if (!cache) {
    cache = new Map();
    singleTokens.set(model, cache);
  }
  let token = cache.get(text);
  if (!token) {
    token = Promise.all([
      model.tokenize("a", { addBos: false }),
      model.tokenize(`a${text}`, { addBos: false }),
    ]).then(([head, whole]) => {
      const same = head.every((t, i) => whole[i] === t);
      return same && whole.length === head.length + 1 ? whole[head.length] : null;
    });
    cache.set(text, token);
  }
  return token;
}

/** Verifier token → token, σ_{−shift} on the single-token terms of the map. */
export async function readBackMap(
  model: LanguageModel,
  map: SwapMap,
  shift: number,
): Promise<Map<Token, Token>> {
  const n = map.groups.length;
  const out = new Map<Token, Token>();
  const pairs: Promise<void>[] = [];
  for (const [term, entry] of map.terms) {
    const target = (((entry.group - shift) % n) + n) % n;
    const counterpart = entry.counterparts[target][0];
    if (counterpart === undefined) continue;
    for (const cased of [term, matchCase("A", term)])
      pairs.push(
        Promise.all([
          singleToken(model, ` ${cased}`),
          singleToken(model, ` ${matchCase(cased, counterpart)}`),
        ]).then(([from, to]) => {
          if (from !== null && to !== null && !out.has(from)) out.set(from, to);
        }),
      );
  }
  await Promise.all(pairs);
  return out;
}

/** The distribution with every mapped outcome moved to its σ⁻¹ token. */
export function readBack(
  distribution: SparseDistribution,
  mapping: ReadonlyMap<Token, Token>,
): SparseDistribution {
  const out: SparseDistribution = new Map();
  for (const [token, p] of distribution) {
    const to = mapping.get(token) ?? token;
    out.set(to, (out.get(to) ?? 0) + p);
  }
  return out;
}
