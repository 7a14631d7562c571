import type { LanguageModel, NextTokenDistribution, Token } from "../../lm/types.js";
import { tokenKey } from "./tokenKey.js";
import { logprobOf } from "./tokenLookup.js";

/** Prefixes of a head kept (tokens back from it): a word judged from its start rarely spans more. */
const ANCESTORS = 8;

/**
 * Draft distributions computed ahead of need. Completing a candidate's word asks the draft for
 * the distribution after the candidate; when that candidate is chosen, it is exactly the next
 * step's draft distribution, so the next step reads it here instead of calling the draft again.
 */
export class DraftMemo {
  private readonly entries = new Map<string, NextTokenDistribution>();

  constructor(
    /**
     * Entries computed and kept per distribution, at least what each call asks: a self-verifying
     * draft keeps whole ones, which its verifier reads as the contexts it would score (the cost is
     * the same: the backend reads the whole distribution for any top k above 1). Defaults to 0
     * (what is asked).
     */
    private readonly stored = 0,
  ) {}

  /** A prefix as a map key (tokenKey: fixed width, so a key that starts with another extends it). */
  private static key(prefix: readonly Token[]): string {
    return tokenKey(prefix);
  }

  /** Whether a distribution of at least `topK` entries after `prefix` is stored. */
  has(prefix: readonly Token[], topK: number): boolean {
    return (this.entries.get(DraftMemo.key(prefix))?.length ?? 0) >= topK;
  }

  /**
   * A stored distribution of at least `topK` entries after `prefix`, if any: its first `topK`
   * entries, the stored array itself (shared: read, never changed) when that is all of it.
   */
  get(prefix: readonly Token[], topK: number): NextTokenDistribution | undefined {
    const entry = this.entries.get(DraftMemo.key(prefix));
    if (!entry || entry.length < topK) return undefined;
    return entry.length === topK ? entry : entry.slice(0, topK);
  }

  /**
   * The logprob of `token` after `prefix` when the memo knows it: read off a whole stored
   * distribution (−∞ where it lists no such token), or off a shorter one (an argmax entry, a top k)
   * that lists it. Undefined when neither holds: a shorter entry says nothing of a token it lacks.
   * "Whole" is `stored` entries or more, so this is exact when `stored` is the vocabulary's size
   * (a self-verifying draft's memo); with `stored` 0 only listed tokens are read.
   */
  logprob(prefix: readonly Token[], token: Token): number | undefined {
    const entry = this.entries.get(DraftMemo.key(prefix));
    if (!entry) return undefined;
    if (this.stored > 0 && entry.length >= this.stored) return logprobOf(entry, token);
    return entry.find((e) => e.token === token)?.logprob;
  }

  set(prefix: readonly Token[], distribution: NextTokenDistribution): void {
    this.entries.set(DraftMemo.key(prefix), distribution);
  }

  /**
   * Forgets everything the decode can never ask for again: what extends none of `heads` (the
   * draft's prefix, and a self-verifying draft's counterfactual contexts) and is not one of their
   * last `ANCESTORS` prefixes. A word the draft has begun is judged from its start, so the verifier
   * reads the contexts before it again ("Lucy" after " L" reads the context before " L").
   */
  retain(heads: readonly (readonly Token[])[]): void {
    const keys = heads.map((head) => DraftMemo.key(head));
    for (const key of this.entries.keys())
      if (!keys.some((head) => DraftMemo.related(key, head))) this.entries.delete(key);
  }

  /** Whether a prefix's key extends a head's or is one of its last `ANCESTORS` prefixes. */
  private static related(key: string, head: string): boolean {
    // Keys have two characters per token, so a key that starts with another extends its prefix.
    if (key.length > head.length) return key.startsWith(head);
    return head.length - key.length <= 2 * ANCESTORS && head.startsWith(key);
  }

  /**
   * Stores the draft's greedy path from `prefix`, up to `tokens` tokens or the first of
   * `stopStrings`, as argmax entries (what `next` stores for a top 1 with `argmaxOnly`): one
   * rollout call instead of a call per token. Entries already stored are kept (they hold as much
   * or more).
   */
  async rollAhead(
    draft: LanguageModel,
    prefix: readonly Token[],
    tokens: number,
    options: { stopStrings?: readonly string[]; signal?: AbortSignal } = {},
  ): Promise<void> {
    const [rollout] = await draft.rollouts([{ prefix }], { ...options, maxTokens: tokens, temperature: 0 });
    const path = [...prefix];
    rollout.tokens.forEach((token, i) => {
      if (!this.has(path, 1)) this.set(path, [{ token, logprob: rollout.logprobs[i] }]);
      path.push(token);
    });
  }

  /**
   * The draft's top-`topK` after each prefix: stored ones read here, the rest in one batched call.
   * A call asks for at least the memo's `stored` entries, except for `topK` 1 with `argmaxOnly`
   * (a lookahead nobody else reads: the argmax alone is cheaper to read, and kept as such).
   */
  async next(
    draft: LanguageModel,
    prefixes: readonly (readonly Token[])[],
    topK: number,
    signal?: AbortSignal,
    argmaxOnly = false,
  ): Promise<NextTokenDistribution[]> {
    const out = prefixes.map((prefix) => this.get(prefix, topK));
    // Each missing prefix once, however often it is asked.
    const missing = new Map<string, readonly Token[]>();
    prefixes.forEach((prefix, i) => {
      if (out[i] === undefined) missing.set(DraftMemo.key(prefix), prefix);
    });
    if (missing.size > 0) {
      const asked = [...missing.values()];
      const computed = await draft.nextTokenDistributions(asked, {
        topK: argmaxOnly && topK === 1 ? 1 : Math.max(topK, this.stored),
        signal,
      });
      asked.forEach((prefix, m) => {
        this.set(prefix, computed[m]);
      });
      prefixes.forEach((prefix, i) => {
        out[i] ??= this.entries.get(DraftMemo.key(prefix))?.slice(0, topK);
      });
    }
    return out as NextTokenDistribution[];
  }
}
