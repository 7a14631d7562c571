/**
 * TraceShield (TraceAlign): refuse a completion whose verbatim corpus matches are too rare and too
 * long — when the maximum BCI over its attributed spans exceeds τ.
 *
 * Spans are {@link TraceIndex.attribute}'s maximal spans. Defaults follow the paper: τ = 20,
 * spans occurring at most 3 times; spans of at least 8 tokens (the reference code's 8-token
 * windows), which keeps short common phrases from triggering refusals.
 */
import type { LanguageModel, Token } from "../lm/types.js";
import type { AttributedSpan, AttributeOptions, TraceIndex } from "./trace-index.js";

export interface TraceShieldOptions extends AttributeOptions {
  /** Refuse when the max span BCI exceeds this (default 20). */
  tau?: number;
}

export const SHIELD_DEFAULTS = { tau: 20, minLen: 8, maxCount: 3 } as const;

export interface ShieldVerdict {
  verdict: "pass" | "refuse";
  refuse: boolean;
  /** Max BCI over the spans (0 when there are none). */
  maxBci: number;
  tau: number;
  spans: AttributedSpan[];
  /** The tokens the spans index into (the text as the corpus was normalised). */
  tokens: Token[];
}

/** TraceShield on token ids. */
export function traceShieldTokens(
  index: TraceIndex,
  tokens: readonly Token[],
  options: TraceShieldOptions = {},
): ShieldVerdict {
  const tau = options.tau ?? SHIELD_DEFAULTS.tau;
  const spans = index.attribute(tokens, {
    minLen: options.minLen ?? SHIELD_DEFAULTS.minLen,
    maxCount: options.maxCount ?? SHIELD_DEFAULTS.maxCount,
    examples: options.examples,
  });
  const maxBci = spans.reduce((m, s) => Math.max(m, s.bci), 0);
  const refuse = maxBci > tau;
  return { verdict: refuse ? "refuse" : "pass", refuse, maxBci, tau, spans, tokens: [...tokens] };
}

/** TraceShield on a text, tokenized as the index's corpus was (lowercased if built so). */
export function traceShield(
  index: TraceIndex,
  model: LanguageModel,
  text: string,
  options: TraceShieldOptions = {},
): ShieldVerdict {
  return traceShieldTokens(index, index.tokenizeQuery(model, text), options);
}

export interface ShieldedGenerationOptions {
  /** Further attempts after a refused one (default 0: refuse at once). */
  regenerate?: number;
  /** Text returned when every attempt is refused. */
  refusal?: string;
}

export interface ShieldedGeneration<T> {
  /** The accepted output, or undefined when every attempt was refused. */
  output: T | undefined;
  /** The accepted text, or the refusal text. */
  text: string;
  refused: boolean;
  attempts: number;
  /** One verdict per attempt. */
  verdicts: ShieldVerdict[];
}

export const DEFAULT_REFUSAL = "I can't provide that: it reproduces source text too closely.";

/**
 * Strategy wrapper: run `generate(attempt)` (attempt = 0, 1, …), check its text with `check`
 * (e.g. `(t) => traceShield(index, model, t)`), and return the first accepted output; after
 * `regenerate + 1` refused attempts, return the refusal. Generic over the generator, so it wraps
 * any strategy (greedy, Best-of-N, DeAL) — pass a different seed per attempt to get new text.
 */
export async function shieldGeneration<T extends { text: string }>(
  generate: (attempt: number) => Promise<T>,
  check: (text: string) => ShieldVerdict,
  options: ShieldedGenerationOptions = {},
): Promise<ShieldedGeneration<T>> {
  const attempts = 1 + Math.max(0, Math.floor(options.regenerate ?? 0));
  const verdicts: ShieldVerdict[] = [];
  for (let attempt = 0; attempt < attempts; attempt++) {
    const output = await generate(attempt);
    const verdict = check(output.text);
    verdicts.push(verdict);
    if (!verdict.refuse)
      return { output, text: output.text, refused: false, attempts: attempt + 1, verdicts };
  }
  return { output: undefined, text: options.refusal ?? DEFAULT_REFUSAL, refused: true, attempts, verdicts };
}

/** {@link shieldGeneration} with TraceShield over `index` as the check. */
export function withTraceShield<T extends { text: string }>(
  index: TraceIndex,
  model: LanguageModel,
  generate: (attempt: number) => Promise<T>,
  options: TraceShieldOptions & ShieldedGenerationOptions = {},
): Promise<ShieldedGeneration<T>> {
  return shieldGeneration(generate, (text) => traceShield(index, model, text, options), options);
}
