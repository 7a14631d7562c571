import type { Token } from "../../lm/types.js";
import { type CandidateVeto, vetoPenalties } from "../veto.js";
import { bridgesToKeyword } from "./bridge.js";
import { type Beam, type Candidate, type DealRun, extend } from "./state.js";

/**
 * Commit: each kept candidate becomes a beam, followed by some of its lookahead (speed-up 2) —
 * the whole lookahead when no plain candidate's reward differs (no signal to search on), else
 * `commitTokens` of it; and the whole lookahead when it ends where a missing keyword fits; never
 * past the token budget. Beams that reach a stop token or a stop string are finished; the rest
 * are returned to search on.
 */
export async function commit(
  run: DealRun,
  candidates: readonly Candidate[],
  kept: readonly Candidate[],
): Promise<Beam[]> {
  const { options, model } = run;
  // Lexical candidates are left out of the tie test: they lost to a plain token this step, and
  // the plain tokens' lookaheads all judged the same, so the lookahead is plain greedy text.
  const plain = candidates.filter((c) => !c.lexical);
  const tied = plain.length > 0 && plain.every((c) => Math.abs(c.reward - plain[0].reward) < 1e-9);
  const next: Beam[] = [];
  for (const c of kept) {
    const lookahead = c.rollout?.tokens ?? [];
    // A lookahead that ends where a keyword fits is committed whole: the keyword is proposed there next.
    let take = !options.commit
      ? 0
      : (tied && !c.lexical) || bridgesToKeyword(run, c) || placesKeyword(run, c)
        ? lookahead.length
        : Math.min(options.commitTokens, lookahead.length);
    // Lookahead tokens were never offered to the vetoes; commit only up to the first one a veto
    // objects to (it becomes a candidate again next step, where the veto applies).
    if (take > 0 && options.vetoes?.length)
      take = await vetoFreeLength(options.vetoes, run.prefix(c.beam, c.tokens), lookahead.slice(0, take));
    // The token budget is hard (a safety net: lexical proposals and lookaheads already fit in it).
    const room = run.context.maxTokens - c.beam.tokens.length;
    const own = Math.min(c.tokens.length, room);
    take = Math.min(take, room - own);
    const tokens = [...c.tokens.slice(0, own), ...lookahead.slice(0, take)];
    const logprobs = [...c.logprobs.slice(0, own), ...(c.rollout?.logprobs ?? []).slice(0, take)];
    // The model's logprobs stay exact; a soft-veto penalty only lowers the search score.
    const beam = extend(c.beam, tokens, logprobs);
    beam.logprob -= c.penalty;
    // The whole lookahead committed: the distribution bridging read after it comes next.
    if (options.reuseBridge && c.after && own === c.tokens.length && take === lookahead.length && take > 0)
      beam.next = c.after;
    beam.score = c.score;
    beam.reward = c.reward;
    if (c.lexical) run.lexicalCommits++;
    if (model.isStopToken(beam.tokens[beam.tokens.length - 1])) beam.done = "end-of-generation";
    else if (run.stops.endsIn(model, run.context.promptTokens, beam.tokens, tokens.length))
      beam.done = "stop-string";
    if (beam.done) run.finished.push(beam);
    else next.push(beam);
  }
  return next;
}

/**
 * Whether the candidate's lookahead places a word the reward still wants after the candidate
 * (speed-up 5, `commitPlacing`): that greedy text is what won the step, so it is committed whole
 * instead of being searched again token by token.
 */
function placesKeyword(run: DealRun, c: Candidate): boolean {
  const { commitPlacing, reward } = run.options;
  if (!commitPlacing || !reward.wantedWords || !c.rollout?.tokens.length) return false;
  const before = [...c.beam.tokens, ...c.tokens];
  const wantedBefore = reward.wantedWords(run.inputOf(before, false)).length;
  return wantedBefore > reward.wantedWords(run.inputOf([...before, ...c.rollout.tokens], false)).length;
}

/** How many of `tokens`, appended one by one after `context`, pass every veto with no penalty. */
async function vetoFreeLength(
  vetoes: readonly CandidateVeto[],
  context: readonly Token[],
  tokens: readonly Token[],
): Promise<number> {
  const prefix = [...context];
  for (let i = 0; i < tokens.length; i++) {
    const [penalty] = await vetoPenalties(vetoes, prefix, [tokens[i]]);
    if (penalty > 0) return i;
    prefix.push(tokens[i]);
  }
  return tokens.length;
}
