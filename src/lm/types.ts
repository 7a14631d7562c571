/**
 * The narrow contract every decoding strategy sees (version {@link LANGUAGE_MODEL_CONTRACT}). A
 * backend (llama.cpp in-process, llama-server or vLLM over HTTP, a fleet of them) implements it;
 * strategies never see the backend's library or its transport.
 *
 * The model calls are batched: they take many prefixes and the backend evaluates them together
 * where it can. Results come back in the caller's order. What a backend cannot do exactly is
 * stated in `capabilities`, and every call that had to degrade a request (e.g. top-k clamped to
 * a server's 20 logprobs) reports it through `onWarning` — never silently.
 *
 * Tokenizer: `tokenize` is async (a remote backend asks its server); `detokenize` is synchronous
 * because streaming calls it for every token: a backend keeps the text of every token it hands out
 * (llama.cpp: the vocabulary; HTTP: the pieces fetched once per token id), so decoding text never
 * waits on the network.
 */
export const LANGUAGE_MODEL_CONTRACT = "tiller.lm/v2";

export type Token = number;

export interface TokenLogprob {
  token: Token;
  /** Natural-log probability under the model's full softmax (temperature 1, no truncation). */
  logprob: number;
}

/** The top-k next tokens of one prefix, most likely first. */
export type NextTokenDistribution = TokenLogprob[];

export type StopReason = "end-of-generation" | "stop-string" | "max-tokens" | "context-full" | "aborted";

export interface SamplingOptions {
  /** 0 (default) decodes greedily; > 0 samples from softmax(logits / temperature). */
  temperature?: number;
  /** Keep only the k most likely tokens before sampling (0 or undefined: no limit). */
  topK?: number;
  /** Nucleus sampling: keep the smallest set of tokens whose probability reaches p (1: no limit). */
  topP?: number;
  /** Seed of the sampler. The same seed, prefix and options give the same rollout. */
  seed?: number;
}

export interface RolloutRequest {
  /** Full token prefix (prompt tokens, BOS included, plus anything generated so far). */
  prefix: readonly Token[];
  /** Overrides `RolloutOptions.seed` for this request (Best-of-N gives each sample its own). */
  seed?: number;
  /** Overrides `RolloutOptions.maxTokens` for this request. */
  maxTokens?: number;
}

/** Something a backend could not do exactly as asked, reported per call instead of silently. */
export interface ModelWarning {
  /** Stable, machine-readable: "top-k-clamped", "inexact-distribution", "unseeded-sampling", … */
  code: string;
  message: string;
}

/** Options every model call takes. */
export interface ModelCallOptions {
  signal?: AbortSignal;
  /** Receives each way this call was degraded (e.g. top-k clamped). Defaults to dropping them. */
  onWarning?: (warning: ModelWarning) => void;
}

/** What a backend can do exactly; strategies adapt (or warn) instead of assuming. */
export interface ModelCapabilities {
  /**
   * Most entries a distribution can hold per position: the vocabulary size where every token's
   * logprob is available (llama.cpp), ~20 behind an OpenAI-style server. A request for more is
   * clamped to it with a "top-k-clamped" warning, so strategies ask for min(wanted, maxTopK).
   */
  maxTopK: number;
  /** Logprobs are the exact log-softmax over the full vocabulary (not renormalised over a top-k). */
  exactDistributions: boolean;
  /** A sampled rollout with the same seed, prefix and options is bit-for-bit reproducible. */
  seededSampling: boolean;
  /** Prefixes shared with earlier calls are served from a cache instead of evaluated again. */
  prefixCache: boolean;
  /**
   * `scoreContinuations` evaluates each request in one pass; false means one backend request per
   * continuation position (llama-server has no prompt logprobs), so it is expensive there.
   */
  singlePassScoring: boolean;
  /** The model carries its own chat template (`chatTokens` applies it). */
  chatTemplate: boolean;
}

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** A (prefix, continuation) pair whose continuation tokens are to be scored. */
export interface ScoreRequest {
  /** Full token prefix (BOS included). Must hold at least one token. */
  prefix: readonly Token[];
  /** The known tokens that follow `prefix` (may be empty: then only `next` is returned). */
  continuation: readonly Token[];
  /**
   * Whether this request needs `next` when the call asks for it (`nextTopK`); false lets a backend
   * skip the distribution after the last token (llama.cpp: one full-vocabulary read fewer) and
   * leave `next` out. A hint: a backend may return `next` anyway. Ignored for an empty
   * continuation. Defaults to true.
   */
  wantsNext?: boolean;
}

export interface ScoreOptions extends ModelCallOptions {
  /** Also return the top-k distribution at every continuation position. Defaults to 0 (none). */
  topK?: number;
  /** Size of the distribution one past the last continuation token. Defaults to 0 (none). */
  nextTopK?: number;
  /**
   * The caller reads only each position's most likely token (greedy verification). With `topK`
   * and `nextTopK` at most 1, a backend may then compute just the argmax and its logprob at each
   * position instead of the full distribution: `top` and `next` are as usual, a continuation
   * token's logprob is exact where it is that argmax and NaN (not computed) where it is not.
   * A backend that always computes everything ignores it. Defaults to false.
   */
  argmaxOnly?: boolean;
}

