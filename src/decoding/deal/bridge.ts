import type { NextTokenDistribution, ScoreRequest, Token } from "../../lm/types.js";
import { spellingsOf } from "./lexical.js";
import { scoreWithout } from "./score.js";
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
  const { model } = run;
  // Bridging serves the reward: with λ = 0 the search is plain decoding.
  if (!bridging(run)) return;
  const open: OpenBridge[] = [];
  const reaches = withinReach(run, candidates);
  for (const c of candidates) {
    // Already bridged (a drafted lookahead bridged on the draft model, see draftedLookahead.ts,
    // or a verified one in its rounds, see verifiedLookahead.ts).
    if (c.fit !== undefined) continue;
    // A candidate that cannot be kept whatever its fit is not bridged: its fit stands at the bottom.
    if (!reaches(c)) {
      c.fit = NO_FIT;
      continue;
    }
    const { fit, question } = await bridgeQuestion(run, c);
    c.fit = fit;
    if (question) open.push(question);
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
    const request = keywordToScore(run, o, first[i]);
    if (request) full.push({ candidate: o.candidate, request });
  });
  if (full.length === 0) return;
  const scored = await model.scoreContinuations(
    full.map((f) => f.request),
    run.calls,
  );
  full.forEach(({ candidate, request }, i) => {
    bridged(run, candidate, request, scored[i].logprobs);
  });
}

/**
 * Bounds (the candidates judged, see `judge`): a fit lies in [NO_FIT, 0], so a candidate whose
 * score with the best fit stays below the b-th best score any candidates can reach with the worst
 * fit is not kept, whatever bridging would read. Returns whether a candidate may still be kept.
 */
function withinReach(run: DealRun, candidates: readonly Candidate[]): (c: Candidate) => boolean {
  const { bridge, beams } = run.options;
  const base = new Map(candidates.map((c) => [c, scoreWithout(run, c)]));
  const lowest = candidates.map((c) => (base.get(c) ?? 0) + bridge * (c.fit ?? NO_FIT)).sort((a, b) => b - a);
  const bar = lowest[Math.min(beams, lowest.length) - 1] ?? Number.NEGATIVE_INFINITY;
  // A margin for float rounding: a candidate that ties the bar is bridged.
  return (c) => (base.get(c) ?? 0) + bridge * (c.fit ?? 0) >= bar - 1e-6;
}

/** Whether the search bridges (a weight, a reward to serve, and words it wants). */
export function bridging(run: DealRun): boolean {
  const { options } = run;
  return options.bridge > 0 && options.lambda > 0 && options.reward.wantedWords !== undefined;
}

/** A candidate whose fit is read after its lookahead: the keyword spellings that may follow it there. */
interface OpenBridge {
  candidate: Candidate;
  prefix: Token[];
  spellings: Token[][];
}

/**
 * A candidate's fit where nothing needs to be read (0: no keyword missing; NO_FIT: a keyword is
 * missing and cannot follow), and the question to read otherwise.
 */
async function bridgeQuestion(run: DealRun, c: Candidate): Promise<{ fit: number; question?: OpenBridge }> {
  const { options, model } = run;
  const after = [...c.tokens, ...(c.rollout?.tokens ?? [])];
  const words = options.reward.wantedWords?.(run.inputOf([...c.beam.tokens, ...after], false)) ?? [];
  // Nothing left to bridge to is the best fit; a text that ends with keywords missing, the worst.
  const fit = words.length === 0 ? 0 : NO_FIT;
  // A lexical candidate is placing its keyword now; its lookahead need not bridge.
  if (words.length === 0 || c.lexical || !c.rollout || model.isStopToken(after[after.length - 1]))
    return { fit };
  const prefix = run.prefix(c.beam, after);
  const spellings: Token[][] = [];
  for (const word of words) spellings.push(await spellingAfter(run, word, [...c.beam.tokens, ...after]));
  const fitting = spellings.filter((s) => prefix.length + s.length + 1 < model.contextSize);
  return fitting.length > 0 ? { fit, question: { candidate: c, prefix, spellings: fitting } } : { fit };
}

/**
 * The keyword whose first token is likeliest after the lookahead: its full score is asked for
 * (returned), or — screened — its first token's logprob is the candidate's fit.
 */
function keywordToScore(run: DealRun, o: OpenBridge, first: readonly number[]): ScoreRequest | undefined {
  const b = first.indexOf(Math.max(...first));
  const best = o.spellings[b];
  // Screen: a keyword whose first token misses the floor cannot be placed there whatever its
  // other tokens cost (its fit is at most the first token's logprob), so that logprob stands in.
  if (run.options.bridgeScreen && (best.length === 1 || first[b] < run.floorAt(o.candidate.beam))) {
    o.candidate.fit = Math.max(NO_FIT, first[b]);
    return undefined;
  }
  return { prefix: o.prefix, continuation: best };
}

/** A candidate's fit from its keyword's logprobs after the lookahead (kept for `reuseBridge`). */
function bridged(
  run: DealRun,
  candidate: Candidate,
  request: ScoreRequest,
  logprobs: readonly number[],
): void {
  candidate.fit = Math.max(NO_FIT, Math.min(...logprobs));
  if (run.options.reuseBridge)
    run.bridged.set(bridgedKey(request.prefix, request.continuation), [...logprobs]);
}

/**
 * Bridging of one candidate whose lookahead is complete with the distribution after it, asked
 * while other lookaheads still run (verifiedLookahead.ts): its fit is set, or the keyword to
 * score is returned with what to do with its logprobs. Undefined (fit left unset, for `bridge`)
 * where a backend's capped distribution misses a spelling's first token.
 */
export async function bridgeEarly(
  run: DealRun,
  c: Candidate,
): Promise<{ request: ScoreRequest; settle: (logprobs: readonly number[]) => void } | undefined> {
  const next = c.after;
  if (!next) return undefined;
  const { fit, question } = await bridgeQuestion(run, c);
  if (!question) {
    c.fit = fit;
    return undefined;
  }
  const first = question.spellings.map(
    (s) =>
      next.find((e) => e.token === s[0])?.logprob ??
      (next.length >= run.model.vocabularySize ? Number.NEGATIVE_INFINITY : undefined),
  );
  if (first.some((lp) => lp === undefined)) return undefined;
  c.fit = fit;
  const request = keywordToScore(run, question, first as number[]);
  return request && { request, settle: (logprobs) => bridged(run, c, request, logprobs) };
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
