import type { LanguageModel, Rollout, StopReason, Token } from "../lm/types.js";
import type { Reward, RewardInput } from "../rewards/types.js";
import { scoreAll } from "../rewards/types.js";
import { firstStop } from "./rolloutText.js";
import { steppedSample } from "./stepped.js";
import type { DecodeOutput, Strategy } from "./strategy.js";
import { TextStream } from "./textStream.js";
import type { DecodeContext, TraceStep } from "./types.js";
import { type CandidateVeto, vetoPenalties } from "./veto.js";

/**
 * DeAL (Huang et al., 2024): decoding as heuristic-guided search. Each step expands the top-k
 * next tokens of every beam, extends each candidate by an l-token greedy lookahead, and scores
 *   score(candidate) = log P(beam + candidate | prompt) + λ · h(beam + candidate + lookahead)
 * keeping the b best. The options below the line are tiller's speed-ups; each can be switched
 * off, and `PAPER_FAITHFUL` (`deal:paper` on the command line) turns them all off so the original can be measured beside them.
 */
export interface DealOptions {
  reward: Reward;
  /** Candidates expanded per beam (k). */
  k: number;
  /** Greedy lookahead tokens per candidate (l). */
  lookahead: number;
  /** Weight of the reward against the model's log-probability (λ). */
  lambda: number;
  /** Beams kept per step (b). */
  beams: number;
  vetoes?: readonly CandidateVeto[];
  // ---- speed-ups and improvements (all on by default) ----
  /** (1) Send all rollouts of a step to the backend as one batched call. */
  batch?: boolean;
  /**
   * (2) Commit more than one token per step. When every candidate scores the same reward the
   * search has no signal and would re-derive the greedy lookahead token by token, so the winner's
   * whole lookahead is committed; otherwise `commitTokens` tokens of it follow the candidate.
   * `false` commits the candidate only (the paper).
   */
  commit?: boolean;
  commitTokens?: number;
  /** (3) When the reward is saturated (can no longer change), finish with plain greedy decoding. */
  saturation?: boolean;
  /**
   * (4) Lexical lookahead: also expand the first token of every word the reward still wants
   * (e.g. a missing keyword), so a keyword outside the top-k can still be reached.
   */
  lexical?: boolean;
  /** Nats below the top token a lexical candidate may cost at the start (see `patience`). */
  lexicalSlack?: number;
  /**
   * Share of the token budget over which the allowed cost of a lexical candidate grows by λ.
   * 0 tries every lexical candidate at every step.
   */
  patience?: number;
}

export const DEAL_DEFAULTS = {
  k: 5,
  lookahead: 8,
  // A keyword is worth 1/n of the keywords reward; inserting one costs the model several nats,
  // so λ must exceed n × that cost for the search to place it. Measured on the dev set with the
  // stories model: λ = 10 reaches 0.3 soft coverage, 30 → 0.8, 50 → 0.99 (fluency −0.27 nats/token).
  lambda: 50,
  beams: 1,
  batch: true,
  commit: true,
  commitTokens: 2,
  saturation: true,
  lexical: true,
  lexicalSlack: 4,
  patience: 0.5,
} as const;

/** The options that reproduce the paper's algorithm (no tiller speed-ups). */
export const PAPER_FAITHFUL = { batch: false, commit: false, saturation: false, lexical: false } as const;

interface Beam {
  tokens: Token[];
  logprobs: number[];
  /** Sum of logprobs minus veto penalties of the committed tokens. */
  logprob: number;
  done?: StopReason;
  /** Score of the step that produced this beam (for the final choice). */
  score: number;
  reward: number;
}

interface Candidate {
  beam: Beam;
  /** One token, or for a lexical candidate all tokens of the wanted word. */
  tokens: Token[];
  /** Logprob of each of `tokens`. */
  logprobs: number[];
  logprob: number;
  penalty: number;
  lexical: boolean;
  rollout?: Rollout;
  reward: number;
  score: number;
}

export function deal(options: DealOptions): Strategy {
  const o = { ...DEAL_DEFAULTS, ...options };
  return {
    name: "deal",
    decode: (context) => runDeal(context, o),
  };
}

