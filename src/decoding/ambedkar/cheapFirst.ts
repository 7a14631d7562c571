/**
 * Cheapest first: the branch and bound of a greedy step of a draft that verifies itself. At
 * α = 30 one cheap candidate's score usually settles a step, while completing every term-like
 * piece (" a" → "Anna", " to" → "Tom") and judging it costs lookaheads and word requests. So the
 * step's counterfactual contexts come with its draft distribution, and the candidates are judged
 * in rounds, from the memo where it holds what they read:
 *   1. those that need no lookahead and are not pooled with a group (their D reads only the
 *      step's two contexts), and a stop token (D = 0);
 *   2. the most likely of the others alone (usually the leader, whose lookahead is the next step's
 *      draft distribution; when it is a term so far, the other open words' first lookahead reads
 *      come in the same call), then every one still open at once.
 * A candidate whose best possible score (D = 0) is below the best judged one cannot win: its word
 * is neither completed nor judged. A unit pooled with its group (byGroup: its first word is a
 * term) ends the rounds: the pool holds every bare term judged at its site (judge.ts), so its D
 * depends on which others are judged beside it, and the rest is judged as a whole.
 */
import type { LanguageModel, Token } from "../../lm/types.js";
import { wordSpans } from "../../rewards/words.js";
import { type JudgedUnit, judgedUnits, startUnits } from "./candidateWords.js";
import type { DraftMemo } from "./draftMemo.js";
import { type JudgeOptions, judgeKnown } from "./judge.js";
import { isTerm, termGroup } from "./sigma.js";
import type { SwapMap } from "./swapMap.js";
import type { VerifierView } from "./verifierView.js";

/** Score differences below this are treated as ties (the bound and the final score round differently). */
const TIE = 1e-9;

/** One step's candidates and what judging them needs. */
export interface BoundStep {
  draft: LanguageModel;
  swaps: SwapMap;
  view: VerifierView;
  prompt: string;
  /** The draft's tokens so far (prompt + generated) and their text after the prompt. */
  prefix: readonly Token[];
  generated: string;
  /** The candidates' tokens and best possible scores (log p_T − veto penalty, D = 0). */
  tokens: readonly Token[];
  base: readonly number[];
  /** Which candidates are still to be judged: set false as each is judged or ruled out. */
  contenders: boolean[];
  alpha: number;
  lookahead: number;
  /** Where the draft's distributions are kept (whole ones: the verifier reads them). */
  memo: DraftMemo;
  /** Entries of a draft distribution a step reads. */
  pool: number;
  /** What every judgement of the step shares (its `known` reads `memo`). */
  judge: JudgeOptions;
  /** Prefixes the first lookahead call also fetches (the next step's, the step's contexts). */
  ahead: () => Promise<Token[][]>;
  /** Records candidate i's unit and D. */
  settle: (i: number, unit: JudgedUnit | undefined, divergence: number) => void;
}

/** Whether a unit's D reads only its own texts: judged on a group pool, it reads the others'. */
export function judgedAlone(map: SwapMap, byGroup: boolean, unit: JudgedUnit): boolean {
  return !unit.term && !(byGroup && termGroup(map, unit.unit) !== undefined);
}

/**
 * Judges the step cheapest first. Returns the number of contenders ruled out when none is left
 * that could win; undefined when the rest must be judged as a whole (a pooled unit, or a context
 * not in the memo), with `contenders` then holding exactly those not judged yet.
 */
export async function judgeCheapestFirst(step: BoundStep): Promise<number | undefined> {
  const cheapest = await settleCheap(step);
  if (cheapest === undefined) return undefined;
  let best = cheapest;
  for (let round = 0; ; round++) {
    const open = step.contenders.flatMap((on, i) => (on && step.base[i] >= best - TIE ? [i] : []));
    if (open.length === 0) break;
    const batch = round === 0 ? [open.reduce((a, b) => (step.base[b] > step.base[a] ? b : a))] : open;
    const settled = await settleOpen(step, batch, round === 0);
    if (settled === undefined) return undefined;
    best = Math.max(best, settled);
  }
  const ruledOut = step.contenders.filter(Boolean).length;
  step.contenders.fill(false);
  return ruledOut;
}

