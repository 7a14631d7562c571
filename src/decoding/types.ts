import type { LanguageModel, ModelUsage, StopReason, Token } from "../lm/types.js";

/** One step of a search, for the JSON trace (a later page draws it). */
export interface TraceStep {
  step: number;
  /** Tokens generated before this step. */
  prefixLength: number;
  candidates: {
    token: Token;
    text: string;
    logprob: number;
    /** Lookahead/rollout continuation judged with this candidate, when the strategy rolls out. */
    rollout?: string;
    reward?: number;
    score: number;
    kept: boolean;
    vetoed?: boolean;
    /** A candidate added by lexical lookahead (it spells a wanted word). */
    lexical?: boolean;
  }[];
  note?: string;
}

export interface SearchTrace {
  strategy: string;
  options: Record<string, unknown>;
  steps: TraceStep[];
}

export interface GenerationStats {
  promptTokens: number;
  generatedTokens: number;
  /** Every token the model evaluated during this generation, re-evaluation included. */
  evaluatedTokens: number;
  wallMs: number;
  usage: ModelUsage;
}

export interface GenerationResult {
  text: string;
  /** Generated tokens (stop token excluded). */
  tokens: Token[];
  /** Sum of the model's logprobs of `tokens` given the prompt. */
  logprob: number;
  stopReason: StopReason;
  stats: GenerationStats;
  trace?: SearchTrace;
}

/** What every strategy receives. Strategies touch the model only through `LanguageModel`. */
export interface DecodeContext {
  model: LanguageModel;
  /** Prompt tokens, BOS included. */
  promptTokens: readonly Token[];
  prompt: string;
  maxTokens: number;
  stopStrings?: readonly string[];
  signal?: AbortSignal;
  /** Called with each piece of committed text as soon as it is final (for streaming). */
  onText?: (text: string) => void;
  /** Record a search trace. */
  trace?: boolean;
}
