import { TillerError } from "../../errors.js";
import type { Reward } from "../../rewards/types.js";
import type { CandidateVeto } from "../veto.js";
import { type DraftedLookaheadOptions, LOOKAHEAD_SOURCES } from "./draftedLookahead.js";

/**
 * DeAL (Huang et al., 2024): decoding as heuristic-guided search. Each step expands the top-k
 * next tokens of every beam, extends each candidate by an l-token greedy lookahead, and scores
 *   score(candidate) = log P(beam + candidate | prompt) + λ · h(beam + candidate + lookahead)
 * keeping the b best. The options below the line are tiller's speed-ups; each can be switched
 * off, and `PAPER_FAITHFUL` (`deal:paper` on the command line) turns them all off so the original
 * can be measured beside them.
 */
export interface DealOptions extends DraftedLookaheadOptions {
  /** The heuristic h the search steers by. */
  reward: Reward;
  /** Candidates expanded per beam (k). Defaults to 4. */
  k: number;
  /** Greedy lookahead tokens per candidate (l). Defaults to 3. */
  lookahead: number;
  /** Weight of the reward against the model's log-probability (λ). Defaults to 50. */
  lambda: number;
  /** Beams kept per step (b). Defaults to 1. */
  beams: number;
  /** Hooks that drop or demote candidate tokens (e.g. Prov-Decode). Defaults to none. */
  vetoes?: readonly CandidateVeto[];
  // ---- speed-ups and improvements (all on by default) ----
  /** (1) Send all rollouts of a step to the backend as one batched call. Defaults to true. */
  batch?: boolean;
  /**
   * (2) Commit more than one token per step. When every candidate scores the same reward the
   * search has no signal and would re-derive the greedy lookahead token by token, so the winner's
   * whole lookahead is committed; otherwise `commitTokens` tokens of it follow the candidate.
   * `false` commits the candidate only (the paper). Defaults to true.
   */
  commit?: boolean;
  /** Lookahead tokens committed after the candidate when rewards differ. Defaults to 2. */
  commitTokens?: number;
  /**
   * (8) Nats below the top token a plain candidate may cost to be looked ahead of: fewer
   * candidates, fewer sequences in every batched call. Infinity keeps all k. Defaults to 2.
   */
  candidateSlack?: number;
  /** (3) When the reward is saturated (can no longer change), finish with plain greedy decoding. Defaults to true. */
  saturation?: boolean;
  /**
   * (4) Lexical lookahead: also expand the first token of every word the reward still wants
   * (e.g. a missing keyword), so a keyword outside the top-k can still be reached. Defaults to true.
   */
  lexical?: boolean;
  /** Nats below the top token a lexical candidate may cost at the start (see `patience`). Defaults to 4. */
  lexicalSlack?: number;
  /**
   * Share of the token budget over which the allowed cost of a lexical candidate grows by λ, and
   * the floor relaxes from `floorStart` to `floor`. 0 tries every lexical candidate at every step
   * under the final floor. Defaults to 0.75.
   */
  patience?: number;
  /**
   * Logprob floor of committed tokens: a candidate token (or any token of a keyword) the model
   * gives less than e^floor is not proposed, so the search cannot buy coverage with word salad.
   * The beam's top token is always allowed (a floor never blocks greedy text), and so is the
   * greedy lookahead. The floor starts at `floorStart` and relaxes to this over the first
   * `patience` share of the budget. `-Infinity` switches it off (`deal:raw`). Defaults to -6.5.
   */
  floor?: number;
  /** The floor at the start of the text (see `floor`). Defaults to -4. */
  floorStart?: number;
  /**
   * Shape of the floor's relaxation: the share of the patience span gone by is raised to this
   * power, so above 1 the floor stays near `floorStart` longer and relaxes late (a keyword waits
   * longer for a place where it fits). Defaults to 1 (linear).
   */
  floorCurve?: number;
  /**
   * Apply the floor to lexical proposals too: a keyword is proposed only where each of its
   * tokens clears the floor. Defaults to true.
   */
  lexicalFloor?: boolean;
  /**
   * Weight of bridging: each candidate is also judged by how well a missing keyword fits right
   * after its lookahead (the keyword's worst-token logprob there), so the search steers toward
   * text where the keyword is natural ("went to the" before "shop"). 0 switches it off.
   * Defaults to 1.
   */
  bridge?: number;
  /**
   * (5) Commit the winner's whole lookahead when it places a word the reward still wants: the
   * step was won by that greedy text, so it is not searched again token by token. Defaults to true.
   */
  commitPlacing?: boolean;
  /**
   * (6) Bridging scores a keyword in full only where its first token clears the floor; elsewhere
   * the first token's logprob (an upper bound of the keyword's worst token) stands for its fit,
   * which saves a batched call on most steps. Defaults to true.
   */
  bridgeScreen?: boolean;
  /**
   * (7) When a winner's whole lookahead is committed, the next-token distribution bridging read
   * after it is the next step's expansion; it is reused instead of asked again. Defaults to true.
   */
  reuseBridge?: boolean;
  /**
   * (9) With drafting (`context.drafting`), each step's lookaheads are drafted whole and ONE target
   * call verifies them all and reads the distribution after each (what bridging and the next
   * expansion read): a lookahead the target agrees with costs one call instead of l + 1. Lossless
   * (the target's greedy text; a draft that falls short is completed by the target's rollouts).
   * The rounds also carry what would cost calls of their own: a keyword candidate's tokens after
   * its first (spelled out and judged in the first round), the distribution after a lookahead that
   * ended on the target's own token, and the bridging keyword of a lookahead done while others
   * still run. `false` drafts them round by round through the speculative rollouts. Defaults to true.
   */
  verifyAhead?: boolean;
}

