import type { LanguageModel, Token } from "../../lm/types.js";
import { scoreAll } from "../../rewards/types.js";
import { checkSearchWidth } from "../limits.js";
import { draftingStats } from "../speculative/searchDrafting.js";
import type { DecodeOutput } from "../strategy.js";
import type { DecodeContext } from "../types.js";
import { bridge } from "./bridge.js";
import { commit } from "./commit.js";
import { settleDraftedLookaheads } from "./draftedLookahead.js";
import { applyVetoes, expand, topProposals } from "./expand.js";
import { lexicalProposals, spellOut, viable, wantedWords } from "./lexical.js";
import { lookahead, rolls, verifyingSession } from "./lookahead.js";
import type { ResolvedDealOptions } from "./options.js";
import { finishGreedily, saturated } from "./saturation.js";
import { judge, recordStep, score } from "./score.js";
import { type Beam, type Candidate, DealRun, startBeam } from "./state.js";

/**
 * The DeAL search loop, one step at a time: expand the top-k of every beam (plus lexical
 * proposals for words the reward still wants), drop what the vetoes forbid, look l tokens ahead
 * of every candidate, score log P + λ·h, keep the b best and commit them; once the reward is
 * saturated, finish greedily.
 */
export async function searchDeal(
  context: DecodeContext,
  options: ResolvedDealOptions,
): Promise<DecodeOutput> {
  checkSearchWidth("deal", "k", options.k, context.model);
  const run = new DealRun(context, options);
  let beams: Beam[] = [startBeam()];
  while (beams.length > 0) {
    context.signal?.throwIfAborted();
    const live = retireAtLimits(run, beams);
    if (live.length === 0) break;
    if (saturated(run, live[0])) {
      await finishGreedily(run, live[0]);
      beams = [];
      break;
    }

    const wanted = wantedWords(run, live);
    const distributions = await expand(
      run,
      live,
      wanted.some((words) => words.length > 0),
    );
    const plain = distributions.map((distribution, b) => topProposals(run, live[b], distribution));
    const lexical = await lexicalProposals(run, live, distributions, wanted, plain);
    let candidates: Candidate[] = [];
    for (let b = 0; b < live.length; b++)
      candidates.push(...(await applyVetoes(run, live[b], [...plain[b], ...lexical[b]])));
    const topLogprob = (beam: Beam) => distributions[live.indexOf(beam)][0].logprob;
    // Verified lookaheads score a keyword's tail in their first round (no vetoes to offer it to);
    // with l = 0 there is no round, so the tail is spelled out here.
    const defer = (c: Candidate) =>
      verifyingSession(run) !== undefined &&
      !options.vetoes?.length &&
      options.lookahead > 0 &&
      rolls(run, c);
    candidates = await spellOut(run, candidates, topLogprob, defer);
    if (candidates.length === 0) {
      // Every continuation was vetoed (or cannot be placed): the beams end here.
      for (const beam of live) run.finished.push({ ...beam, done: "end-of-generation" });
      break;
    }

    const dropped = await lookahead(run, candidates, (c) => viable(run, c, topLogprob));
    candidates = candidates.filter((c) => !dropped.includes(c));
    // Only deferred keywords are dropped there; each beam keeps its top token (no vetoes then).
    await judge(run, candidates);
    await bridge(run, candidates);
    const ranked = score(run, candidates);
    const kept = ranked.slice(0, options.beams);
    await settleDraftedLookaheads(run, kept);
    recordStep(run, live, ranked, kept);
    beams = await commit(run, candidates, kept);
    run.stream(beams);
    run.step++;
    // With b beams finished there is nothing better left to find at equal width.
    if (run.finished.length >= options.beams) break;
  }
  for (const beam of beams) run.finished.push({ ...beam, done: beam.done ?? "max-tokens" });
  run.stream([]);
  return output(run, await chooseFinal(run));
}

/** Beams at the token budget or the context's end are finished; the rest stay live. */
function retireAtLimits(run: DealRun, beams: readonly Beam[]): Beam[] {
  const { context, model } = run;
  const live: Beam[] = [];
  for (const beam of beams) {
    if (beam.tokens.length >= context.maxTokens) run.finished.push({ ...beam, done: "max-tokens" });
    else if (context.promptTokens.length + beam.tokens.length + 1 >= model.contextSize)
      run.finished.push({ ...beam, done: "context-full" });
    else live.push(beam);
  }
  return live;
}

/** The finished beam with the best reward-weighted score on its complete text. */
async function chooseFinal(run: DealRun): Promise<Beam> {
  const { finished, options, model } = run;
  const finals = await scoreAll(
    options.reward,
    finished.map((beam) => run.inputOf(stripStop(model, beam.tokens), true)),
  );
  let best = finished[0];
  let bestScore = Number.NEGATIVE_INFINITY;
  finished.forEach((beam, i) => {
    const score = beam.logprob + options.lambda * finals[i];
    if (score > bestScore) {
      bestScore = score;
      best = beam;
    }
  });
  return best;
}

function stripStop(model: LanguageModel, tokens: readonly Token[]): Token[] {
  return tokens.length > 0 && model.isStopToken(tokens[tokens.length - 1])
    ? tokens.slice(0, -1)
    : [...tokens];
}

function output(run: DealRun, beam: Beam): DecodeOutput {
  const { reward, vetoes, ...settings } = run.options;
  return {
    tokens: beam.tokens,
    logprobs: beam.logprobs,
    stopReason: beam.done ?? "max-tokens",
    score: beam.score,
    trace: run.log.trace("deal", {
      ...settings,
      reward: reward.name,
      vetoes: (vetoes ?? []).map((v) => v.name),
    }),
    details: {
      strategy: "deal",
      steps: run.step,
      lexicalCommits: run.lexicalCommits,
      ...(run.saturatedAt === undefined ? {} : { saturatedAt: run.saturatedAt }),
      ...(run.drafting ? { drafting: draftingStats(run.drafting) } : {}),
    },
  };
}
