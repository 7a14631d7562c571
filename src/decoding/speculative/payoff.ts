import { TillerError } from "../../errors.js";

export interface PayoffOptions {
  /** Estimated speed-up over plain decoding a drafter must reach to stay on. Defaults to 1.0. */
  minSpeedup?: number;
  /** Plain/drafted round pairs a drafter is first judged on. Defaults to 6. */
  pairs?: number;
  /**
   * Drafted rounds a drafter that paid runs before it is judged again (on `pairs` / 3 pairs);
   * doubled each time it pays again (up to 16×), back to this when it does not. Defaults to 64.
   */
  trustRounds?: number;
  /** Rounds a switched-off drafter waits before it is judged again (doubling each time). Defaults to 32. */
  retryAfter?: number;
}

/** One round as the meter sees it. */
export interface RoundCost {
  drafted: boolean;
  /** Wall time of the round: drafting and the target's verification. */
  ms: number;
  /** Tokens the round added per sequence (plain: 1). */
  tokens: number;
  /** The round also evaluated new prefixes (a call's first round): its time says nothing. */
  first: boolean;
}

/** Tokens a drafted round must add on average (a plain round adds 1) for the drafter to stay on. */
const MIN_GAIN = 1.05;
/** How many times `trustRounds` a drafter that keeps paying runs between judgments, at most. */
const MAX_TRUST = 16;
/** An estimate this close below `minSpeedup` (as a share of it) is judged again on more pairs before the drafter switches off. */
const CLOSE = 0.75;

type Phase =
  | { kind: "judging"; pairs: number }
  | { kind: "on"; left: number }
  | { kind: "off"; left: number };

/**
 * Decides whether drafting pays. Speculation trades one target call per token for one call per
 * accepted run, but each call verifies more tokens and drafting costs time too: whether that wins
 * depends on the hardware, the models and the text, so it is measured. A drafter is judged on
 * alternating plain and drafted rounds: side by side in time, so a change of load on a shared
 * machine hits both alike (a baseline measured once goes stale within seconds there). The
 * estimated speed-up is (tokens / ms of the drafted rounds) / (tokens / ms of the plain ones), each
 * round's time clipped at three times its group's median (bursts). Below `minSpeedup` (or when
 * its drafts add under 1.05 tokens a round, so it cannot win however cheap it is) the drafter
 * switches off (plain rounds only; an estimate within 25% below `minSpeedup` is first judged
 * again on twice `pairs` pairs, the earlier ones included) and is judged again after `retryAfter`
 * rounds, a wait that doubles each time it still does not pay (text that repeats its prompt may
 * start paying later);
 * otherwise it drafts for `trustRounds` rounds, then is judged again on fewer pairs — after a
 * wait that doubles each time it pays again (each judgment costs plain rounds, which a drafter
 * that keeps paying only loses time on; up to 16 × `trustRounds`).
 */
export class PayoffMeter {
  private readonly minSpeedup: number;
  private readonly pairs: number;
  private readonly trustRounds: number;
  /** Drafted rounds the next "on" phase lasts (grows while the drafter keeps paying). */
  private trust: number;
  private retryAfter: number;
  private phase: Phase;
  private plain: RoundCost[] = [];
  private drafted: RoundCost[] = [];
  /** Times the drafter was switched off. */
  switchOffs = 0;
  /** The last judgment's estimated speed-up. */
  speedup: number | undefined;

  constructor(options: PayoffOptions = {}) {
    this.minSpeedup = options.minSpeedup ?? 1.0;
    this.pairs = Math.max(1, Math.floor(options.pairs ?? 6));
    this.trustRounds = Math.max(1, Math.floor(options.trustRounds ?? 64));
    this.trust = this.trustRounds;
    this.retryAfter = Math.max(1, Math.floor(options.retryAfter ?? 32));
    if (!(this.minSpeedup > 0))
      throw new TillerError(`minSpeedup must be > 0, got ${options.minSpeedup}`, "bad-strategy-param");
    this.phase = { kind: "judging", pairs: this.pairs };
  }

  /** Whether the next round drafts. */
  shouldDraft(): boolean {
    if (this.phase.kind === "judging") return this.drafted.length < this.plain.length;
    return this.phase.kind === "on";
  }

  /** Whether the drafter is switched off now. */
  get off(): boolean {
    return this.phase.kind === "off";
  }

  record(round: RoundCost): void {
    const phase = this.phase;
    if (phase.kind === "on") {
      if (--phase.left <= 0) this.judgeAgain(Math.ceil(this.pairs / 3));
      return;
    }
    if (phase.kind === "off") {
      if (--phase.left <= 0) this.judgeAgain(this.pairs);
      return;
    }
    if (round.first || round.tokens <= 0) return;
    (round.drafted ? this.drafted : this.plain).push(round);
    if (this.drafted.length < phase.pairs || this.plain.length < phase.pairs) return;
    this.speedup = rate(this.drafted) / rate(this.plain);
    // A drafter whose drafts add next to nothing cannot pay, whatever the clock says.
    const gain = this.drafted.reduce((sum, r) => sum + r.tokens, 0) / this.drafted.length;
    if (this.speedup >= this.minSpeedup && gain >= MIN_GAIN) {
      this.phase = { kind: "on", left: this.trust };
      this.trust = Math.min(2 * this.trust, MAX_TRUST * this.trustRounds);
    } else if (gain >= MIN_GAIN && this.speedup >= CLOSE * this.minSpeedup && phase.pairs < 2 * this.pairs)
      // A close verdict on a few pairs says little on a loaded machine (one preempted round moves
      // it by tens of percent): judge on more pairs, the ones measured so far included.
      phase.pairs = 2 * this.pairs;
    else {
      this.phase = { kind: "off", left: this.retryAfter };
      this.retryAfter *= 2;
      this.trust = this.trustRounds;
      this.switchOffs++;
    }
  }

  private judgeAgain(pairs: number): void {
    this.phase = { kind: "judging", pairs };
    this.plain = [];
    this.drafted = [];
  }
}

/** Tokens per ms over some rounds, each round's time clipped at three times their median. */
function rate(rounds: readonly RoundCost[]): number {
  const sorted = rounds.map((r) => r.ms).sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  let ms = 0;
  let tokens = 0;
  for (const round of rounds) {
    ms += Math.min(round.ms, 3 * median);
    tokens += round.tokens;
  }
  return tokens / ms;
}
