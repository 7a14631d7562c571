import type { LanguageModel, NextTokenDistribution, Token } from "../../lm/types.js";
import { vetoPenalties } from "../veto.js";
import { type Beam, bridgedKey, type Candidate, type DealRun, type Proposal } from "./state.js";

/** For each live beam, the words the reward still wants in it (none without lexical lookahead). */
export function wantedWords(run: DealRun, live: readonly Beam[]): string[][] {
  const { lexical, reward } = run.options;
  if (!lexical || !reward.wantedWords) return live.map(() => []);
  return live.map((beam) => reward.wantedWords?.(run.inputOf(beam.tokens, false)) ?? []);
}

/**
 * Lexical proposals: every spelling of every wanted word that the beam's plain proposals do not
 * already hold and that fits in the context, with its first token's exact logprob — read from the
 * expanded distribution, or scored with `scoreContinuations` (in one call for all beams) where
 * the backend's slice does not reach it. Patience: early on only words whose first token costs
 * about as much as the top token are tried (the first token bounds the word's cost from below),
 * and none whose first token falls below the floor.
 */
export async function lexicalProposals(
  run: DealRun,
  live: readonly Beam[],
  distributions: readonly NextTokenDistribution[],
  wanted: readonly (readonly string[])[],
  plain: readonly (readonly Proposal[])[],
): Promise<Proposal[][]> {
  const spelled: { beam: number; tokens: Token[]; logprobs: number[] }[] = [];
  for (let b = 0; b < live.length; b++) {
    const have = new Set(plain[b].map((p) => p.tokens.join(" ")));
    for (const tokens of await spellingsOf(run.model, wanted[b], run.spellings)) {
      const key = tokens.join(" ");
      if (have.has(key)) continue;
      have.add(key);
      const length = run.context.promptTokens.length + live[b].tokens.length + tokens.length;
      if (length + 1 >= run.model.contextSize) continue;
      const first = distributions[b].find((entry) => entry.token === tokens[0]);
      spelled.push({ beam: b, tokens, logprobs: first ? [first.logprob] : [] });
    }
  }
  const unknown = spelled.filter((s) => s.logprobs.length === 0);
  if (unknown.length > 0) {
    const scored = await run.model.scoreContinuations(
      unknown.map((s) => ({ prefix: run.prefix(live[s.beam]), continuation: s.tokens })),
      run.calls,
    );
    unknown.forEach((s, i) => {
      s.logprobs = scored[i].logprobs;
    });
  }
  const proposals: Proposal[][] = live.map(() => []);
  for (const s of spelled) {
    const top = distributions[s.beam][0].logprob;
    if (s.logprobs[0] < top - run.allowance(live[s.beam]) || s.logprobs[0] < run.lexicalFloorAt(live[s.beam]))
      continue;
    proposals[s.beam].push({ tokens: s.tokens, logprobs: s.logprobs, lexical: true });
  }
  return proposals;
}

/**
 * Spells out the lexical candidates that passed the vetoes: the exact logprobs of a word's
 * tokens after its first (one `scoreContinuations` call for all), the vetoes offered each of
 * those tokens too, the patience test on the whole word's cost and the floor on each of its
 * tokens. Returns the candidates still viable. A candidate `defer` picks is left unscored and
 * unjudged: verified lookaheads score its tail in their first round and judge it then with
 * {@link viable} (one call fewer).
 */
