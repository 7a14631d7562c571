import type { NextTokenDistribution } from "../../lm/types.js";
import { cappedTopK } from "../calls.js";
import { vetoPenalties } from "../veto.js";
import type { Beam, Candidate, DealRun, Proposal } from "./state.js";

/**
 * Distribution entries asked for when lexical proposals want their first token's logprob: the
 * whole vocabulary of small models. A first token outside the returned slice is scored exactly
 * with `scoreContinuations` instead, so the slice only saves that call.
 */
const LEXICAL_TOP_K = 1024;

/** Tokens searched for unvetoed candidates when hard vetoes drop every top-k one. */
const VETO_WIDEN_TOP_K = 32;

/**
 * Expand: the next-token distribution of every live beam, in one batched call — the top k, or a
 * wider slice when lexical proposals will look their first tokens up in it.
 */
export async function expand(
  run: DealRun,
  live: readonly Beam[],
  wantsWords: boolean,
): Promise<NextTokenDistribution[]> {
  const k = cappedTopK(run.context, run.options.k, `deal: k=${run.options.k} candidates per beam`);
  const topK = wantsWords ? Math.max(k, Math.min(LEXICAL_TOP_K, run.model.capabilities.maxTopK)) : k;
  // A distribution bridging read after a committed lookahead is reused when it is wide enough.
  const reusable = (beam: Beam) =>
    beam.next !== undefined && (beam.next.length >= topK || beam.next.length >= run.model.vocabularySize);
  const asked = live.filter((beam) => !reusable(beam));
  const fetched =
    asked.length === 0
      ? []
      : await run.model.nextTokenDistributions(
          asked.map((beam) => run.prefix(beam)),
          { topK, ...run.calls },
        );
  return live.map((beam) =>
    reusable(beam)
      ? (beam.next as NextTokenDistribution).slice(0, topK)
      : (fetched[asked.indexOf(beam)] as NextTokenDistribution),
  );
}

/**
 * The k most likely next tokens, one proposal each — those below the floor or more than
 * `candidateSlack` below the top token left out, except the top one.
 */
export function topProposals(run: DealRun, beam: Beam, distribution: NextTokenDistribution): Proposal[] {
  // Below the floor, or further below the top token than `candidateSlack`: not worth a lookahead.
  const floor = Math.max(run.floorAt(beam), distribution[0].logprob - run.options.candidateSlack);
  return distribution
    .slice(0, run.options.k)
    .filter((entry, i) => i === 0 || entry.logprob >= floor)
    .map((entry) => ({ tokens: [entry.token], logprobs: [entry.logprob], lexical: false }));
}

/**
 * Vetoes: each proposal's first token is offered to the vetoes; hard-vetoed ones are dropped,
 * soft penalties noted. When hard vetoes drop every plain proposal, the beam does not end: the
 * best k unvetoed tokens of the top {@link VETO_WIDEN_TOP_K} take their place.
 */
export async function applyVetoes(
  run: DealRun,
  beam: Beam,
  proposals: readonly Proposal[],
): Promise<Candidate[]> {
  const { vetoes, k } = run.options;
  const prefix = run.prefix(beam);
  const all = [...proposals];
  const penalties = await vetoPenalties(
    vetoes,
    prefix,
    all.map((p) => p.tokens[0]),
  );
  if (penalties.every((p, i) => all[i].lexical || !Number.isFinite(p))) {
    const [wide] = await run.model.nextTokenDistributions([prefix], {
      topK: cappedTopK(
        run.context,
        VETO_WIDEN_TOP_K,
        "deal: unvetoed candidates when every top-k one is vetoed",
      ),
      ...run.calls,
    });
    const tried = new Set(all.map((p) => p.tokens.join(" ")));
    const more = wide.filter((entry) => !tried.has(String(entry.token)));
    const morePenalties = await vetoPenalties(
      vetoes,
      prefix,
      more.map((entry) => entry.token),
    );
    for (let i = 0, added = 0; i < more.length && added < k; i++) {
      if (!Number.isFinite(morePenalties[i])) continue;
      all.push({ tokens: [more[i].token], logprobs: [more[i].logprob], lexical: false });
      penalties.push(morePenalties[i]);
      added++;
    }
  }
  const candidates: Candidate[] = [];
  all.forEach((proposal, i) => {
    if (!Number.isFinite(penalties[i])) return; // hard veto
    candidates.push({
      ...proposal,
      beam,
      logprob: proposal.logprobs.reduce((a, b) => a + b, 0),
      penalty: penalties[i],
      reward: 0,
      score: 0,
    });
  });
  return candidates;
}
