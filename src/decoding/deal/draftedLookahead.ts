import { TillerError } from "../../errors.js";
import { rolloutStopReason } from "../../lm/rolloutStop.js";
import type { LanguageModel, NextTokenDistribution, Rollout, StopReason, Token } from "../../lm/types.js";
import type { Draft, Drafter } from "../speculative/drafter.js";
import { DraftModelDrafter } from "../speculative/draftModel.js";
import type { SpeculationSession } from "../speculative/session.js";
import { bridge } from "./bridge.js";
import type { Candidate, DealRun } from "./state.js";

/**
 * Who writes DeAL's lookaheads (`deal:lookahead=…`). Both drafted sources are CDSL's idea (a
 * draft writes the lookaheads, 2.2–12× over DeAL in its paper) and are NOT lossless: the reward
 * judges the drafter's text where it strays from the target's greedy text. What is committed
 * stays the target's own greedy text: a winner's lookahead is committed only as far as the
 * target agrees with it, plus the target's own token where it first disagrees.
 * - `target` — the target's greedy tokens, l sequential (batched) calls per step; with drafting
 *   (`--draft`) those rollouts are speculative and still exactly the target's greedy tokens.
 * - `draft` — the drafter writes every candidate's lookahead; the target scores all of them
 *   teacher-forced in ONE batched `scoreContinuations` call (logprobs, its argmax at each
 *   position, and the distribution after each lookahead, which bridging then reuses).
 * - `draft-only` — the drafter writes the lookaheads and the target never reads them: bridging
 *   runs on the draft model (on the target for a lookup drafter), and only the kept candidates'
 *   lookaheads are checked by the target, in one call, before they are committed.
 * bench:spec, 10 keyword dev tasks, load ~15: stories-heavy-n25 drafted by stories260K,
 * `draft-only` 1.02× greedy's wall time (DeAL 2.41×), hard coverage 0.90 (same as DeAL), no
 * salad, worst token −5.17 (DeAL −5.01); `draft` 2.93× (a full-length draft per candidate costs
 * the target as much as its own rollout, and disagreements commit less per step). With a lookup
 * drafter (prompt + corpus on stories-heavy) both fail: lookups propose too little to look ahead
 * with (hard coverage 0.30, 2.5–2.9×) — use them for the lossless drafting instead, where
 * `verifyAhead` (verifiedLookahead.ts) drafts every lookahead whole and verifies them in one call.
 */
export type LookaheadSource = "target" | "draft" | "draft-only";

export const LOOKAHEAD_SOURCES: readonly LookaheadSource[] = ["target", "draft", "draft-only"];

/** The option DeAL reads (kept apart from options.ts so its defaults stay where they are). */
export interface DraftedLookaheadOptions {
  /**
   * Who writes the lookaheads: `target`, `draft` or `draft-only` (see {@link LookaheadSource};
   * the drafted ones need `context.drafting`). Defaults to "target".
   */
  lookaheadFrom?: LookaheadSource;
}

/** Distribution entries kept after a lookahead: what bridging and the next expansion read. */
const AFTER_TOP_K = 1024;

/** The target's own greedy text over a drafted lookahead, when known (draft mode: at scoring). */
const exactText = new WeakMap<Candidate, { rollout: Rollout; after?: NextTokenDistribution }>();

/** The lookahead length each drafted candidate asked for (a lookup drafter may propose fewer). */
const wanted = new WeakMap<Candidate, number>();

/** The drafting session whose stats count the drafted lookaheads (the batched one); a clear error without drafting. */
function lookaheadSession(run: DealRun): SpeculationSession {
  const session = run.drafting?.[run.drafting.length - 1];
  if (!session)
    throw new TillerError(
      `deal: lookahead=${run.options.lookaheadFrom} needs a drafter (give --draft M, --draft prompt or --draft index:DIR)`,
      "no-drafter",
    );
  return session;
}

/** Lookahead drafters of draft models, one per model: drafting the whole lookahead. */
const wholeDrafts = new WeakMap<LanguageModel, Drafter>();

/**
 * Who writes the lookaheads: the session's drafter, except that a draft model writes all l tokens
 * (speculation stops a draft where the draft model is unsure, since the target rarely agrees
 * there; a lookahead wants its full length, and the reward judges it whatever its confidence).
 */
