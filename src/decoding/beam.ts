import type { ModelCallOptions, StopReason, Token } from "../lm/types.js";
import { callOptions, cappedTopK } from "./calls.js";
import { checkSearchWidth } from "./limits.js";
import { StepLog } from "./steps.js";
import { StopStrings } from "./stopStrings.js";
import type { DecodeOutput, Strategy } from "./strategy.js";
import { SharedPrefixStream, TextStream } from "./textStream.js";
import { type DecodeContext, streamsText } from "./types.js";
import { type CandidateVeto, vetoPenalties } from "./veto.js";

export interface BeamOptions {
  /** Beams kept per step (b). Width 1 is greedy decoding. */
  width: number;
  /**
   * Length normalisation exponent α: hypotheses are ranked by logprob / length^α, so longer
   * outputs are not penalised merely for having more (negative) terms. Defaults to 1.
   */
  lengthPenalty?: number;
  /** Hooks that drop or demote candidate tokens. Defaults to none. */
  vetoes?: readonly CandidateVeto[];
}

interface Hypothesis {
  tokens: Token[];
  logprobs: number[];
  /** Sum of logprobs minus veto penalties: what the search ranks by. */
  sum: number;
  done: StopReason | undefined;
}

type Expansion = Hypothesis & { parent: number };

/**
 * Beam search: each step expands every live beam by its top-b tokens (one batched call for all
 * beams), keeps the b best by accumulated score, and finishes when every beam has stopped. The
 * output is the hypothesis with the best length-normalised score. It streams the tokens that
 * every hypothesis still in the running (live or finished) shares, as soon as they do.
 */
export function beamSearch(options: BeamOptions): Strategy {
  const width = Math.max(1, Math.floor(options.width));
  const alpha = options.lengthPenalty ?? 1;
  const normalised = (h: Hypothesis) => h.sum / Math.max(1, h.tokens.length) ** alpha;
  return {
    name: "beam",
    async decode(context: DecodeContext): Promise<DecodeOutput> {
      checkSearchWidth("beam", "width", width, context.model);
      const search = new BeamRun(context, width, options.vetoes);
      let beams: Hypothesis[] = [{ tokens: [], logprobs: [], sum: 0, done: undefined }];
      for (let step = 0; step < context.maxTokens && beams.length > 0; step++) {
        context.signal?.throwIfAborted();
        if (
          beams.some((beam) => context.promptTokens.length + beam.tokens.length >= context.model.contextSize)
        ) {
          search.finish(beams, "context-full");
          beams = [];
          break;
        }
        const expansions = await search.expand(beams);
        if (expansions.length === 0) {
          // Every continuation of every beam was vetoed: the beams end where they are.
          search.finish(beams, "end-of-generation");
          beams = [];
          break;
        }
        const kept = expansions.slice(0, width);
        search.record(step, beams, expansions, kept);
        beams = search.keep(kept);
        // Once b hypotheses have finished, live beams can only be compared to them at equal
        // width; stop like the usual implementations do.
        if (search.finished.length >= width) break;
      }
      search.finish(beams, "max-tokens");
      const best = [...search.finished].sort((a, b) => normalised(b) - normalised(a))[0];
      return {
        tokens: best.tokens,
        logprobs: best.logprobs,
        stopReason: best.done ?? "max-tokens",
        score: normalised(best),
        trace: search.log.trace("beam", { width, lengthPenalty: alpha }),
      };
    },
  };
}

/** One beam search: what its steps share, and the hypotheses that have finished. */
class BeamRun {
  readonly finished: Hypothesis[] = [];
  readonly log: StepLog;
  private readonly stops: StopStrings;
  private readonly calls: ModelCallOptions;
  private readonly topK: number;
  private readonly shared: SharedPrefixStream | undefined;

  constructor(
    private readonly context: DecodeContext,
    width: number,
    private readonly vetoes: readonly CandidateVeto[] | undefined,
  ) {
    this.stops = new StopStrings(context.stopStrings);
    this.log = new StepLog(context);
    this.calls = callOptions(context);
    // Ask for a few spare candidates so hard vetoes still leave b to choose from.
    const spare = vetoes?.length ? 4 : 1;
    this.topK = cappedTopK(
      context,
      width * spare,
      `beam: width ${width}${spare > 1 ? " (×4 spare for vetoes)" : ""}`,
    );
    this.shared = streamsText(context)
      ? new SharedPrefixStream(
          new TextStream(
            context.model,
            context.promptTokens,
            (text) => context.emit?.({ type: "text", text }),
            this.stops,
          ),
        )
      : undefined;
  }

  /** Every unvetoed one-token extension of every beam (one batched call), best first. */
  async expand(beams: readonly Hypothesis[]): Promise<Expansion[]> {
    const { model, promptTokens } = this.context;
    const prefixes = beams.map((beam) => [...promptTokens, ...beam.tokens]);
    const distributions = await model.nextTokenDistributions(prefixes, { topK: this.topK, ...this.calls });
    const expansions: Expansion[] = [];
    for (let b = 0; b < beams.length; b++) {
      const candidates = distributions[b];
      const penalties = await vetoPenalties(
        this.vetoes,
        prefixes[b],
        candidates.map((c) => c.token),
      );
      for (let i = 0; i < candidates.length; i++) {
        if (!Number.isFinite(penalties[i])) continue;
        const { token, logprob } = candidates[i];
        expansions.push({
          parent: b,
          tokens: [...beams[b].tokens, token],
          logprobs: [...beams[b].logprobs, logprob],
          sum: beams[b].sum + logprob - penalties[i],
          done: model.isStopToken(token) ? "end-of-generation" : undefined,
        });
      }
    }
    return expansions.sort((a, b) => b.sum - a.sum);
  }

  /** The kept hypotheses that go on (those that ended are finished); streams what all share. */
  keep(kept: readonly Hypothesis[]): Hypothesis[] {
    const { model, promptTokens, maxTokens } = this.context;
    const live: Hypothesis[] = [];
    for (const hypothesis of kept) {
      if (!hypothesis.done && this.stops.endsIn(model, promptTokens, hypothesis.tokens))
        hypothesis.done = "stop-string";
      if (!hypothesis.done && hypothesis.tokens.length >= maxTokens) hypothesis.done = "max-tokens";
      if (hypothesis.done) this.finished.push(hypothesis);
      else live.push(hypothesis);
    }
    this.shared?.update([...live, ...this.finished].map((h) => h.tokens));
    return live;
  }

  /** Ends `beams` where they are (a beam that already stopped keeps its reason). */
  finish(beams: readonly Hypothesis[], reason: StopReason): void {
    for (const beam of beams) this.finished.push({ ...beam, done: beam.done ?? reason });
  }

  record(
    step: number,
    beams: readonly Hypothesis[],
    expansions: readonly Expansion[],
    kept: readonly Expansion[],
  ): void {
    if (!this.log.active) return;
    const { model, promptTokens } = this.context;
    this.log.add({
      step,
      prefixLength: step,
      candidates: expansions.map((e) => ({
        token: e.tokens[e.tokens.length - 1],
        text: model.detokenize(e.tokens.slice(-1), {
          context: [...promptTokens, ...beams[e.parent].tokens].slice(-4),
        }),
        logprob: e.logprobs[e.logprobs.length - 1],
        score: e.sum,
        kept: kept.includes(e),
      })),
    });
  }
}