export async function spellOut(
  run: DealRun,
  candidates: readonly Candidate[],
  topLogprob: (beam: Beam) => number,
  defer: (c: Candidate) => boolean = () => false,
): Promise<Candidate[]> {
  // A spelling bridging scored at this very place last step needs no new call.
  const bridged = run.bridged;
  run.bridged = new Map();
  for (const c of candidates) {
    const known =
      c.logprobs.length < c.tokens.length ? bridged.get(bridgedKey(run.prefix(c.beam), c.tokens)) : undefined;
    if (known) {
      c.logprobs.push(...known.slice(c.logprobs.length));
      c.logprob = c.logprobs.reduce((a, b) => a + b, 0);
    }
  }
  const deferred = new Set(candidates.filter((c) => c.logprobs.length < c.tokens.length && defer(c)));
  // A keyword past the token budget is dropped below whatever its tokens cost: none to score.
  const unscored = candidates.filter(
    (c) => c.logprobs.length < c.tokens.length && !deferred.has(c) && fits(run, c),
  );
  if (unscored.length > 0) {
    const scored = await run.model.scoreContinuations(
      unscored.map((c) => ({
        prefix: run.prefix(c.beam, c.tokens.slice(0, c.logprobs.length)),
        continuation: c.tokens.slice(c.logprobs.length),
      })),
      run.calls,
    );
    unscored.forEach((c, i) => {
      c.logprobs.push(...scored[i].logprobs);
      c.logprob = c.logprobs.reduce((a, b) => a + b, 0);
    });
  }
  for (const c of candidates)
    for (let j = 1; j < c.tokens.length; j++) {
      const [penalty] = await vetoPenalties(run.options.vetoes, run.prefix(c.beam, c.tokens.slice(0, j)), [
        c.tokens[j],
      ]);
      c.penalty += penalty;
    }
  return candidates.filter((c) => deferred.has(c) || viable(run, c, topLogprob));
}

/** Whether the candidate fits in the tokens left. */
function fits(run: DealRun, c: Candidate): boolean {
  return c.beam.tokens.length + c.tokens.length <= run.context.maxTokens;
}

/**
 * Whether a spelled-out candidate stays: no hard veto, a finite logprob, and for a keyword room
 * for it in the budget, the patience test on its whole cost and the floor on each of its tokens.
 */
export function viable(run: DealRun, c: Candidate, topLogprob: (beam: Beam) => number): boolean {
  return (
    Number.isFinite(c.penalty) &&
    Number.isFinite(c.logprob) &&
    (!c.lexical ||
      // A keyword that does not fit in the tokens left is not proposed: cut, it would be a fragment.
      (fits(run, c) &&
        c.logprob >= topLogprob(c.beam) - run.allowance(c.beam) &&
        c.logprobs.every((lp) => lp >= run.lexicalFloorAt(c.beam))))
  );
}

/**
 * Token spellings of wanted words as they appear in running text: mid-sentence, and capitalised
 * after a full stop. Each form is tokenized after a short lead-in whose tokens are then dropped,
 * because tokenizers spell a word differently at the start of a text (e.g. a SentencePiece
 * dummy prefix) than after a space. Cached per word.
 */
export async function spellingsOf(
  model: LanguageModel,
  words: readonly string[],
  cache: Map<string, Token[][]>,
): Promise<Token[][]> {
  const out: Token[][] = [];
  for (const word of words) {
    let spellings = cache.get(word);
    if (!spellings) {
      spellings = await spell(model, word);
      cache.set(word, spellings);
    }
    out.push(...spellings);
  }
  return out;
}

/** A word's spellings: [mid-sentence, capitalised] (one only when both tokenize alike). */
async function spell(model: LanguageModel, word: string): Promise<Token[][]> {
  const capitalised = `${word[0]?.toUpperCase() ?? ""}${word.slice(1)}`;
  const forms: [string, string][] = [
    ["the", ` ${word}`],
    ["the end.", ` ${capitalised}`],
  ];
  const found = new Map<string, Token[]>();
  for (const [leadIn, form] of forms) {
    const lead = await model.tokenize(leadIn, { addBos: false });
    const full = await model.tokenize(leadIn + form, { addBos: false });
    let i = 0;
    while (i < lead.length && lead[i] === full[i]) i++;
    const spelling = full.slice(i);
    if (spelling.length > 0) found.set(spelling.join(" "), spelling);
  }
  return [...found.values()];
}
