import type {
  ChatMessage,
  ModelCapabilities,
  NextTokenDistribution,
  SamplingOptions,
  ScoredContinuation,
  ScoreRequest,
  Token,
} from "../types.js";
import type { Piece, PieceCache } from "./pieces.js";

/** The server kinds tiller speaks to. */
export const DIALECTS = ["llama-server", "vllm"] as const;
export type DialectName = (typeof DIALECTS)[number];

/** What one server says about the model it serves (read once, when it is opened). */
export interface ServerInfo {
  dialect: DialectName;
  /** Human-readable model name (llama-server: the GGUF file name; vLLM: the served model id). */
  modelName: string;
  /** Equal on two servers exactly when they serve the same model (same weights and tokenizer as far as the API shows). */
  fingerprint: string;
  vocabularySize: number;
  contextSize: number;
  bosToken: Token | undefined;
  /** The tokenizer prepends BOS to a text prompt. */
  addBos: boolean;
  /** SentencePiece-style: the first word of a text gets a leading space. */
  addSpacePrefix: boolean;
  /** End-of-generation tokens known from the server (BOS is added by the model). */
  stopTokens: Set<Token>;
  /** Requests the server evaluates at once (llama-server: its slots). */
  capacity: number;
  capabilities: ModelCapabilities;
}

/** Counters one server reports per request; the model sums them into its usage. */
export interface RequestStats {
  /** HTTP requests made for model calls (tokenizer requests not included). */
  requests: number;
  /** Of those, requests made for `scoreContinuations`. */
  scoreRequests: number;
  /** Prompt tokens sent. */
  promptTokens: number;
  /** Of those, tokens the server took from its prompt cache. */
  cachedPromptTokens: number;
  /** Tokens the server evaluated (uncached prompt tokens + generated tokens fed back). */
  evaluatedTokens: number;
}

export function emptyRequestStats(): RequestStats {
  return { requests: 0, scoreRequests: 0, promptTokens: 0, cachedPromptTokens: 0, evaluatedTokens: 0 };
}

export interface CallContext {
  signal?: AbortSignal;
  /** Receives what each request cost. */
  stats: RequestStats;
}

export interface RolloutCall extends CallContext {
  prefix: readonly Token[];
  /** Tokens to generate at most (already clamped to the context). */
  maxTokens: number;
  /** Independent samples from this prefix (vLLM's `n`; llama-server: always 1). */
  samples: number;
  sampling: SamplingOptions;
  /** vLLM stops on these server-side; tiller checks them again on the tokens. */
  stopStrings?: readonly string[];
  /** Called with tokens the dialect received in bulk before `onToken` sees them (to fetch their pieces). */
  seen(tokens: readonly Token[]): Promise<void>;
  /**
   * Receives each generated token of a sample with its full-softmax logprob, in order; returns
   * false to stop that sample there (tiller's own stop rule decided so).
   */
  onToken(sample: number, token: Token, logprob: number): boolean;
}

/**
 * Why the server stopped a sample: tiller's `onToken` said so, the server's end of generation
 * (an end-of-generation token or vLLM's own stop-string match), or the token budget.
 */
export type ServerStop = "tiller" | "end-of-generation" | "stop-string" | "length";

/** One server's wire format: what the remote model needs from llama-server or vLLM, request by request. */
export interface Dialect {
  readonly info: ServerInfo;
  /** Tokens of `text`, without BOS (the model adds it). */
  tokenize(text: string, signal?: AbortSignal): Promise<Token[]>;
  /** Prompt tokens through the model's chat template (only when `info.capabilities.chatTemplate`). */
  chatTokens(messages: readonly ChatMessage[], signal?: AbortSignal): Promise<Token[]>;
  fetchPieces(tokens: readonly Token[]): Promise<Map<Token, Piece>>;
  /** Receives the model's piece cache (shared by the fleet) once it is filled. */
  attachPieces?(pieces: PieceCache): void;
  /** The top-`topK` next tokens after `prefix` (topK already clamped to the server's limit). */
  next(prefix: readonly Token[], topK: number, call: CallContext): Promise<NextTokenDistribution>;
  score(
    request: ScoreRequest,
    options: { topK: number; nextTopK: number },
    call: CallContext,
  ): Promise<ScoredContinuation>;
  /** Generates until `onToken` says stop, `maxTokens`, or the server's end of generation; one stop per sample. */
  rollout(call: RolloutCall): Promise<ServerStop[]>;
  /** Whether `rollout` serves several samples in one request (`samples` > 1). */
  readonly multiSample: boolean;
  /** Cheap liveness probe (GET /health). */
  healthy(signal?: AbortSignal): Promise<boolean>;
}
