import { TillerError } from "../../errors.js";

export interface PayoffOptions {
  /** Estimated speed-up over plain decoding a drafter must reach to stay on. Defaults to 1.0. */
  minSpeedup?: number;
  /** Drafted rounds the estimate is taken over (and measured before the first judgment). Defaults to 12. */
  window?: number;
  /** Consecutive judgments below `minSpeedup` that switch the drafter off. Defaults to 6. */
  strikes?: number;
  /** Plain rounds measured before drafting starts (the baseline). Defaults to 3. */
  plainRounds?: number;
  /** Drafted rounds between two plain rounds that keep the baseline current. Defaults to 16. */
  remeasureEvery?: number;
  /** Rounds a switched-off drafter waits before it is tried again (doubling each time). Defaults to 32. */
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

/** Plain-round samples kept for the baseline. */
const PLAIN_SAMPLES = 7;

/**
 * Decides whether drafting pays. Speculation trades one target call per token for one call per
 * accepted run, but each call verifies more tokens and drafting costs time too: whether that wins
 * depends on the hardware, the models and the text. So it is measured: plain rounds give the
 * baseline (ms per token), drafted rounds the speculative rate (tokens added / ms over the last
 * `window` rounds); the estimated speed-up is their product. Wall time on a shared machine comes
 * in bursts, so the baseline is a median, each round's time is clipped at twice the window's
 * median, and only `strikes` consecutive estimates below `minSpeedup` switch the drafter off.
 * Off, it decodes plain rounds; it is tried again after `retryAfter` rounds, and that wait doubles
 * each time it still does not pay (text that repeats its prompt may start paying later).
 */
export class PayoffMeter {
  private readonly minSpeedup: number;
  private readonly window: number;
  private readonly strikes: number;
  private readonly plainRounds: number;
  private readonly remeasureEvery: number;
  private retryAfter: number;
  private readonly plain: number[] = [];
  private drafted: { ms: number; tokens: number }[] = [];
  private below = 0;
  private sincePlain = 0;
  private offFor = 0;
  /** Times the drafter was switched off. */
  switchOffs = 0;

  constructor(options: PayoffOptions = {}) {
    this.minSpeedup = options.minSpeedup ?? 1.0;
    this.window = Math.max(1, Math.floor(options.window ?? 12));
    this.strikes = Math.max(1, Math.floor(options.strikes ?? 6));
    this.plainRounds = Math.max(1, Math.floor(options.plainRounds ?? 3));
    this.remeasureEvery = Math.max(1, Math.floor(options.remeasureEvery ?? 16));
    this.retryAfter = Math.max(1, Math.floor(options.retryAfter ?? 32));
    if (!(this.minSpeedup > 0))
      throw new TillerError(`minSpeedup must be > 0, got ${options.minSpeedup}`, "bad-strategy-param");
  }

  /** Whether the next round drafts. */
  shouldDraft(): boolean {
    if (this.offFor > 0) return false;
    if (this.plain.length < this.plainRounds) return false;
    return this.sincePlain < this.remeasureEvery;
  }

  /** Whether the drafter is switched off now. */
  get off(): boolean {
    return this.offFor > 0;
  }

  /** Estimated speed-up of drafting over plain decoding, once both were measured. */
  get speedup(): number | undefined {
    if (this.plain.length === 0 || this.drafted.length === 0) return undefined;
    const cap = 2 * median(this.drafted.map((round) => round.ms));
    let ms = 0;
    let tokens = 0;
    for (const round of this.drafted) {
      ms += Math.min(round.ms, cap);
      tokens += round.tokens;
    }
    return (tokens / ms) * median(this.plain);
  }

  record(round: RoundCost): void {
    if (!round.drafted) {
      if (this.offFor > 0 && --this.offFor === 0) this.restart();
      this.sincePlain = 0;
      if (round.first || round.tokens <= 0) return;
      this.plain.push(round.ms / round.tokens);
      if (this.plain.length > PLAIN_SAMPLES) this.plain.shift();
      return;
    }
    this.sincePlain++;
    if (round.first) return;
    this.drafted.push({ ms: round.ms, tokens: round.tokens });
    if (this.drafted.length > this.window) this.drafted.shift();
    if (this.drafted.length < this.window) return;
    const speedup = this.speedup;
    this.below = speedup !== undefined && speedup < this.minSpeedup ? this.below + 1 : 0;
    if (this.below >= this.strikes) {
      this.offFor = this.retryAfter;
      this.retryAfter *= 2;
      this.switchOffs++;
    }
  }

  /** A retried drafter is judged afresh. */
  private restart(): void {
    this.drafted = [];
    this.below = 0;
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
