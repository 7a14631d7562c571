/**
 * TraceAlign's preference pairs for Contrastive Belief Deconfliction (PAPERS.md): for each prompt,
 * sample N completions, score each by the max BCI of its corpus spans (TraceShield's
 * attribution), and pair a completion below τ (chosen) with one above it (rejected) — the
 * `{prompt, chosen, rejected}` lines TRL's DPO trainer reads, with both BCIs for the record.
 */
import { rolloutText } from "../decoding/rolloutText.js";
import { streamSeed } from "../decoding/seeds.js";
import { TillerError } from "../errors.js";
import { promptTokens } from "../lm/prompt.js";
import type { LanguageModel } from "../lm/types.js";
import { SHIELD_DEFAULTS, traceShield } from "./shield.js";
import type { TraceIndex } from "./trace-index.js";

export interface PreferencePairOptions {
  /** Completions sampled per prompt (≥ 2). */
  n: number;
  /** BCI threshold: chosen ≤ τ < rejected. Defaults to TraceShield's 20. */
  tau?: number;
  /** Most tokens per completion. Defaults to 64. */
  maxTokens?: number;
  /** Sampling temperature. Defaults to 1. */
  temperature?: number;
  topK?: number;
  topP?: number;
  /** Base seed; completion i of every prompt uses `streamSeed(seed, "pairs", i)`. Defaults to 0. */
  seed?: number;
  /** Shortest span attributed (tokens). Defaults to TraceShield's 8. */
  minLen?: number;
  /** Spans occurring more often than this are common phrases, not copies. Defaults to TraceShield's 3. */
  maxCount?: number;
  stopStrings?: readonly string[];
  signal?: AbortSignal;
  /** Called after each prompt (for progress). Defaults to nothing. */
  onPrompt?: (done: number, total: number) => void;
}

/** One DPO training line. */
export interface PreferencePair {
  prompt: string;
  chosen: string;
  rejected: string;
  chosen_bci: number;
  rejected_bci: number;
}

export interface PreferencePairsResult {
  pairs: PreferencePair[];
  /** Prompts that yielded no pair (no completion above τ, or none clean and non-empty). */
  skipped: number;
  /** Why each skipped prompt was skipped, in prompt order. */
  skippedPrompts: { prompt: string; reason: string }[];
}

/** Samples, scores and pairs completions for every prompt (one batched rollouts call per prompt). */
export async function preferencePairs(
  model: LanguageModel,
  index: TraceIndex,
  prompts: readonly string[],
  options: PreferencePairOptions,
): Promise<PreferencePairsResult> {
  if (!(Number.isInteger(options.n) && options.n >= 2))
    throw new TillerError(
      `pairs: n must be an integer ≥ 2 (completions per prompt), got ${options.n}`,
      "bad-n",
    );
  const tau = options.tau ?? SHIELD_DEFAULTS.tau;
  if (!Number.isFinite(tau))
    throw new TillerError(`pairs: tau must be a finite number, got ${tau}`, "bad-tau");
  await index.checkModel(model);
  const result: PreferencePairsResult = { pairs: [], skipped: 0, skippedPrompts: [] };
  for (const [p, prompt] of prompts.entries()) {
    options.signal?.throwIfAborted();
    const scored = await sampleScored(model, index, prompt, tau, options);
    const pair = pairOf(prompt, scored, tau);
    if ("reason" in pair) {
      result.skipped++;
      result.skippedPrompts.push({ prompt, reason: pair.reason });
    } else result.pairs.push(pair);
    options.onPrompt?.(p + 1, prompts.length);
  }
  return result;
}

interface ScoredCompletion {
  text: string;
  bci: number;
}

async function sampleScored(
  model: LanguageModel,
  index: TraceIndex,
  prompt: string,
  tau: number,
  options: PreferencePairOptions,
): Promise<ScoredCompletion[]> {
  const tokens = await promptTokens(model, prompt);
  const rollouts = await model.rollouts(
    Array.from({ length: options.n }, (_, i) => ({
      prefix: tokens,
      seed: streamSeed(options.seed ?? 0, "pairs", i),
    })),
    {
      maxTokens: options.maxTokens ?? 64,
      temperature: options.temperature ?? 1,
      topK: options.topK,
      topP: options.topP,
      stopStrings: options.stopStrings,
      signal: options.signal,
    },
  );
  // An aborted batch returns partial completions: they must not become pairs.
  options.signal?.throwIfAborted();
  return Promise.all(
    rollouts.map(async (rollout) => {
      const { text } = rolloutText(model, tokens, rollout, options.stopStrings);
      const verdict = await traceShield(index, model, text, {
        tau,
        minLen: options.minLen ?? SHIELD_DEFAULTS.minLen,
        maxCount: options.maxCount ?? SHIELD_DEFAULTS.maxCount,
        examples: 0,
      });
      return { text, bci: verdict.maxBci };
    }),
  );
}

/**
 * The pair of one prompt: the cleanest non-empty completion at or below τ against the completion
 * with the highest BCI above τ (ties: the earliest), or why there is none.
 */
export function pairOf(
  prompt: string,
  completions: readonly ScoredCompletion[],
  tau: number,
): PreferencePair | { reason: string } {
  let chosen: ScoredCompletion | undefined;
  let rejected: ScoredCompletion | undefined;
  for (const c of completions) {
    if (c.bci <= tau && c.text.trim() !== "" && (!chosen || c.bci < chosen.bci)) chosen = c;
    if (c.bci > tau && (!rejected || c.bci > rejected.bci)) rejected = c;
  }
  if (!rejected) return { reason: `no completion has a span with BCI above τ = ${tau}` };
  if (!chosen) return { reason: `no non-empty completion stays at or below τ = ${tau}` };
  return {
    prompt,
    chosen: chosen.text,
    rejected: rejected.text,
    chosen_bci: chosen.bci,
    rejected_bci: rejected.bci,
  };
}
