import { TillerError } from "../errors.js";
import type {
  ChatMessage,
  LanguageModel,
  ModelCallOptions,
  ModelCapabilities,
  ModelUsage,
  NextTokenDistribution,
  Rollout,
  RolloutOptions,
  RolloutRequest,
  ScoredContinuation,
  ScoreOptions,
  ScoreRequest,
  Token,
} from "./types.js";

/**
 * `model` as a backend that returns at most `k` logprobs per position (llama-server's and vLLM's
 * OpenAI endpoints return ~20): `capabilities.maxTopK` is `k`, and every request for more is
 * clamped to `k` and reported through the call's `onWarning` ("top-k-clamped"), never silently.
 * The model of what a remote backend does, and a way to test a strategy against one in-process.
 * Sampling's `topK` (rollouts) is not a distribution request and passes through unchanged.
 */
export function capTopK(model: LanguageModel, k: number): LanguageModel {
  if (!(Number.isInteger(k) && k >= 1))
    throw new TillerError(`a top-k cap must be an integer ≥ 1, got ${k}`, "bad-top-k");
  return new CappedTopKModel(model, k);
}

class CappedTopKModel implements LanguageModel {
  readonly capabilities: Readonly<ModelCapabilities>;
  /** Offered only when the inner model offers it (it is optional in the contract). */
  readonly clearCache?: () => Promise<void>;

  constructor(
    private readonly inner: LanguageModel,
    private readonly cap: number,
  ) {
    this.capabilities = { ...inner.capabilities, maxTopK: Math.min(cap, inner.capabilities.maxTopK) };
    const clear = inner.clearCache;
    if (clear) this.clearCache = () => clear.call(inner);
  }

  get id(): string {
    return this.inner.id;
  }
  get vocabularySize(): number {
    return this.inner.vocabularySize;
  }
  get contextSize(): number {
    return this.inner.contextSize;
  }
  get bosToken(): Token | undefined {
    return this.inner.bosToken;
  }
  get stopTokens(): ReadonlySet<Token> {
    return this.inner.stopTokens;
  }
  get usage(): Readonly<ModelUsage> {
    return this.inner.usage;
  }

  tokenize(text: string, options?: { addBos?: boolean }): Promise<Token[]> {
    return this.inner.tokenize(text, options);
  }
  chatTokens(messages: readonly ChatMessage[]): Promise<Token[]> {
    return this.inner.chatTokens(messages);
  }
  detokenize(tokens: readonly Token[], options?: { context?: readonly Token[] }): string {
    return this.inner.detokenize(tokens, options);
  }
  isStopToken(token: Token): boolean {
    return this.inner.isStopToken(token);
  }

  nextTokenDistributions(
    prefixes: readonly (readonly Token[])[],
    options: { topK: number } & ModelCallOptions,
  ): Promise<NextTokenDistribution[]> {
    return this.inner.nextTokenDistributions(prefixes, {
      ...options,
      topK: this.clamp(options.topK, "topK", options),
    });
  }

  scoreContinuations(
    requests: readonly ScoreRequest[],
    options: ScoreOptions = {},
  ): Promise<ScoredContinuation[]> {
    return this.inner.scoreContinuations(requests, {
      ...options,
      topK: options.topK === undefined ? undefined : this.clamp(options.topK, "topK", options),
      nextTopK:
        options.nextTopK === undefined ? undefined : this.clamp(options.nextTopK, "nextTopK", options),
    });
  }

  rollouts(requests: readonly RolloutRequest[], options: RolloutOptions): Promise<Rollout[]> {
    return this.inner.rollouts(requests, options);
  }

  dispose(): Promise<void> {
    return this.inner.dispose();
  }

  private clamp(asked: number, option: string, options: ModelCallOptions): number {
    if (asked <= this.cap) return asked;
    options.onWarning?.({
      code: "top-k-clamped",
      message: `${option} ${asked} asked, ${this.cap} given: this backend returns at most ${this.cap} logprobs per position`,
    });
    return this.cap;
  }
}
