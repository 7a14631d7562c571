import { rolloutStopReason } from "../../lm/rolloutStop.js";
import { pickToken, seededRandom } from "../../lm/sampling.js";
import type {
  LanguageModel,
  NextTokenDistribution,
  RolloutOptions,
  RolloutRequest,
  StopReason,
  Token,
} from "../../lm/types.js";

/**
 * One rollout request the scheduler advances token by token. It mirrors what the in-process
 * backend does inside `rollouts` (same stop rules, same seeded sampler, one random draw per
 * token), so a rollout gives the same tokens whether it ran alone in one backend call or was
 * stepped together with other requests' rollouts.
 */
export class RolloutState {
  readonly tokens: Token[] = [];
  readonly logprobs: number[] = [];
  stopReason: StopReason | undefined;
  readonly prefix: readonly Token[];
  readonly seed: number;
  readonly maxTokens: number;
  /** False until the scheduler first evaluates this rollout (its first step costs the whole prefix). */
  started = false;
  private random: (() => number) | undefined;

  constructor(
    /** Position of this request in its `rollouts` call (what `onToken` reports). */
    readonly index: number,
    request: RolloutRequest,
    options: RolloutOptions,
  ) {
    this.prefix = request.prefix;
    this.seed = request.seed ?? options.seed ?? 0;
    this.maxTokens = request.maxTokens ?? options.maxTokens;
    if (this.maxTokens <= 0) this.stopReason = "max-tokens";
  }

  get live(): boolean {
    return this.stopReason === undefined;
  }

  /** Prompt plus everything generated so far: what the next step evaluates. */
  fullPrefix(): Token[] {
    return [...this.prefix, ...this.tokens];
  }

  /**
   * The sampler's PRNG, positioned after the draws already made: the backend draws once per
   * token, so tokens produced elsewhere (a solo backend call) are skipped by drawing as many.
   */
  sampler(): () => number {
    if (!this.random) {
      this.random = seededRandom(this.seed);
      for (let i = 0; i < this.tokens.length; i++) this.random();
    }
    return this.random;
  }

  /** Draws the next token from a full next-token distribution (most likely first). */
  draw(distribution: NextTokenDistribution, options: RolloutOptions): { token: Token; logprob: number } {
    const token = pickToken(distribution, options, this.sampler());
    const entry = distribution.find((candidate) => candidate.token === token);
    return { token, logprob: entry?.logprob ?? Number.NEGATIVE_INFINITY };
  }

  /** Appends a generated token and decides whether the rollout ends here. */
  push(token: Token, logprob: number, model: LanguageModel, options: RolloutOptions): void {
    this.tokens.push(token);
    this.logprobs.push(logprob);
    this.stopReason = rolloutStopReason(model, this.prefix, this.tokens, this.maxTokens, options);
  }
}
