import { scoreAll } from "../../rewards/types.js";
import type { Beam, Candidate, DealRun } from "./state.js";

/** Judge: the heuristic h of each candidate with its lookahead (`reward`), before bridging. */
export async function judge(run: DealRun, candidates: readonly Candidate[]): Promise<void> {
  const { model, context, options } = run;
  const inputs = candidates.map((c) => {
    const tokens = [...c.beam.tokens, ...c.tokens, ...(c.rollout?.tokens ?? [])];
    const stopped = model.isStopToken(tokens[tokens.length - 1]);
    const ended = stopped || tokens.length >= context.maxTokens;
    return run.inputOf(stopped ? tokens.slice(0, -1) : tokens, ended);
  });
  const rewards = await scoreAll(options.reward, inputs);
  candidates.forEach((c, i) => {
    c.reward = rewards[i];
  });
}

/**
 * Score: with h judged (`judge`),
 *   score = log P(beam + candidate) − veto penalties + λ · h + bridge · fit
 * (fit: how well a missing keyword fits after the lookahead, see `bridge`).
 * Returns the candidates best first (ties keep their order).
 */
export function score(run: DealRun, candidates: readonly Candidate[]): Candidate[] {
  for (const c of candidates) c.score = scoreWithout(run, c) + run.options.bridge * (c.fit ?? 0);
  return [...candidates].sort((a, b) => b.score - a.score);
}

/** A judged candidate's score before bridging's term. */
export function scoreWithout(run: DealRun, c: Candidate): number {
  // A reward that returns NaN must not win (NaN compares false both ways in the sort).
  const h = Number.isNaN(c.reward) ? Number.NEGATIVE_INFINITY : c.reward;
  return c.beam.logprob + c.logprob - c.penalty + run.options.lambda * h;
}

/** Records the step: every candidate best first, with its lookahead, reward and score. */
export function recordStep(
  run: DealRun,
  live: readonly Beam[],
  ranked: readonly Candidate[],
  kept: readonly Candidate[],
): void {
  if (!run.log.active) return;
  const { model, context } = run;
  run.log.add({
    step: run.step,
    prefixLength: live[0].tokens.length,
    candidates: ranked.map((c) => ({
      token: c.tokens[0],
      text: model.detokenize(c.tokens, { context: [...context.promptTokens, ...c.beam.tokens].slice(-4) }),
      logprob: c.logprob,
      rollout: c.rollout ? model.detokenize(c.rollout.tokens, { context: c.tokens }) : "",
      lexical: c.lexical,
      reward: c.reward,
      score: c.score,
      kept: kept.includes(c),
      vetoed: c.penalty > 0,
    })),
    note: undefined,
  });
}