// k, l and candidateSlack (session 9, bench/deal-sweep.ts, dev set, stories model, 3 task orders,
// quality identical in each; CPU time alternated with greedy):
// k=5, l=4, slack 3 met every target but the worst token by a hair (hard 0.975, mean min token
// −4.94, CPU 4.2× greedy); k=4, l=3, slack 2 keeps margin on all of them (0.95, −4.72, 3.5×).
export const DEAL_DEFAULTS = {
  // Four plain candidates: with the candidate slack, the fifth is rarely within reach, and each
  // one costs a lookahead per step (k=5 with l=3, slack 2: same quality, 10% more CPU).
  k: 4,
  // With the floor and bridging, a shorter lookahead tests more places for a keyword per token
  // (dev set, stories model: l = 3 → mean worst token −4.71 … −4.78, l = 4 → −4.94; hard coverage
  // 0.95 / 0.975; l = 5 → 0.875–0.90; l = 8 → 0.825).
  lookahead: 3,
  // A keyword is worth 1/n of the keywords reward; inserting one costs the model several nats,
  // so λ must exceed n × that cost for the search to place it. Measured on the dev set with the
  // stories model: λ = 10 reaches 0.3 soft coverage, 30 → 0.8, 50 → 0.99 (fluency −0.27 nats/token).
  lambda: 50,
  beams: 1,
  batch: true,
  commit: true,
  commitTokens: 2,
  // Dev set, stories model: 3 → 15% less CPU than all k, same coverage and worst token (0.975, −4.94);
  // with l = 3, 2 → 10% less CPU than 3, same coverage (0.95), worst token −4.71 vs −4.78.
  candidateSlack: 2,
  saturation: true,
  lexical: true,
  lexicalSlack: 4,
  // A keyword waits longer for a place where it fits: the floor reaches its final value after
  // 3/4 of the budget (l = 4: 0.5 → mean worst token −4.98, 0.75 → −4.94, same coverage; l = 3:
  // 0.6 → −4.88, 0.75 → −4.72).
  patience: 0.75,
  // The floor ends word salad (0.675 → 0 of outputs on the dev set; `deal:raw` turns it off).
  floor: -6.5,
  floorStart: -4,
  floorCurve: 1,
  lexicalFloor: true,
  bridge: 1,
  commitPlacing: true,
  bridgeScreen: true,
  reuseBridge: true,
  verifyAhead: true,
} as const;

/**
 * `deal:raw`: DeAL before the floor — no floor, no bridging, the k, lookahead and patience measured
 * for them. It forces keywords in (hard coverage 0.975) at the price of word salad in 2 of 3 outputs.
 */
export const DEAL_RAW = {
  floor: Number.NEGATIVE_INFINITY,
  bridge: 0,
  k: 5,
  lookahead: 8,
  patience: 0.5,
  candidateSlack: Number.POSITIVE_INFINITY,
} as const;

/** The options that reproduce the paper's algorithm (no tiller speed-ups). */
export const PAPER_FAITHFUL = {
  batch: false,
  commit: false,
  saturation: false,
  lexical: false,
  commitPlacing: false,
  bridgeScreen: false,
  reuseBridge: false,
  verifyAhead: false,
} as const;

/** Every option set: the caller's, defaults for the rest. */
export type ResolvedDealOptions = Required<Omit<DealOptions, "vetoes" | "lookaheadFrom">> &
  Pick<DealOptions, "vetoes" | "lookaheadFrom">;

export function resolveDealOptions(options: DealOptions): ResolvedDealOptions {
  const source = options.lookaheadFrom;
  if (source !== undefined && !(LOOKAHEAD_SOURCES as readonly string[]).includes(source))
    throw new TillerError(
      `deal: lookaheadFrom must be one of ${LOOKAHEAD_SOURCES.join(" | ")}, got ${JSON.stringify(source)}`,
      "bad-strategy-param",
    );
  const defined = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
  return { ...DEAL_DEFAULTS, ...(defined as DealOptions) };
}
