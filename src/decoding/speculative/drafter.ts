import type { LanguageModel, ModelCallOptions, SamplingOptions, Token } from "../../lm/types.js";

/**
 * The drafting hook of speculative decoding: something that guesses the next tokens cheaply so
 * the target can check several of them in one `scoreContinuations` pass. Three ship with tiller
 * (a draft model, prompt lookup, corpus lookup); a library user may pass their own.
 *
 * Calls are batched (one request per sequence being decoded: Best-of-N samples, DeAL lookaheads)
 * so a draft model evaluates them together, like the target does.
 */
export interface DraftRequest {
  /** Everything before the draft: the prompt (BOS included) and the tokens generated so far. */
  context: readonly Token[];
  /** Most tokens to propose (≥ 1). A drafter may propose fewer, or none when it has no guess. */
  n: number;
  /**
   * This request's random stream, for drafters that sample (a draft model under sampling). Each
   * request has its own so a batch's drafts do not depend on each other.
   */
  random: () => number;
}

/** One proposal. */
export interface Draft {
  tokens: Token[];
  /**
   * With sampling: `q[i]` is the distribution `tokens[i]` was drawn from (token → probability),
   * which lossless verification divides by. Absent for a drafter that proposes deterministically:
   * its q is a point mass on the proposed token (q = 1), which is still lossless.
   */
  q?: ReadonlyMap<Token, number>[];
}

export interface DraftOptions extends ModelCallOptions {
  /**
   * How the target decodes: temperature 0 (greedy) wants the drafter's best guess; a sampling
   * drafter draws from its own distribution under these options and reports it as `q`.
   */
  sampling: SamplingOptions;
}

export interface Drafter {
  /** Short name for stats and traces: "model:stories260K.gguf", "prompt", "index:…". */
  readonly name: string;
  /**
   * Checks, once before use, that this drafter can serve `target` (same tokenizer, an index built
   * with its tokenizer); throws a TillerError otherwise.
   */
  prepare?(target: LanguageModel): Promise<void>;
  /** Proposes up to `request.n` tokens for each request, in the caller's order. */
  propose(requests: readonly DraftRequest[], options: DraftOptions): Promise<Draft[]>;
}
