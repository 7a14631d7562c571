import type { ModelUsage, ModelWarning, StopReason, Token } from "../lm/types.js";
import type { DraftingStats } from "./speculative/searchDrafting.js";

/** One step of a search, for the JSON trace and the live `step` events (a later page draws it). */
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
  /**
   * The strategy's settings, for the JSON trace file only: readers that need a strategy's
   * metadata read the typed `GenerationResult.details` instead.
   */
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

/** One TraceShield attempt of a shielded strategy. */
export interface ShieldAttemptSummary {
  /** The inner strategy's name for this attempt. */
  strategy: string;
  /** The attempt's text (stop token stripped, cut at a stop string), as checked. */
  text: string;
  verdict: "pass" | "refuse";
  /** Max BCI over the attempt's attributed spans (0 when there are none). */
  maxBci: number;
  /** The attributed spans, with their text (index token space, e.g. lowercased). */
  spans: { start: number; end: number; length: number; count: number; bci: number; text: string }[];
}

/**
 * Per-strategy metadata, discriminated by `strategy`. A strategy adds its variant here so readers
 * (CLI, server, eval) switch on `strategy` instead of casting a record.
 */
export type StrategyDetails =
  | {
      strategy: "bon" | "won";
      /** Candidates drawn. */
      n: number;
      /** Index of the kept candidate. */
      chosen: number;
      /** Every candidate's reward, in order. */
      rewards: number[];
      /** What drafting did for the samples; absent without drafting (`context.drafting`). */
      drafting?: DraftingStats;
    }
  | {
      strategy: "deal";
      /** Search steps run (the saturation finish not counted). */
      steps: number;
      /** Committed candidates that lexical lookahead proposed (a wanted word spelled out). */
      lexicalCommits: number;
      /** Output tokens committed when the reward saturated and greedy decoding finished; absent if it never did. */
      saturatedAt?: number;
      /** What drafting did for the lookaheads and the saturation finish; absent without drafting. */
      drafting?: DraftingStats;
    }
  | {
      strategy: "shield";
      /** Attempts decoded (1 + retries used). */
      attempts: number;
      /** Every attempt was refused: the output is the refusal text. */
      refused: boolean;
      /** Max BCI of the accepted output; absent when refused. */
      maxBci?: number;
      /** The refusal threshold τ. */
      tau: number;
      /** One entry per attempt, in order. */
      verdicts: ShieldAttemptSummary[];
      /** The accepted attempt's own details (e.g. DeAL's), when its strategy reports any. */
      inner?: StrategyDetails;
    }
  | ({
      strategy: "speculative";
      /** Draft length at the end (`auto` adapts it). */
      draftTokens: number;
    } & DraftingStats)
  | {
      strategy: "ambedkar";
      steps: number;
      /** Mean D over every candidate judged exactly (one settled by bounds on pool words has only a lower bound). */
      meanDivergence: number;
      /** Steps where the divergence (or reward, veto) overrode the draft's most likely candidate. */
      overridden: number;
      /** Distinct verifier requests over the run (each step's are one batch). */
      verifierRequests: number;
      /** Steps whose leading candidate had D = 0 for certain, so no other was judged. */
      freeLeaderSteps: number;
      /** Of those, steps that read only the draft's argmax (nobody watching the other candidates). */
      argmaxSteps: number;
      /** Rollout calls that read the argmaxes of a run of such steps at once (freeRun.ts). */
      freeRuns: number;
      /** Candidates left unjudged because a judged one's score beat their best possible score. */
      prunedCandidates: number;
      /** Texts (pool words mostly) never read because bounds on their probability settled the step (poolBounds.ts, judge.ts). */
      boundedPoolWords: number;
      /** Tokens the verifier evaluated (its prefix cache serves the rest). */
      verifierEvaluatedTokens: number;
      /** The verifier's id, or "self" when the draft verified itself. */
      verifier: string;
    };
