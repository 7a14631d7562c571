import type {
  LanguageModel,
  ModelCallOptions,
  NextTokenDistribution,
  Rollout,
  StopReason,
  Token,
} from "../../lm/types.js";
import type { RewardInput } from "../../rewards/types.js";
import { callOptions } from "../calls.js";
import type { RolloutFunction } from "../speculative/rolloutFunction.js";
import { searchRollouts } from "../speculative/searchDrafting.js";
import type { SpeculationSession } from "../speculative/session.js";
import { StepLog } from "../steps.js";
import { StopStrings } from "../stopStrings.js";
import { SharedPrefixStream, TextStream } from "../textStream.js";
import { type DecodeContext, streamsText } from "../types.js";
import type { ResolvedDealOptions } from "./options.js";

/** A partial output the search keeps. */
export interface Beam {
  tokens: Token[];
  logprobs: number[];
  /** Sum of logprobs minus veto penalties of the committed tokens. */
  logprob: number;
  done?: StopReason;
  /** Score of the step that produced this beam (for the final choice). */
  score: number;
  reward: number;
  /** The next-token distribution after the beam, when bridging already read it (see `reuseBridge`). */
  next?: NextTokenDistribution;
}

/** A continuation proposed for a beam: one token, or for a lexical proposal a whole word. */
export interface Proposal {
  tokens: Token[];
  /** Logprobs of the leading tokens known so far (all of them once spelled out). */
  logprobs: number[];
  lexical: boolean;
}

/** A proposal that passed the vetoes, being judged this step. */
export interface Candidate extends Proposal {
  beam: Beam;
  /** Sum of `logprobs`. */
  logprob: number;
  /** Veto penalties summed over the candidate's tokens (soft vetoes; hard-vetoed ones are dropped). */
  penalty: number;
  /** The l-token greedy lookahead after it (absent when the candidate ends the text). */
  rollout?: Rollout;
  /** How well a missing keyword fits after the lookahead (see `bridge`); absent when not bridging. */
  fit?: number;
  /** The next-token distribution after the lookahead, when bridging read it. */
  after?: NextTokenDistribution;
  reward: number;
  score: number;
}

/** The key of a keyword spelling scored after a prefix (see `DealRun.bridged`). */
export function bridgedKey(prefix: readonly Token[], spelling: readonly Token[]): string {
  return `${prefix.join(",")}|${spelling.join(",")}`;
}

export function startBeam(): Beam {
  return { tokens: [], logprobs: [], logprob: 0, score: 0, reward: 0 };
}

export function extend(beam: Beam, tokens: readonly Token[], logprobs: readonly number[]): Beam {
  return {
    tokens: [...beam.tokens, ...tokens],
    logprobs: [...beam.logprobs, ...logprobs],
    logprob: beam.logprob + logprobs.reduce((a, b) => a + b, 0),
    score: beam.score,
    reward: beam.reward,
  };
}

/**
 * One DeAL run: its context and options, what every phase shares (the reward's view of a text,
 * the stop strings, the lexical spellings found so far, the step log) and what it has produced.
 */
export class DealRun {
  readonly model: LanguageModel;
  readonly stops: StopStrings;
  readonly log: StepLog;
  readonly calls: ModelCallOptions;
  /** Beams that ended (the final choice is among them). */
  readonly finished: Beam[] = [];
  /** Token spellings of each wanted word, tokenized once per run. */
  readonly spellings = new Map<string, Token[][]>();
  /**
   * Keywords bridging scored after a candidate's lookahead this step, keyed by prefix + spelling:
   * where that candidate wins with its whole lookahead committed, the next step proposes the same
   * spelling at the same place, and spelling it out reuses these logprobs (see `reuseBridge`).
   */
  bridged = new Map<string, number[]>();
  /** Search steps run so far. */
  step = 0;
  lexicalCommits = 0;
  saturatedAt: number | undefined;
  /** How lookaheads and the saturation finish roll out: `model.rollouts`, or drafted when the context drafts. */
  readonly rollouts: RolloutFunction;
  /** The drafting sessions behind `rollouts` (their stats go into the details); absent without drafting. */
  readonly drafting: readonly SpeculationSession[] | undefined;
  private readonly committed: SharedPrefixStream | undefined;

  constructor(
    readonly context: DecodeContext,
    readonly options: ResolvedDealOptions,
  ) {
    this.model = context.model;
    this.stops = new StopStrings(context.stopStrings);
    this.log = new StepLog(context);
    this.calls = callOptions(context);
    const { rollouts, sessions } = searchRollouts(context);
    this.rollouts = rollouts;
    this.drafting = sessions;
    this.committed = streamsText(context)
      ? new SharedPrefixStream(
          new TextStream(
            this.model,
            context.promptTokens,
            (text) => context.emit?.({ type: "text", text }),
            this.stops,
          ),
        )
      : undefined;
  }

  /** Prompt + the beam's tokens + `more`: what the model continues. */
  prefix(beam: Beam, more: readonly Token[] = []): Token[] {
    return [...this.context.promptTokens, ...beam.tokens, ...more];
  }

  textOf(tokens: readonly Token[]): string {
    return this.model.detokenize(tokens, { context: this.context.promptTokens.slice(-8) });
  }

  /** The reward's view of a continuation: cut at a stop string (then finished), like the final text. */
  inputOf(tokens: readonly Token[], finished: boolean): RewardInput {
    const text = this.textOf(tokens);
    const cut = this.stops.firstIn(text);
    return cut < 0
      ? { prompt: this.context.prompt, text, tokens, finished }
      : { prompt: this.context.prompt, text: text.slice(0, cut), tokens, finished: true };
  }

  /**
   * How many nats below the top token a lexical candidate may cost: `lexicalSlack` at first,
   * growing by λ over the first `patience` share of the token budget. Placing a wanted word as
   * soon as its reward outweighs its cost puts it in the first sentence, however awkward; waiting
   * lets the search find a place where the word fits ("a big tree"), and the growing allowance
   * still places it before the text runs out.
   */
  allowance(beam: Beam): number {
    const o = this.options;
    return o.patience <= 0
      ? Number.POSITIVE_INFINITY
      : o.lexicalSlack + (o.lambda * beam.tokens.length) / (o.patience * this.context.maxTokens);
  }

  /**
   * The logprob floor at this beam's length: `floorStart` at first, relaxing linearly to `floor`
   * over the first `patience` share of the token budget (at once with patience 0) — keywords that
   * fit well are placed early, and only what has found no good place by then pays more.
   */
  floorAt(beam: Beam): number {
    const { floor, floorStart, floorCurve, patience } = this.options;
    // No floor (−∞) stays none: interpolating toward −∞ would give NaN at the start.
    if (patience <= 0 || floorStart <= floor || !Number.isFinite(floor)) return floor;
    const progress = Math.min(1, beam.tokens.length / (patience * this.context.maxTokens)) ** floorCurve;
    return floorStart + (floor - floorStart) * progress;
  }

  /** The floor lexical proposals must clear (none when `lexicalFloor` is off). */
  lexicalFloorAt(beam: Beam): number {
    return this.options.lexicalFloor ? this.floorAt(beam) : Number.NEGATIVE_INFINITY;
  }

  /** Streams the text every remaining beam and finished output shares. */
  stream(beams: readonly Beam[]): void {
    this.committed?.update([...beams, ...this.finished].map((beam) => beam.tokens));
  }
}