async function runDeal(
  context: DecodeContext,
  o: Required<Omit<DealOptions, "vetoes">> & DealOptions,
): Promise<DecodeOutput> {
  const { model, promptTokens } = context;
  const steps: TraceStep[] = [];
  const textOf = (tokens: readonly Token[]) => model.detokenize(tokens, { context: promptTokens.slice(-8) });
  /** The reward's view of a continuation: cut at a stop string (then finished), like the final text. */
  const inputOf = (tokens: readonly Token[], finished: boolean): RewardInput => {
    const text = textOf(tokens);
    const cut = firstStop(text, context.stopStrings);
    return cut < 0
      ? { prompt: context.prompt, text, tokens, finished }
      : { prompt: context.prompt, text: text.slice(0, cut), tokens, finished: true };
  };
  let beams: Beam[] = [{ tokens: [], logprobs: [], logprob: 0, score: 0, reward: 0 }];
  const finished: Beam[] = [];
  const lexicalCache = new Map<string, Token[][]>();
  let step = 0;
  // The event stream: each step as it is decided; the text as it becomes final — with one beam
  // every commit is final, with several only the chosen beam's text at the end.
  const stream = context.emit
    ? new TextStream(
        model,
        promptTokens,
        (text) => context.emit?.({ type: "text", text }),
        context.stopStrings,
      )
    : undefined;
  let streamed = 0;
  const streamBeam = (beam: Beam) => {
    if (!stream) return;
    for (const token of beam.tokens.slice(streamed)) stream.push(token);
    streamed = beam.tokens.length;
  };
  const record = (traceStep: TraceStep) => {
    steps.push(traceStep);
    context.emit?.({ type: "step", step: traceStep });
  };
  // How many nats below the top token a lexical candidate may cost: `lexicalSlack` at first,
  // growing by λ over the first `patience` share of the token budget. Placing a wanted word as
  // soon as its reward outweighs its cost puts it in the first sentence, however awkward; waiting
  // lets the search find a place where the word fits ("a big tree"), and the growing allowance
  // still places it before the text runs out.
  const allowed = (beam: Beam) =>
    o.patience <= 0
      ? Number.POSITIVE_INFINITY
      : o.lexicalSlack + (o.lambda * beam.tokens.length) / (o.patience * context.maxTokens);

  while (beams.length > 0) {
    context.signal?.throwIfAborted();
    // Beams that reached the length limit are finished.
    const live: Beam[] = [];
    for (const beam of beams) {
      if (beam.tokens.length >= context.maxTokens) finished.push({ ...beam, done: "max-tokens" });
      else if (promptTokens.length + beam.tokens.length + 1 >= model.contextSize)
        finished.push({ ...beam, done: "context-full" });
      else live.push(beam);
    }
    if (live.length === 0) break;

    // (3) Saturation: if the best live beam's reward can no longer change, searching is wasted.
    if (o.saturation && o.reward.saturated) {
      const best = live[0];
      if (o.reward.saturated(inputOf(best.tokens, false))) {
        const rest = context.maxTokens - best.tokens.length;
        const prefix = [...promptTokens, ...best.tokens];
        // With vetoes, finish token by token so every token is still offered to them.
        const rollout = o.vetoes?.length
          ? await steppedSample(
              { ...context, promptTokens: prefix, maxTokens: rest, trace: false, emit: undefined },
              { temperature: 0 },
              o.vetoes,
            )
          : (
              await model.rollouts([{ prefix }], {
                maxTokens: rest,
                stopStrings: context.stopStrings,
                signal: context.signal,
              })
            )[0];
        const done: Beam = extend(best, rollout.tokens, rollout.logprobs);
        done.done = rollout.stopReason;
        if (o.beams === 1) streamBeam(done);
        if (context.trace)
          record({
            step,
            prefixLength: best.tokens.length,
            candidates: [],
            note: "reward saturated: finished greedily",
          });
        // The other beams had no better reward; the finished ones still compete below.
        finished.push(done);
        beams = [];
        break;
      }
    }

    // Expand: top-k (plus lexical candidates) of every live beam, in one batched call.
    const prefixes = live.map((beam) => [...promptTokens, ...beam.tokens]);
    const wanted =
      o.lexical && o.reward.wantedWords
        ? live.map((beam) => o.reward.wantedWords?.(inputOf(beam.tokens, false)) ?? [])
        : [];
    const anyWanted = wanted.some((words) => words.length > 0);
    const distributions = await model.nextTokenDistributions(prefixes, {
      // Lexical candidates need their own logprobs, so ask for a wider slice of the distribution.
      topK: Math.min(anyWanted ? Math.max(o.k, LEXICAL_TOP_K) : o.k, model.capabilities.maxTopK),
      signal: context.signal,
    });
    const candidates: Candidate[] = [];
    const lexicalPending: Candidate[] = [];
    for (let b = 0; b < live.length; b++) {
      const distribution = distributions[b];
      const chosen: { tokens: Token[]; logprob: number; lexical: boolean }[] = distribution
        .slice(0, o.k)
        .map((entry) => ({ tokens: [entry.token], logprob: entry.logprob, lexical: false }));
      if (anyWanted) {
        const have = new Set(chosen.map((c) => c.tokens.join(" ")));
        for (const spelling of await lexicalSpellings(model, wanted[b] ?? [], lexicalCache)) {
          const key = spelling.join(" ");
          if (have.has(key)) continue;
          have.add(key);
          // Spellings that would not fit in the context are skipped.
          if (promptTokens.length + live[b].tokens.length + spelling.length + 1 >= model.contextSize)
            continue;
          const logprob = logprobIn(distribution, spelling[0]);
          // A first token outside the returned slice has no exact logprob: skip it rather than
          // commit an estimate (the slice is the whole vocabulary on the llama.cpp backend).
          if (logprob === undefined) continue;
          // Patience: early on, only spellings that fit the text about as well as the top token
          // are tried (the first token's cost bounds the word's cost from below).
          if (logprob < distribution[0].logprob - allowed(live[b])) continue;
          chosen.push({ tokens: spelling, logprob, lexical: true });
        }
      }
      const penalties = await vetoPenalties(
        o.vetoes,
        prefixes[b],
        chosen.map((c) => c.tokens[0]),
      );
      // Every plain candidate hard-vetoed: rather than end the beam, take the best k unvetoed
      // tokens further down the distribution (top VETO_WIDEN_TOP_K).
      if (penalties.every((p, i) => chosen[i].lexical || !Number.isFinite(p))) {
        const [wide] = await model.nextTokenDistributions([prefixes[b]], {
          topK: Math.min(VETO_WIDEN_TOP_K, model.capabilities.maxTopK),
          signal: context.signal,
        });
        const tried = new Set(chosen.map((c) => c.tokens.join(" ")));
        const more = wide.filter((entry) => !tried.has(String(entry.token)));
        const morePenalties = await vetoPenalties(
          o.vetoes,
          prefixes[b],
          more.map((entry) => entry.token),
        );
        for (let i = 0, added = 0; i < more.length && added < o.k; i++) {
          if (!Number.isFinite(morePenalties[i])) continue;
          chosen.push({ tokens: [more[i].token], logprob: more[i].logprob, lexical: false });
          penalties.push(morePenalties[i]);
          added++;
        }
      }
      for (let i = 0; i < chosen.length; i++) {
        if (!Number.isFinite(penalties[i])) continue; // hard veto
        const candidate: Candidate = {
          beam: live[b],
          tokens: chosen[i].tokens,
          logprobs: [chosen[i].logprob],
          logprob: chosen[i].logprob,
          penalty: penalties[i],
          lexical: chosen[i].lexical,
          reward: 0,
          score: 0,
        };
        candidates.push(candidate);
        if (candidate.tokens.length > 1) lexicalPending.push(candidate);
      }
    }
    if (candidates.length === 0) {
      // Every continuation was vetoed: end the beams here.
      for (const beam of live) finished.push({ ...beam, done: "end-of-generation" });
      break;
    }
    // A lexical candidate spells a whole word; the logprobs of its later tokens come from one
    // more batched call over its inner prefixes (vetoes apply to them too).
    if (lexicalPending.length > 0) {
      const inner: Token[][] = [];
      const owners: [Candidate, number][] = [];
      for (const c of lexicalPending)
        for (let j = 1; j < c.tokens.length; j++) {
          inner.push([...promptTokens, ...c.beam.tokens, ...c.tokens.slice(0, j)]);
          owners.push([c, j]);
        }
      const innerDistributions = await model.nextTokenDistributions(inner, {
        topK: Math.min(LEXICAL_TOP_K, model.capabilities.maxTopK),
        signal: context.signal,
      });
      for (let i = 0; i < inner.length; i++) {
        const [c, j] = owners[i];
        const logprob = logprobIn(innerDistributions[i], c.tokens[j]) ?? Number.NEGATIVE_INFINITY;
        c.logprobs[j] = logprob;
        c.logprob += logprob;
        const [penalty] = await vetoPenalties(o.vetoes, inner[i], [c.tokens[j]]);
        c.penalty += penalty;
      }
    }
    const viable = candidates.filter(
      (c) =>
        Number.isFinite(c.penalty) &&
        Number.isFinite(c.logprob) &&
        (!c.lexical || c.logprob >= distributions[live.indexOf(c.beam)][0].logprob - allowed(c.beam)),
    );
    candidates.length = 0;
    candidates.push(...viable);
    if (candidates.length === 0) {
      for (const beam of live) finished.push({ ...beam, done: "end-of-generation" });
      break;
    }

    // Lookahead: an l-token greedy rollout after every candidate that does not end the text.
    const rollable = candidates.filter(
      (c) =>
        !model.isStopToken(c.tokens[c.tokens.length - 1]) &&
        c.beam.tokens.length + c.tokens.length < context.maxTokens,
    );
    const requests = rollable.map((c) => ({
      prefix: [...promptTokens, ...c.beam.tokens, ...c.tokens],
      maxTokens: Math.min(o.lookahead, context.maxTokens - c.beam.tokens.length - c.tokens.length),
    }));
    const rolloutOptions = {
      maxTokens: o.lookahead,
      signal: context.signal,
      stopStrings: context.stopStrings,
    };
    let rollouts: Rollout[];
    if (o.batch) rollouts = await model.rollouts(requests, rolloutOptions);
    else {
      rollouts = [];
      for (const request of requests) rollouts.push(...(await model.rollouts([request], rolloutOptions)));
    }
    rollable.forEach((c, i) => {
      c.rollout = rollouts[i];
    });

    // Judge each candidate + lookahead with the heuristic h.
    const inputs = candidates.map((c) => {
      const tokens = [...c.beam.tokens, ...c.tokens, ...(c.rollout?.tokens ?? [])];
      const ended = model.isStopToken(tokens[tokens.length - 1]) || tokens.length >= context.maxTokens;
      return inputOf(
        ended && model.isStopToken(tokens[tokens.length - 1]) ? tokens.slice(0, -1) : tokens,
        ended,
      );
    });
    const rewards = await scoreAll(o.reward, inputs);
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[i];
      c.reward = rewards[i];
      // A reward that returns NaN must not win (NaN compares false both ways in the sort).
      c.score =
        c.beam.logprob +
        c.logprob -
        c.penalty +
        o.lambda * (Number.isNaN(c.reward) ? Number.NEGATIVE_INFINITY : c.reward);
    }
    const ranked = [...candidates].sort((a, b) => b.score - a.score);
    const kept = ranked.slice(0, o.beams);

    if (context.trace)
      record({
        step,
        prefixLength: live[0].tokens.length,
        candidates: ranked.map((c) => ({
          token: c.tokens[0],
          text: model.detokenize(c.tokens, { context: [...promptTokens, ...c.beam.tokens].slice(-4) }),
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

    // (2) Commit: the whole lookahead when no candidate's reward differs (no signal to search
    // on), else `commitTokens` of it.
    // Lexical candidates are left out of the tie test: they lost to a plain token this step,
    // and the plain tokens' lookaheads all judged the same, so the lookahead is plain greedy text.
    const plain = candidates.filter((c) => !c.lexical);
    const tied = plain.length > 0 && plain.every((c) => Math.abs(c.reward - plain[0].reward) < 1e-9);
    const next: Beam[] = [];
    for (const c of kept) {
      const lookahead = c.rollout?.tokens ?? [];
      let take = !o.commit
        ? 0
        : tied && !c.lexical
          ? lookahead.length
          : Math.min(o.commitTokens, lookahead.length);
      // Lookahead tokens were never offered to the vetoes; commit only up to the first one a veto
      // objects to (it becomes a candidate again next step, where the veto applies).
      if (take > 0 && o.vetoes?.length)
        take = await vetoFreeLength(
          o.vetoes,
          [...promptTokens, ...c.beam.tokens, ...c.tokens],
          lookahead.slice(0, take),
        );
      const tokens = [...c.tokens, ...lookahead.slice(0, take)];
      const logprobs = [...c.logprobs, ...(c.rollout?.logprobs ?? []).slice(0, take)];
      // The model's logprobs stay exact; a soft-veto penalty only lowers the search score.
      const beam = extend(c.beam, tokens, logprobs);
      beam.logprob -= c.penalty;
      beam.score = c.score;
      beam.reward = c.reward;
      if (o.beams === 1) streamBeam(beam);
      const last = beam.tokens[beam.tokens.length - 1];
      if (model.isStopToken(last)) beam.done = "end-of-generation";
      else if (firstStop(textOf(beam.tokens), context.stopStrings) >= 0) beam.done = "stop-string";
      if (beam.done) finished.push(beam);
      else next.push(beam);
    }
    beams = next;
    step++;
    // With b beams finished there is nothing better left to find at equal width.
    if (finished.length >= o.beams) break;
  }
  for (const beam of beams) finished.push({ ...beam, done: beam.done ?? "max-tokens" });
  // Final choice: the finished beam with the best reward-weighted score on its complete text.
  const finals = await scoreAll(
    o.reward,
    finished.map((beam) => inputOf(stripStop(model, beam.tokens), true)),
  );
  let best = finished[0];
  let bestScore = Number.NEGATIVE_INFINITY;
  finished.forEach((beam, i) => {
    const score = beam.logprob + o.lambda * finals[i];
    if (score > bestScore) {
      bestScore = score;
      best = beam;
    }
  });
  if (stream) {
    // With one beam `best` is the beam streamed so far; with several, its text goes out now.
    if (o.beams !== 1) streamed = 0;
    streamBeam(best);
    stream.end();
  }
  return output(best, steps, o, context);
}

function extend(beam: Beam, tokens: readonly Token[], logprobs: readonly number[]): Beam {
  return {
    tokens: [...beam.tokens, ...tokens],
    logprobs: [...beam.logprobs, ...logprobs],
    logprob: beam.logprob + logprobs.reduce((a, b) => a + b, 0),
    score: beam.score,
    reward: beam.reward,
  };
}

function stripStop(model: LanguageModel, tokens: readonly Token[]): Token[] {
  return tokens.length > 0 && model.isStopToken(tokens[tokens.length - 1])
    ? tokens.slice(0, -1)
    : [...tokens];
}

function output(beam: Beam, steps: TraceStep[], o: DealOptions, context: DecodeContext): DecodeOutput {
  const result: DecodeOutput = {
    tokens: beam.tokens,
    logprobs: beam.logprobs,
    stopReason: beam.done ?? "max-tokens",
    score: beam.score,
  };
  if (context.trace) {
    const { reward, vetoes, ...settings } = o;
    result.trace = {
      strategy: "deal",
      options: { ...settings, reward: reward.name, vetoes: (vetoes ?? []).map((v) => v.name) },
      steps,
    };
  }
  return result;
}

/** Tokens searched for unvetoed candidates when hard vetoes drop every top-k one. */
const VETO_WIDEN_TOP_K = 32;

/**
 * Logprobs requested when lexical candidates need theirs: the whole vocabulary of small models;
 * with a large vocabulary a word whose first token ranks below this is not tried.
 */
const LEXICAL_TOP_K = 1024;

/** A token's logprob in a top-k slice, or undefined when the slice does not hold it. */
function logprobIn(
  distribution: readonly { token: Token; logprob: number }[],
  token: Token,
): number | undefined {
  return distribution.find((entry) => entry.token === token)?.logprob;
}

/**
 * Token spellings of a wanted word as it appears in running text: mid-sentence, and capitalised
 * after a full stop. Each form is tokenized after a short lead-in whose tokens are then dropped,
 * because tokenizers spell a word differently at the start of a text (e.g. a SentencePiece
 * dummy prefix) than after a space.
 */
async function lexicalSpellings(
  model: LanguageModel,
  words: readonly string[],
  cache: Map<string, Token[][]>,
): Promise<Token[][]> {
  const out: Token[][] = [];
  for (const word of words) {
    let spellings = cache.get(word);
    if (!spellings) {
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
      spellings = [...found.values()];
      cache.set(word, spellings);
    }
    out.push(...spellings);
  }
  return out;
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
