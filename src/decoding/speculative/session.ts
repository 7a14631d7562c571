import type { LanguageModel } from "../../lm/types.js";
import type { Drafter } from "./drafter.js";
import { DraftLength, type DraftTokens } from "./draftLength.js";
import { PayoffMeter, type PayoffOptions } from "./payoff.js";
import { emptySpeculativeStats, type SpeculativeStats } from "./stats.js";

export interface SpeculationOptions {
  /** Tokens drafted per round: N, or `auto` (grows on acceptance, shrinks on rejection). Defaults to "auto". */
  draftTokens?: DraftTokens;
  /** The most tokens `auto` drafts per round. Defaults to 16. */
  maxDraftTokens?: number;
  /** When a drafter that does not pay switches off; `false` keeps it on. Defaults to {} (see PayoffOptions). */
  payoff?: PayoffOptions | false;
}

/**
 * What speculation learns and counts across calls: the drafter, its draft length, whether it pays,
 * and the stats. A strategy makes one per decode; a search (DeAL's lookaheads, Best-of-N) passes
 * the same session to every `speculativeRollouts` call, so later calls start from what earlier
 * ones measured.
 */
export class SpeculationSession {
  readonly length: DraftLength;
  readonly meter: PayoffMeter | undefined;
  readonly stats: SpeculativeStats;
  private readonly prepared = new WeakMap<LanguageModel, Promise<void>>();

  constructor(
    readonly drafter: Drafter,
    options: SpeculationOptions = {},
  ) {
    this.length = new DraftLength(options.draftTokens ?? "auto", options.maxDraftTokens ?? 16);
    this.meter = options.payoff === false ? undefined : new PayoffMeter(options.payoff);
    this.stats = emptySpeculativeStats(drafter.name);
    this.stats.draftTokens = this.length.current;
  }

  /** Runs the drafter's `prepare` check once per target model. */
  prepare(target: LanguageModel): Promise<void> {
    let done = this.prepared.get(target);
    if (!done) {
      done = this.drafter.prepare?.(target) ?? Promise.resolve();
      this.prepared.set(target, done);
    }
    return done;
  }
}
