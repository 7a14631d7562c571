import type { GenerationResult } from "../decoding/types.js";
import type { LanguageModel, Token } from "../lm/types.js";
import type { ShieldTrace } from "../provenance/shield.js";
import type { DecodePlan } from "./alignment.js";
import type { ChoiceOutcome, TokenLogprobs } from "./choice.js";

/*
 * Response bodies: OpenAI's shapes, plus the `tiller` block (what alignment did).
 */

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export function usageOf(promptTokens: number, outcomes: readonly ChoiceOutcome[]): Usage {
  const completion = outcomes.reduce((sum, o) => sum + o.result.tokens.length, 0);
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completion,
    total_tokens: promptTokens + completion,
  };
}

/** One TraceShield attempt as both the typed details and the trace record it. */
interface ShieldAttemptLike {
  verdict: string;
  maxBci: number;
  spans: readonly unknown[];
}

/**
 * TraceShield's verdicts for a choice, from the strategy's typed details (`strategy: "shield"`),
 * else from its trace's `options.shield`; undefined when the choice was not shielded.
 */
export function shieldSummary(result: GenerationResult) {
  const traced = result.trace?.options.shield as ShieldTrace | undefined;
  const details = result.details as
    | { strategy: string; refused?: boolean; tau?: number; verdicts?: readonly ShieldAttemptLike[] }
    | undefined;
  const typed = details?.strategy === "shield" ? details : undefined;
  if (!typed && !traced) return undefined;
  const attempts: readonly ShieldAttemptLike[] = typed?.verdicts ?? traced?.attempts ?? [];
  return {
    refused: typed?.refused ?? traced?.refused ?? false,
    tau: typed?.tau ?? traced?.tau ?? null,
    attempts: attempts.map((a) => ({ verdict: a.verdict, max_bci: a.maxBci, spans: a.spans.length })),
  };
}

/** What alignment did for one choice. */
export function tillerChoice(outcome: ChoiceOutcome) {
  const { result } = outcome;
  const shield = shieldSummary(result);
  return {
    index: outcome.index,
    rewards: outcome.rewards,
    score: outcome.score,
    strategy_score: result.score ?? null,
    generated_tokens: result.tokens.length,
    evaluated_tokens: outcome.usage.evaluatedTokens,
    stop_reason: result.stopReason,
    wall_ms: result.stats.wallMs,
    ...(result.details ? { details: result.details } : {}),
    ...(shield ? { shield } : {}),
    ...(result.trace ? { trace: result.trace } : {}),
  };
}

/**
 * The `tiller` block of a response: the effective settings (profile ← request, defaults filled),
 * every warning (ignored fields, degraded model calls), the first choice's reward values and
 * score, the model work done, and per-choice details.
 */
export function tillerBlock(
  plan: DecodePlan,
  warnings: readonly string[],
  outcomes: readonly ChoiceOutcome[],
  planUsage = 0,
) {
  const modelWarnings = outcomes.flatMap((o) => o.result.warnings.map((w) => `${w.code}: ${w.message}`));
  const first = outcomes[0];
  return {
    profile: plan.settings.profile,
    strategy: plan.settings.strategy,
    alignment: plan.settings,
    warnings: [...new Set([...warnings, ...modelWarnings])],
    rewards: first?.rewards ?? {},
    score: first?.score ?? null,
    evaluated_tokens: planUsage + outcomes.reduce((sum, o) => sum + o.usage.evaluatedTokens, 0),
    choices: outcomes.map(tillerChoice),
  };
}

/** Logprobs as /v1/completions returns them (`logprobs: k`). */
export function completionLogprobs(
  model: LanguageModel,
  promptTokens: readonly Token[],
  lp: TokenLogprobs | undefined,
  offset = 0,
) {
  if (!lp) return { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  const pieces = piecesOf(model, promptTokens, lp.tokens);
  const text_offset: number[] = [];
  let at = offset;
  for (const piece of pieces) {
    text_offset.push(at);
    at += piece.length;
  }
  return {
    tokens: pieces,
    token_logprobs: lp.logprobs,
    top_logprobs: lp.top
      ? lp.top.map((dist, i) =>
          Object.fromEntries(
            dist.map((entry) => [pieceOf(model, promptTokens, lp.tokens, i, entry.token), entry.logprob]),
          ),
        )
      : null,
    text_offset,
  };
}

/** Logprobs as /v1/chat/completions returns them (`logprobs: true`, `top_logprobs: k`). */
export function chatLogprobs(
  model: LanguageModel,
  promptTokens: readonly Token[],
  lp: TokenLogprobs | undefined,
) {
  if (!lp) return { content: [], refusal: null };
  const pieces = piecesOf(model, promptTokens, lp.tokens);
  const bytes = (text: string) => [...Buffer.from(text, "utf8")];
  return {
    content: pieces.map((token, i) => ({
      token,
      logprob: lp.logprobs[i],
      bytes: bytes(token),
      top_logprobs: (lp.top?.[i] ?? []).map((entry) => {
        const piece = pieceOf(model, promptTokens, lp.tokens, i, entry.token);
        return { token: piece, logprob: entry.logprob, bytes: bytes(piece) };
      }),
    })),
    refusal: null,
  };
}

/** Each generated token's text, decoded after what precedes it (leading spaces kept). */
function piecesOf(model: LanguageModel, promptTokens: readonly Token[], tokens: readonly Token[]): string[] {
  return tokens.map((_, i) => pieceOf(model, promptTokens, tokens, i, tokens[i]));
}

function pieceOf(
  model: LanguageModel,
  promptTokens: readonly Token[],
  tokens: readonly Token[],
  position: number,
  token: Token,
): string {
  const before = [...promptTokens.slice(-8), ...tokens.slice(Math.max(0, position - 8), position)].slice(-8);
  return model.detokenize([token], { context: before });
}
