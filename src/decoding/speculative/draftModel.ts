import { samplerDistribution } from "../../lm/sampling.js";
import type { LanguageModel, SamplingOptions, Token } from "../../lm/types.js";
import type { Draft, Drafter, DraftOptions, DraftRequest } from "./drafter.js";
import { draw } from "./draw.js";
import { checkSameTokenizer } from "./sameTokenizer.js";

export interface DraftModelOptions {
  /**
   * Sampling temperature of the draft under a sampling target. Defaults to the target's. Any q is
   * lossless (verification corrects for it); only the acceptance rate changes.
   */
  temperature?: number;
  /**
   * A greedy draft asks the draft model for another token only while the draft model's own
   * probability of the whole draft so far (the product of its tokens' probabilities) is at least
   * this; every token a call returns is drafted. The draft is accepted only as far as it is right,
   * so a token is worth verifying by how likely everything before it is right too, not by its own
   * probability alone (a per-token cut at 0.3 kept drafting through runs of 0.5s that are rarely
   * all right). Deciding before the call, not after it, means no call's answer is thrown away:
   * the last token costs the target one verified position (~2.3 ms on stories-heavy-n25) instead
   * of a draft call whose token is dropped (~1.1 ms), and is accepted often enough to pay. Any
   * value is lossless; 0 drafts all `n`. Defaults to 0.2 (measured best for stories260K drafting
   * for stories-heavy-n25 on the identity dev set and the bench:spec prompts, offline over every
   * position of their greedy text: bench:spec-policy).
   */
  minProbability?: number;
}

/** Defaults of {@link DraftModelOptions}. */
export const DRAFT_MODEL_DEFAULTS = { minProbability: 0.2 } as const;

/**
 * Drafts with a smaller model of the same tokenizer. Greedy: the draft's best guess, token by
 * token while it is sure enough. Sampling: token by token through `nextTokenDistributions`, drawing
 * from the draft's sampler distribution and reporting it as q — a rollout would return only the
 * drawn tokens, and the residual resample needs all of q.
 */
export class DraftModelDrafter implements Drafter {
  readonly name: string;

  constructor(
    readonly draft: LanguageModel,
    private readonly options: DraftModelOptions = {},
  ) {
    this.name = `model:${draft.id}`;
  }

  prepare(target: LanguageModel): Promise<void> {
    return checkSameTokenizer(target, this.draft);
  }

  async propose(requests: readonly DraftRequest[], options: DraftOptions): Promise<Draft[]> {
    // The draft's own context may be shorter than the target's: draft what fits, else nothing.
    const limits = requests.map((r) =>
      Math.max(0, Math.min(r.n, this.draft.contextSize - 1 - r.context.length)),
    );
    const drafts: Draft[] = requests.map(() => ({ tokens: [] }));
    const live = requests.map((_, i) => i).filter((i) => limits[i] > 0);
    if (live.length === 0) return drafts;
    const sampling: SamplingOptions = {
      ...options.sampling,
      temperature: this.options.temperature ?? options.sampling.temperature,
    };
    if ((options.sampling.temperature ?? 0) <= 0) return this.greedy(requests, limits, drafts, options);
    return this.sampled(requests, limits, drafts, sampling, options);
  }

  /**
   * Greedy drafts token by token, one batched top-1 call per position, each request asking for
   * another token only while the draft's probability of its whole draft is at least
   * `minProbability`: a rollout of n tokens would compute the tokens after that cut too, and with
   * `auto` (up to 16) they were most of the draft's cost.
   */
  private async greedy(
    requests: readonly DraftRequest[],
    limits: readonly number[],
    drafts: Draft[],
    options: DraftOptions,
  ): Promise<Draft[]> {
    const minLogprob = Math.log(this.options.minProbability ?? DRAFT_MODEL_DEFAULTS.minProbability);
    /** Log of the draft's probability of each request's draft so far. */
    const sure = requests.map(() => 0);
    let live = requests.map((_, i) => i).filter((i) => limits[i] > 0);
    while (live.length > 0) {
      const distributions = await this.draft.nextTokenDistributions(
        live.map((i) => [...requests[i].context, ...drafts[i].tokens]),
        { topK: 1, signal: options.signal, onWarning: options.onWarning },
      );
      live = live.filter((i, j) => {
        const [top] = distributions[j];
        if (!top) return false;
        sure[i] += top.logprob;
        const tokens = drafts[i].tokens;
        tokens.push(top.token);
        return tokens.length < limits[i] && !this.draft.isStopToken(top.token) && sure[i] >= minLogprob;
      });
    }
    return drafts;
  }

  /** Draws every request's draft token by token, one batched distribution call per position. */
  private async sampled(
    requests: readonly DraftRequest[],
    limits: readonly number[],
    drafts: Draft[],
    sampling: SamplingOptions,
    options: DraftOptions,
  ): Promise<Draft[]> {
    for (const draft of drafts) draft.q = [];
    let live = requests.map((_, i) => i).filter((i) => limits[i] > 0);
    while (live.length > 0) {
      const distributions = await this.draft.nextTokenDistributions(
        live.map((i) => [...requests[i].context, ...drafts[i].tokens]),
        { topK: this.draft.capabilities.maxTopK, signal: options.signal, onWarning: options.onWarning },
      );
      live.forEach((i, j) => {
        const q = new Map<Token, number>(samplerDistribution(distributions[j], sampling));
        drafts[i].tokens.push(draw(q, requests[i].random));
        drafts[i].q?.push(q);
      });
      live = live.filter((i) => {
        const tokens = drafts[i].tokens;
        return tokens.length < limits[i] && !this.draft.isStopToken(tokens[tokens.length - 1]);
      });
    }
    return drafts;
  }
}