export interface ScoredContinuation {
  /** Logprob of each continuation token given everything before it (full softmax, temperature 1). */
  logprobs: number[];
  /** Sum of `logprobs`. */
  logprob: number;
  /** With `topK`: the distribution before each continuation token (`top[i]` predicts `continuation[i]`). */
  top?: NextTokenDistribution[];
  /** With `nextTopK` (and unless the request set `wantsNext: false`): the distribution after the last continuation token. */
  next?: NextTokenDistribution;
}

export interface RolloutOptions extends SamplingOptions, ModelCallOptions {
  /** Upper bound on generated tokens per rollout. */
  maxTokens: number;
  /** Stop when the decoded continuation contains one of these strings. */
  stopStrings?: readonly string[];
  /** Called with each generated token as it is produced (for streaming). */
  onToken?: (requestIndex: number, token: Token) => void;
}

export interface Rollout {
  /** Generated tokens, the stop token included when one ended the rollout. */
  tokens: Token[];
  /** Model logprob of each generated token (full softmax, temperature 1). */
  logprobs: number[];
  /** Sum of `logprobs`. */
  logprob: number;
  stopReason: StopReason;
}

/** Cumulative counters; strategies report the difference over their run. */
export interface ModelUsage {
  /** Tokens the model actually evaluated (prefix tokens not found in cache + generated tokens fed back). */
  evaluatedTokens: number;
  /** Prefix tokens requested by callers (before cache reuse). */
  requestedPrefixTokens: number;
  /** Of those, tokens served from a cached sequence instead of being evaluated again. */
  cachedPrefixTokens: number;
  /** Tokens generated by rollouts. */
  generatedTokens: number;
  /** Number of batched calls made. */
  calls: number;
}

export interface LanguageModel {
  /** Human-readable identity, e.g. the model file name. */
  readonly id: string;
  readonly vocabularySize: number;
  readonly capabilities: Readonly<ModelCapabilities>;
  /** The local file the model was loaded from, when there is one (keys on-disk caches). */
  readonly source?: { readonly path: string };
  /** Maximum tokens (prompt + generation) one prefix can hold. */
  readonly contextSize: number;
  /** The beginning-of-sequence token, if the model uses one. */
  readonly bosToken: Token | undefined;
  /** Tokens that end a generation: the model's end-of-generation tokens and its BOS. */
  readonly stopTokens: ReadonlySet<Token>;
  readonly usage: Readonly<ModelUsage>;

  /** Text to tokens. `addBos` (default true) prepends BOS when the model expects one. */
  tokenize(text: string, options?: { addBos?: boolean }): Promise<Token[]>;
  /**
   * Chat messages to prompt tokens through the model's own chat template (BOS included as the
   * template wants), ending with the assistant's turn opened. Only when
   * `capabilities.chatTemplate`; otherwise it rejects with a TillerError.
   */
  chatTokens(messages: readonly ChatMessage[]): Promise<Token[]>;
  /**
   * Tokens to text. Pass the tokens that precede them as `context` so the first token's leading
   * space is kept and a multi-byte character split across the boundary is decoded correctly.
   */
  detokenize(tokens: readonly Token[], options?: { context?: readonly Token[] }): string;
  isStopToken(token: Token): boolean;

  /** For each prefix, its top-`topK` next tokens with exact log-softmax logprobs. */
  nextTokenDistributions(
    prefixes: readonly (readonly Token[])[],
    options: { topK: number } & ModelCallOptions,
  ): Promise<NextTokenDistribution[]>;

  /**
   * For each request, the logprob of every continuation token given the prefix and the tokens
   * before it, optionally the top-k at each position and the distribution one past the end —
   * what speculative verification and counterfactual scoring need. Cache-reusing like the rest.
   */
  scoreContinuations(
    requests: readonly ScoreRequest[],
    options?: ScoreOptions,
  ): Promise<ScoredContinuation[]>;

  /** For each request, a continuation of up to `maxTokens` tokens, greedy or sampled. */
  rollouts(requests: readonly RolloutRequest[], options: RolloutOptions): Promise<Rollout[]>;

  /**
   * Optional: forget every cached prefix. Batched float arithmetic depends slightly on what is
   * cached and batched together, so a sampled rollout can differ in a rare near-tie between two
   * cache states; calls are bit-for-bit reproducible from the same state, e.g. right after this.
   */
  clearCache?(): Promise<void>;

  dispose(): Promise<void>;
}

export function emptyUsage(): ModelUsage {
  return {
    evaluatedTokens: 0,
    requestedPrefixTokens: 0,
    cachedPrefixTokens: 0,
    generatedTokens: 0,
    calls: 0,
  };
}

/** `after - before`, field by field. */
export function usageSince(before: Readonly<ModelUsage>, after: Readonly<ModelUsage>): ModelUsage {
  return {
    evaluatedTokens: after.evaluatedTokens - before.evaluatedTokens,
    requestedPrefixTokens: after.requestedPrefixTokens - before.requestedPrefixTokens,
    cachedPrefixTokens: after.cachedPrefixTokens - before.cachedPrefixTokens,
    generatedTokens: after.generatedTokens - before.generatedTokens,
    calls: after.calls - before.calls,
  };
}
