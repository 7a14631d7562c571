import type { NextTokenDistribution, ScoreRequest, Token } from "../../lm/types.js";
import { spellingsOf } from "./lexical.js";
import { bridgedKey, type Candidate, type DealRun } from "./state.js";

/** Worst-token logprob a keyword is credited with when it cannot be scored (ends the scale). */
const NO_FIT = -12;

/** Distribution entries read after a lookahead to pick the keyword to score there. */
const BRIDGE_TOP_K = 1024;

/**
 * Bridging: how well each candidate prepares a place for a missing keyword. A keyword forced in
 * where it does not fit ("the sky was very s shop") is word salad; the search should instead
 * steer toward text after which the keyword is natural ("went to the" before "shop"). For every
 * plain candidate with a lookahead, the keyword still missing from beam + candidate + lookahead
 * whose first token is likeliest right after the lookahead is scored there in full (two batched
 * calls for all candidates, on cached sequences), and the candidate's `fit` is that keyword's
 * worst-token logprob (0 when none is missing). The score gains
 * `bridge · fit` (see `score`), so a candidate that brings a keyword within reach wins over a
 * slightly likelier one that does not; and a winner whose lookahead ends where a keyword fits has
 * its whole lookahead committed, so the keyword is proposed next step exactly there.
 */
export async function bridge(run: DealRun, candidates: readonly Candidate[]): Promise<void> {
  const { options, model } = run;
  // Bridging serves the reward: with λ = 0 the search is plain decoding.
  if (options.bridge <= 0 || options.lambda <= 0 || !options.reward.wantedWords) return;
  const open: { candidate: Candidate; prefix: Token[]; spellings: Token[][] }[] = [];
  for (const c of candidates) {
    // Already bridged (a drafted lookahead bridged on the draft model, see draftedLookahead.ts).
    if (c.fit !== undefined) continue;
    const after = [...c.tokens, ...(c.rollout?.tokens ?? [])];
    const words = options.reward.wantedWords(run.inputOf([...c.beam.tokens, ...after], false));
    // Nothing left to bridge to is the best fit; a text that ends with keywords missing, the worst.
    c.fit = words.length === 0 ? 0 : NO_FIT;
    // A lexical candidate is placing its keyword now; its lookahead need not bridge.
    if (words.length === 0 || c.lexical || !c.rollout || model.isStopToken(after[after.length - 1])) continue;
    const prefix = run.prefix(c.beam, after);
    const spellings: Token[][] = [];
    for (const word of words) spellings.push(await spellingAfter(run, word, [...c.beam.tokens, ...after]));
    const fitting = spellings.filter((s) => prefix.length + s.length + 1 < model.contextSize);
    if (fitting.length > 0) open.push({ candidate: c, prefix, spellings: fitting });
  }
  if (open.length === 0) return;
  // Cheap first pass: the distribution after each lookahead (its sequence is cached), to pick the
  // keyword whose first token is likeliest there; only that one is scored in full.
  // A drafted lookahead (`lookahead=draft`) came with the distribution after it already.
  const topK = Math.min(BRIDGE_TOP_K, model.capabilities.maxTopK);
  const asked = open.filter((o) => !o.candidate.after);
  const fetched =
    asked.length === 0
      ? []
      : await model.nextTokenDistributions(
          asked.map((o) => o.prefix),
          { topK, ...run.calls },
        );
  const next = open.map((o) => o.candidate.after ?? fetched[asked.indexOf(o)]);
  const first = await firstTokenLogprobs(run, open, next);
  const full: { candidate: Candidate; request: ScoreRequest }[] = [];
  open.forEach((o, i) => {
    o.candidate.after = next[i];
    const b = first[i].indexOf(Math.max(...first[i]));
    const best = o.spellings[b];
    // Screen: a keyword whose first token misses the floor cannot be placed there whatever its
    // other tokens cost (its fit is at most the first token's logprob), so that logprob stands in.
    if (options.bridgeScreen && (best.length === 1 || first[i][b] < run.floorAt(o.candidate.beam)))
      o.candidate.fit = Math.max(NO_FIT, first[i][b]);
    else full.push({ candidate: o.candidate, request: { prefix: o.prefix, continuation: best } });
  });
  if (full.length === 0) return;
  const scored = await model.scoreContinuations(
    full.map((f) => f.request),
    run.calls,
  );
  full.forEach(({ candidate, request }, i) => {
    candidate.fit = Math.max(NO_FIT, Math.min(...scored[i].logprobs));
    if (options.reuseBridge)
      run.bridged.set(bridgedKey(request.prefix, request.continuation), scored[i].logprobs);
  });
}

/**
 * The exact logprob of each spelling's first token after each lookahead: read from the
 * distribution, or — where a backend's capped slice does not reach it — scored (one call for
 * all), so a capped backend bridges exactly as a full one does.
 */
async function firstTokenLogprobs(
  run: DealRun,
  open: readonly { prefix: Token[]; spellings: Token[][] }[],
  next: readonly NextTokenDistribution[],
): Promise<number[][]> {
  const missing: { i: number; j: number }[] = [];
  const first = open.map((o, i) =>
    o.spellings.map((s, j) => {
      const entry = next[i].find((e) => e.token === s[0]);
      if (entry) return entry.logprob;
      // The whole vocabulary was returned: the token has no probability at all.
      if (next[i].length < run.model.vocabularySize) missing.push({ i, j });
      return Number.NEGATIVE_INFINITY;
    }),
  );
  if (missing.length > 0) {
    const scored = await run.model.scoreContinuations(
      missing.map(({ i, j }) => ({ prefix: open[i].prefix, continuation: [open[i].spellings[j][0]] })),
      run.calls,
    );
    missing.forEach(({ i, j }, m) => {
      first[i][j] = scored[m].logprobs[0];
    });
  }
  return first;
}

/** Whether the candidate's lookahead ends where a missing keyword fits (each token clears the floor). */
export function bridgesToKeyword(run: DealRun, c: Candidate): boolean {
  return run.options.bridge > 0 && c.fit !== undefined && c.fit < 0 && c.fit >= run.floorAt(c.beam);
}

/** The keyword's spelling for the place after `tokens`: capitalised after a full stop. */
async function spellingAfter(run: DealRun, word: string, tokens: readonly Token[]): Promise<Token[]> {
  const [lower, capital] = await spellingsOf(run.model, [word], run.spellings);
  const sentenceEnd = /[.!?]["']?\s*$/.test(run.textOf(tokens));
  return (sentenceEnd ? capital : lower) ?? lower;
}
