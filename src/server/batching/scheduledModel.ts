import {
  type ChatMessage,
  emptyUsage,
  type LanguageModel,
  type ModelCallOptions,
  type ModelCapabilities,
  type ModelUsage,
  type NextTokenDistribution,
  type Rollout,
  type RolloutOptions,
  type RolloutRequest,
  type ScoredContinuation,
  type ScoreOptions,
  type ScoreRequest,
  type Token,
} from "../../lm/types.js";
import type { StepScheduler } from "./scheduler.js";

/**
 * One request's view of the served model: the same `LanguageModel`, with its model calls going
 * through the shared {@link StepScheduler} (so they are batched with other requests' calls) and
 * its own usage counters (what this request cost, not what the model did meanwhile for others).
 * It does not own the model: `dispose` does nothing, and there is no `clearCache` (the cache is
 * shared by every request).
 */
export class ScheduledModel implements LanguageModel {
  readonly usage: ModelUsage = emptyUsage();
  private readonly base: LanguageModel;

  constructor(private readonly scheduler: StepScheduler) {
    this.base = scheduler.base;
  }

  get id(): string {
    return this.base.id;
  }
  get vocabularySize(): number {
    return this.base.vocabularySize;
  }
  get capabilities(): Readonly<ModelCapabilities> {
    return this.base.capabilities;
  }
  get contextSize(): number {
    return this.base.contextSize;
  }
  get bosToken(): Token | undefined {
    return this.base.bosToken;
  }
  get stopTokens(): ReadonlySet<Token> {
    return this.base.stopTokens;
  }

  tokenize(text: string, options?: { addBos?: boolean }): Promise<Token[]> {
    return this.base.tokenize(text, options);
  }
  chatTokens(messages: readonly ChatMessage[]): Promise<Token[]> {
    return this.base.chatTokens(messages);
  }
  detokenize(tokens: readonly Token[], options?: { context?: readonly Token[] }): string {
    return this.base.detokenize(tokens, options);
  }
  isStopToken(token: Token): boolean {
    return this.base.isStopToken(token);
  }

  nextTokenDistributions(
    prefixes: readonly (readonly Token[])[],
    options: { topK: number } & ModelCallOptions,
  ): Promise<NextTokenDistribution[]> {
    return this.scheduler.nextTokenDistributions(this.usage, prefixes, options);
  }

  scoreContinuations(
    requests: readonly ScoreRequest[],
    options?: ScoreOptions,
  ): Promise<ScoredContinuation[]> {
    return this.scheduler.exclusive(this.usage, () => this.base.scoreContinuations(requests, options));
  }

  rollouts(requests: readonly RolloutRequest[], options: RolloutOptions): Promise<Rollout[]> {
    return this.scheduler.rollouts(this.usage, requests, options);
  }

  async dispose(): Promise<void> {
    // The served model outlives every request.
  }
}
