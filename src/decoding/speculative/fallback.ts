import type { LanguageModel } from "../../lm/types.js";
import type { Draft, Drafter, DraftOptions, DraftRequest } from "./drafter.js";

/**
 * Several drafters in order of preference: each request takes the first non-empty proposal.
 * E.g. prompt lookup, then a corpus: where the output repeats itself or its prompt, that
 * repetition is the better guess; elsewhere the corpus guesses. A later drafter is asked only
 * for the requests the earlier ones had nothing for.
 */
export class FallbackDrafter implements Drafter {
  readonly name: string;

  constructor(readonly drafters: readonly Drafter[]) {
    this.name = drafters.map((d) => d.name).join("+");
  }

  async prepare(target: LanguageModel): Promise<void> {
    for (const drafter of this.drafters) await drafter.prepare?.(target);
  }

  async propose(requests: readonly DraftRequest[], options: DraftOptions): Promise<Draft[]> {
    const drafts: Draft[] = requests.map(() => ({ tokens: [] }));
    let open = requests.map((_, i) => i);
    for (const drafter of this.drafters) {
      if (open.length === 0) break;
      const proposed = await drafter.propose(
        open.map((i) => requests[i]),
        options,
      );
      open.forEach((i, k) => {
        if (proposed[k]?.tokens.length) drafts[i] = proposed[k];
      });
      open = open.filter((i) => drafts[i].tokens.length === 0);
    }
    return drafts;
  }
}
