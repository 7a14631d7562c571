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
   * Ends a draft before the first token the draft model itself gives less than this probability
   * (llama.cpp's --draft-p-min): the target rarely agrees where the draft is unsure, and every
   * drafted token costs verification work. Defaults to 0.3 (measured best for stories260K drafting
   * for stories-heavy-n25, bench:spec).
   */
  minProbability?: number;
}

/** Defaults of {@link DraftModelOptions}. */
export const DRAFT_MODEL_DEFAULTS = { minProbability: 0.3 } as const;

/**
 * Drafts with a smaller model of the same tokenizer. Greedy: one batched greedy `rollouts` call
 * (the draft's best guess). Sampling: token by token through `nextTokenDistributions`, drawing
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
    if ((options.sampling.temperature ?? 0) <= 0) {
      const rollouts = await this.draft.rollouts(
        live.map((i) => ({ prefix: requests[i].context, maxTokens: limits[i] })),
        {
          maxTokens: Math.max(...live.map((i) => limits[i])),
          signal: options.signal,
          onWarning: options.onWarning,
        },
      );
      const minLogprob = Math.log(this.options.minProbability ?? DRAFT_MODEL_DEFAULTS.minProbability);
      live.forEach((i, j) => {
        const { tokens, logprobs } = rollouts[j];
        let n = 0;
        while (n < tokens.length && logprobs[n] >= minLogprob) n++;
        drafts[i].tokens = tokens.slice(0, n);
      });
      return drafts;
    }
    return this.sampled(requests, limits, drafts, sampling, options);
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