function lookaheadDrafter(session: SpeculationSession): Drafter {
  const { drafter } = session;
  if (!(drafter instanceof DraftModelDrafter)) return drafter;
  let whole = wholeDrafts.get(drafter.draft);
  if (!whole) {
    whole = new DraftModelDrafter(drafter.draft, { minProbability: 0 });
    wholeDrafts.set(drafter.draft, whole);
  }
  return whole;
}

/**
 * Drafted lookahead: one drafter call writes every candidate's lookahead; in `draft` mode one
 * target call scores them all. Sets each candidate's rollout (and, scored, the distribution
 * after it for bridging); in `draft-only` mode bridges on the draft model.
 */
export async function draftedLookahead(
  run: DealRun,
  rollable: readonly Candidate[],
  lengths: readonly number[],
  all: readonly Candidate[],
): Promise<void> {
  const session = lookaheadSession(run);
  const { model } = run;
  await session.prepare(model);
  if (rollable.length === 0) return;
  const prefixes = rollable.map((c) => run.prefix(c.beam, c.tokens));
  const proposed = await lookaheadDrafter(session).propose(
    prefixes.map((prefix, i) => ({ context: prefix, n: lengths[i], random: () => 0.5 })),
    { sampling: { temperature: 0 }, ...run.calls },
  );
  rollable.forEach((c, i) => {
    const draft = endAtStop(
      run,
      prefixes[i],
      validDraft(proposed[i], lengths[i], model.vocabularySize),
      lengths[i],
    );
    session.stats.drafted += draft.tokens.length;
    wanted.set(c, lengths[i]);
    // Unscored for now: draft-only mode never scores the losers.
    c.rollout = { ...draft, logprobs: draft.tokens.map(() => 0), logprob: 0 };
  });
  if (run.options.lookaheadFrom === "draft") await scoreDrafts(run, session, rollable, prefixes);
  else await bridgeOnDraft(run, session, all);
}

/** `draft` mode: the target scores every drafted lookahead in one batched call. */
async function scoreDrafts(
  run: DealRun,
  session: SpeculationSession,
  rollable: readonly Candidate[],
  prefixes: readonly Token[][],
): Promise<void> {
  const { model } = run;
  const scored = await model.scoreContinuations(
    rollable.map((c, i) => ({ prefix: prefixes[i], continuation: c.rollout?.tokens ?? [] })),
    { topK: 1, nextTopK: Math.min(AFTER_TOP_K, model.capabilities.maxTopK), ...run.calls },
  );
  session.stats.targetCalls++;
  rollable.forEach((c, i) => {
    const rollout = c.rollout as Rollout;
    rollout.logprobs = scored[i].logprobs;
    rollout.logprob = scored[i].logprob;
    // After a stop token there is nothing to bridge to; elsewhere bridging reuses this distribution.
    const next = rollout.stopReason === "end-of-generation" ? undefined : scored[i].next;
    c.after = next;
    const exact = agreeing(rollout, scored[i].top ?? [], next, wanted.get(c) ?? 0);
    session.stats.accepted += exact.agreed;
    exactText.set(c, exact);
  });
}

/**
 * The target's greedy text over a drafted lookahead: the agreeing prefix, then the target's own
 * token where it first disagrees — or, after a whole draft shorter than asked (a lookup found
 * little), the target's next token; the distribution after it only when the text is the draft.
 */
function agreeing(
  draft: Rollout,
  top: readonly NextTokenDistribution[],
  next: NextTokenDistribution | undefined,
  wantedLength: number,
): { rollout: Rollout; after?: NextTokenDistribution; agreed: number } {
  let agreed = 0;
  while (agreed < draft.tokens.length && top[agreed]?.[0]?.token === draft.tokens[agreed]) agreed++;
  const whole = agreed === draft.tokens.length;
  const short = whole && draft.tokens.length < wantedLength && draft.stopReason === "max-tokens";
  if (whole && !(short && next?.[0])) return { rollout: draft, after: next, agreed };
  const own = whole ? (next as NextTokenDistribution)[0] : top[agreed][0];
  const tokens = [...draft.tokens.slice(0, agreed), own.token];
  const logprobs = [...draft.logprobs.slice(0, agreed), own.logprob];
  const rollout: Rollout = {
    tokens,
    logprobs,
    logprob: logprobs.reduce((a, b) => a + b, 0),
    // Only a stop token can end it here; a stop string is found again when committing.
    stopReason: draft.stopReason === "end-of-generation" ? "max-tokens" : draft.stopReason,
  };
  return { rollout, agreed };
}

