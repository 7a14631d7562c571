import type { LanguageModel, ModelUsage, ModelWarning, StopReason, Token } from "../lm/types.js";
import type { DecodeEvent } from "./events.js";

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
    /** AMBEDKAR: the counterfactual divergence D charged to this candidate. */
    divergence?: number;
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
  /** Every way a model call or the strategy degraded a request during this generation. */
  warnings: ModelWarning[];
  /** Generated tokens (stop token excluded). */
  tokens: Token[];
  /** Sum of the model's logprobs of `tokens` given the prompt. */
  logprob: number;
  stopReason: StopReason;
  stats: GenerationStats;
  trace?: SearchTrace;
  /** The strategy's own objective for the output (beam: length-normalised logprob; DeAL: search score). */
  score?: number;
  /** What the strategy reports about its run, typed per strategy. */
  details?: StrategyDetails;
}

/**
 * Per-strategy metadata, discriminated by `strategy`. A strategy adds its variant here so readers
 * (CLI, server, eval) switch on `strategy` instead of casting a record.
 */
export type StrategyDetails =
  | { strategy: "bon" | "won"; n: number; chosen: number; rewards: number[] }
  | { strategy: "deal"; steps: number; lexicalCommits: number; saturatedAt?: number }
  | { strategy: "shield"; attempts: number; refused: boolean; maxBci?: number }
  | { strategy: "speculative"; drafted: number; accepted: number; targetCalls: number }
  | {
      strategy: "ambedkar";
      steps: number;
      /** Mean D over every candidate judged. */
      meanDivergence: number;
      /** Steps where the divergence (or reward, veto) overrode the draft's most likely candidate. */
      overridden: number;
      /** Distinct verifier requests over the run (each step's are one batch). */
      verifierRequests: number;
      /** Tokens the verifier evaluated (its prefix cache serves the rest). */
      verifierEvaluatedTokens: number;
      /** The verifier's id, or "self" when the draft verified itself. */
      verifier: string;
    };

/**
 * What every strategy receives. Strategies touch models only through `LanguageModel`, named by
 * role: `model` is the target (it writes the output); `draft` proposes tokens for speculative
 * verification; `verifier` judges candidates (AMBEDKAR); `judge` scores outputs for a judge
 * reward. Only the target is required; a strategy that needs another role says so.
 */
export interface DecodeContext {
  /** The target model. */
  model: LanguageModel;
  draft?: LanguageModel;
  verifier?: LanguageModel;
  judge?: LanguageModel;
  /** Prompt tokens, BOS included. */
  promptTokens: readonly Token[];
  prompt: string;
  maxTokens: number;
  stopStrings?: readonly string[];
  signal?: AbortSignal;
  /**
   * Receives the decode's event stream: committed text as soon as it is final, search steps,
   * warnings. Defaults to none (nothing is streamed).
   */
  emit?: (event: DecodeEvent) => void;
  /** Record a search trace in the result. */
  trace?: boolean;
}

/** Sends a warning to the context's stream (strategies call this where they degrade a request). */
export function warn(context: Pick<DecodeContext, "emit">, warning: ModelWarning): void {
  context.emit?.({ type: "warning", warning });
}
