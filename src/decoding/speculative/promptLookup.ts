import type { Token } from "../../lm/types.js";
import type { Draft, Drafter, DraftRequest } from "./drafter.js";

export interface PromptLookupOptions {
  /** Longest n-gram matched first. Defaults to 4. */
  maxNgram?: number;
  /**
   * Shortest n-gram that still counts as a match. Defaults to 2: a single repeated token (".",
   * "the") predicts little, and a drafter that always proposes something leaves nothing to the
   * drafters after it (`prompt+index:DIR`).
   */
  minNgram?: number;
}

/**
 * Prompt lookup: the last few tokens (an n-gram, longest first) are looked up earlier in the
 * prompt + output so far, and what followed their most recent earlier occurrence is proposed.
 * Costs no model call; pays off where the output repeats its input (summaries, edits, names,
 * code) and proposes nothing where it does not.
 */
export class PromptLookupDrafter implements Drafter {
  readonly name = "prompt";
  private readonly maxNgram: number;
  private readonly minNgram: number;

  constructor(options: PromptLookupOptions = {}) {
    this.minNgram = Math.max(1, Math.floor(options.minNgram ?? 2));
    this.maxNgram = Math.max(this.minNgram, Math.floor(options.maxNgram ?? 4));
  }

  async propose(requests: readonly DraftRequest[]): Promise<Draft[]> {
    return requests.map((request) => ({
      tokens: lookup(request.context, request.n, this.minNgram, this.maxNgram),
    }));
  }
}

/** Up to `n` tokens that followed the most recent earlier occurrence of the longest matching tail n-gram. */
export function lookup(context: readonly Token[], n: number, minNgram: number, maxNgram: number): Token[] {
  const end = context.length;
  for (let size = Math.min(maxNgram, end - 1); size >= minNgram; size--) {
    // The occurrence must end before the tail itself, and have at least one token after it.
    for (let start = end - size - 1; start >= 0; start--) {
      let k = 0;
      while (k < size && context[start + k] === context[end - size + k]) k++;
      if (k === size) return context.slice(start + size, Math.min(end, start + size + n));
    }
  }
  return [];
}