/**
 * `draft-only` mode: bridging judges the drafted lookaheads on the draft model (the target's
 * distributions are not read), or on the target when the drafter is not a draft model (whose
 * tokenizer `prepare` checked). The draft's distributions are then dropped: the next expansion
 * must be the target's.
 */
async function bridgeOnDraft(
  run: DealRun,
  session: SpeculationSession,
  all: readonly Candidate[],
): Promise<void> {
  const draft = session.drafter instanceof DraftModelDrafter ? session.drafter.draft : undefined;
  await bridge(draft ? viewOn(run, draft) : run, all);
  if (draft) for (const c of all) c.after = undefined;
  // Marks bridging as done: bridge() skips candidates whose fit is set.
  for (const c of all) c.fit ??= 0;
}

/** The run as seen through another model with the same tokenizer (bridging on the draft). */
function viewOn(run: DealRun, model: LanguageModel): DealRun {
  return Object.create(run, { model: { value: model } }) as DealRun;
}

/**
 * Before commit: each kept candidate's drafted lookahead becomes the target's greedy text over it
 * (see {@link agreeing}) — known from scoring in `draft` mode, checked in one target call for all
 * kept candidates in `draft-only` mode. No-op for target lookaheads.
 */
export async function settleDraftedLookaheads(run: DealRun, kept: readonly Candidate[]): Promise<void> {
  const mode = run.options.lookaheadFrom ?? "target";
  if (mode === "target") return;
  const session = lookaheadSession(run);
  const unchecked = kept.filter((c) => c.rollout && !exactText.has(c));
  if (unchecked.length > 0) {
    const { model } = run;
    const scored = await model.scoreContinuations(
      unchecked.map((c) => ({ prefix: run.prefix(c.beam, c.tokens), continuation: c.rollout?.tokens ?? [] })),
      { topK: 1, nextTopK: Math.min(AFTER_TOP_K, model.capabilities.maxTopK), ...run.calls },
    );
    session.stats.targetCalls++;
    unchecked.forEach((c, i) => {
      const draft = { ...(c.rollout as Rollout), logprobs: scored[i].logprobs, logprob: scored[i].logprob };
      const next = draft.stopReason === "end-of-generation" ? undefined : scored[i].next;
      const exact = agreeing(draft, scored[i].top ?? [], next, wanted.get(c) ?? 0);
      session.stats.accepted += exact.agreed;
      exactText.set(c, exact);
    });
  }
  for (const c of kept) {
    const exact = exactText.get(c);
    if (!exact) continue;
    c.rollout = exact.rollout;
    c.after = exact.after;
    // The fit was judged after the drafter's text; where the target's text differs it no longer
    // ends where the keyword fits, so commit takes `commitTokens` and the search looks again.
    if (!exact.after) c.fit = undefined;
  }
}

/** A drafter's proposal cut to `n` and to valid token ids (a custom drafter may err). */
function validDraft(draft: Draft | undefined, n: number, vocabularySize: number): Token[] {
  const tokens = draft?.tokens ?? [];
  let length = Math.min(tokens.length, n);
  for (let k = 0; k < length; k++)
    if (!(Number.isInteger(tokens[k]) && tokens[k] >= 0 && tokens[k] < vocabularySize)) length = k;
  return tokens.slice(0, length);
}

/** The draft cut where a rollout would stop (a stop token, a stop string), with the reason. */
function endAtStop(
  run: DealRun,
  prefix: readonly Token[],
  tokens: readonly Token[],
  maxTokens: number,
): { tokens: Token[]; stopReason: StopReason } {
  for (let k = 1; k <= tokens.length; k++) {
    const head = tokens.slice(0, k);
    const reason = rolloutStopReason(run.model, prefix, head, maxTokens, {
      stopStrings: run.context.stopStrings,
    });
    if (reason) return { tokens: head, stopReason: reason };
  }
  return { tokens: [...tokens], stopReason: "max-tokens" };
}