/** Round 1: the units judged without a call; their best score, or undefined when a context is not known. */
async function settleCheap(step: BoundStep): Promise<number | undefined> {
  const { draft, swaps, contenders } = step;
  const { units } = startUnits(
    draft,
    swaps,
    step.prefix,
    step.generated,
    candidatesOf(step, () => true),
  );
  const stop = step.tokens.map((token, i) => contenders[i] && draft.isStopToken(token));
  const cheap = units.map((unit) =>
    unit && judgedAlone(swaps, step.judge.byGroup ?? false, unit) ? unit : undefined,
  );
  const judgement = await judgeKnown(step.view, swaps, step.prompt, step.generated, cheap, step.judge);
  if (!judgement) return undefined;
  let best = Number.NEGATIVE_INFINITY;
  step.tokens.forEach((_, i) => {
    if (!cheap[i] && !stop[i]) return;
    best = Math.max(best, settleOne(step, i, cheap[i], stop[i] ? 0 : judgement.divergences[i]));
  });
  return best;
}

/**
 * A round of open candidates: their words completed (one batch per token), judged from the memo.
 * Their best score; undefined when one is pooled or reads a context not in the memo.
 */
async function settleOpen(
  step: BoundStep,
  batch: readonly number[],
  first: boolean,
): Promise<number | undefined> {
  const { swaps } = step;
  const units = await judgedUnits(
    step.draft,
    swaps,
    step.prefix,
    step.generated,
    candidatesOf(step, (i) => batch.includes(i)),
    {
      lookahead: step.lookahead,
      memo: step.memo,
      topK: step.pool,
      alongside: first ? [...(await step.ahead()), ...othersFirstReads(step, batch)] : undefined,
      signal: step.judge.signal,
    },
  );
  if (
    batch.some((i) => !units[i] || !judgedAlone(swaps, step.judge.byGroup ?? false, units[i] as JudgedUnit))
  )
    return undefined;
  const judgement = await judgeKnown(step.view, swaps, step.prompt, step.generated, units, step.judge);
  if (!judgement) return undefined;
  return Math.max(...batch.map((i) => settleOne(step, i, units[i], judgement.divergences[i])));
}

/**
 * When round 1's candidate is a term so far ("she", which may yet grow), it is most likely
 * pooled, which ends the rounds and completes every open contender's word at once: their first
 * lookahead reads then ride along with its own instead of costing a call of their own.
 */
function othersFirstReads(step: BoundStep, batch: readonly number[]): Token[][] {
  const [lead] = batch;
  const { open } = startUnits(
    step.draft,
    step.swaps,
    step.prefix,
    step.generated,
    candidatesOf(step, () => true),
  );
  const leader = open.find((o) => o.index === lead);
  const word = leader ? wordSpans(leader.text)[0]?.word : undefined;
  if (word === undefined || !isTerm(step.swaps, word)) return [];
  return open.filter((o) => o.index !== lead).map((o) => [...step.prefix, step.tokens[o.index]]);
}

/** Settles candidate i: records it, takes it out of the contenders, returns its score (D counted). */
function settleOne(step: BoundStep, i: number, unit: JudgedUnit | undefined, divergence: number): number {
  step.settle(i, unit, divergence);
  step.contenders[i] = false;
  return step.base[i] - step.alpha * divergence;
}

/** The contenders' tokens that `keep` selects (undefined for the others). */
function candidatesOf(step: BoundStep, keep: (i: number) => boolean): (Token | undefined)[] {
  return step.tokens.map((token, i) => (step.contenders[i] && keep(i) ? token : undefined));
}
