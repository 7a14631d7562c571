/**
 * TraceShield (TraceAlign): refuse a completion whose verbatim corpus matches are too rare and too
 * long — when the maximum BCI over its attributed spans exceeds τ.
 *
 * Spans are {@link TraceIndex.attribute}'s maximal spans. Defaults follow the paper: τ = 20,
 * spans occurring at most 3 times; spans of at least 8 tokens (the reference code's 8-token
 * windows), which keeps short common phrases from triggering refusals.
 */
import { rolloutText } from "../decoding/rolloutText.js";
import type { DecodeOutput, Strategy } from "../decoding/strategy.js";
import {
  type DecodeContext,
  innerContext,
  type SearchTrace,
  type ShieldAttemptSummary,
  type StrategyDetails,
} from "../decoding/types.js";
import { TillerError } from "../errors.js";
import type { LanguageModel, Token } from "../lm/types.js";
import { queryForms } from "./query-forms.js";
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

/**
 * TraceShield on a text, tokenized as the index's corpus was (lowercased if built so). The text
 * is checked in each form its first word can take in the corpus (see ./query-forms.ts: after a
 * space, after a newline) and the verdict with the highest max BCI is returned, so a copied
 * passage is caught whether the corpus has it at a line start or mid-line.
 */
export async function traceShield(
  index: TraceIndex,
  model: LanguageModel,
  text: string,
  options: TraceShieldOptions = {},
): Promise<ShieldVerdict> {
  const verdicts = (await queryForms(index, model, text)).map((tokens) =>
    traceShieldTokens(index, tokens, options),
  );
  return verdicts.reduce((a, b) => (b.maxBci > a.maxBci ? b : a));
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
 * Generation wrapper: run `generate(attempt)` (attempt = 0, 1, …), check its text with `check`
 * (e.g. `(t) => traceShield(index, model, t)`), and return the first accepted output; after
 * `regenerate + 1` refused attempts, return the refusal. Generic over the generator, so it wraps
 * any strategy (greedy, Best-of-N, DeAL) — pass a different seed per attempt to get new text.
 * {@link shielded} is the same check as a {@link Strategy}.
 */
export async function shieldGeneration<T extends { text: string }>(
  generate: (attempt: number) => Promise<T>,
  check: (text: string) => ShieldVerdict | Promise<ShieldVerdict>,
  options: ShieldedGenerationOptions = {},
): Promise<ShieldedGeneration<T>> {
  const attempts = 1 + Math.max(0, Math.floor(options.regenerate ?? 0));
  const verdicts: ShieldVerdict[] = [];
  for (let attempt = 0; attempt < attempts; attempt++) {
    const output = await generate(attempt);
    const verdict = await check(output.text);
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

export interface ShieldedStrategyOptions extends TraceShieldOptions, ShieldedGenerationOptions {}

/** One attempt of a {@link shielded} strategy, as recorded in its trace. */
export interface ShieldAttempt extends ShieldAttemptSummary {
  attempt: number;
  /** The inner strategy's own trace, when the run was traced. */
  trace?: SearchTrace;
}

/**
 * What a {@link shielded} strategy records in its trace (`SearchTrace.options.shield`, for the
 * JSON trace file); readers use the typed `GenerationResult.details` (strategy "shield").
 */
export interface ShieldTrace {
  tau: number;
  minLen: number;
  maxCount: number;
  regenerate: number;
  refused: boolean;
  attempts: ShieldAttempt[];
}

/**
 * TraceShield as a {@link Strategy} wrapper (TraceAlign): decode with `inner(0)`, check the output
 * text with TraceShield over `index`; while it is refused and attempts remain (`regenerate`,
 * default 1), decode again with `inner(attempt)` — callers make retries differ, e.g. a new seed or
 * an added hard {@link ProvDecodeVeto} — and return the first accepted output unchanged.
 *
 * When every attempt is refused the output is the refusal text: `tokens` = the refusal tokenized
 * by the model (no BOS), `logprobs` = the model's actual log-probability of each of those tokens
 * after the prompt (one `scoreContinuations` pass), and `stopReason` = "end-of-generation" (the
 * refusal is a complete answer, nothing was cut). Those tokens were not generated by the model;
 * `details.refused` says so.
 *
 * The output's `details` (strategy "shield") give the verdict, τ and every attempt's text, max
 * BCI and spans; when the run is traced, its trace's `options.shield` is a {@link ShieldTrace},
 * which adds each attempt's inner trace. Attempts do not stream their text (it may be refused):
 * the stream receives the accepted text or the refusal once, and every attempt's steps and
 * warnings live.
 */
export function shielded(
  inner: (attempt: number) => Strategy,
  index: TraceIndex,
  options: ShieldedStrategyOptions = {},
): Strategy {
  const first = inner(0);
  const regenerate = Math.max(0, Math.floor(options.regenerate ?? 1));
  const name = `shield(${first.name})`;
  const shieldOptions = {
    tau: options.tau ?? SHIELD_DEFAULTS.tau,
    minLen: options.minLen ?? SHIELD_DEFAULTS.minLen,
    maxCount: options.maxCount ?? SHIELD_DEFAULTS.maxCount,
  };
  if (Number.isNaN(shieldOptions.tau))
    throw new TillerError("TraceShield tau must be a number, got NaN", "bad-shield-option");
  return {
    name,
    async decode(context: DecodeContext): Promise<DecodeOutput> {
      const { model } = context;
      await index.checkModel(model);
      const attempts: ShieldAttempt[] = [];
      const details = (refused: boolean, inner?: StrategyDetails): StrategyDetails => ({
        strategy: "shield",
        attempts: attempts.length,
        refused,
        ...(refused ? {} : { maxBci: attempts[attempts.length - 1].maxBci }),
        tau: shieldOptions.tau,
        verdicts: attempts.map(({ attempt: _attempt, trace: _trace, ...summary }) => summary),
        ...(inner ? { inner } : {}),
      });
      const traceOf = (steps: SearchTrace["steps"], refused: boolean): SearchTrace | undefined =>
        context.trace
          ? {
              strategy: name,
              options: { shield: { ...shieldOptions, regenerate, refused, attempts } satisfies ShieldTrace },
              steps,
            }
          : undefined;
      for (let attempt = 0; attempt <= regenerate; attempt++) {
        context.signal?.throwIfAborted();
        const strategy = attempt === 0 ? first : inner(attempt);
        const output = await strategy.decode(innerContext(context));
        const { text } = rolloutText(model, context.promptTokens, output, context.stopStrings);
        const verdict = await traceShield(index, model, text, { ...shieldOptions, examples: 0 });
        attempts.push({
          attempt,
          strategy: strategy.name,
          text,
          verdict: verdict.verdict,
          maxBci: verdict.maxBci,
          spans: verdict.spans.map(({ start, end, length, count, bci }) => ({
            start,
            end,
            length,
            count,
            bci,
            text: model.detokenize(verdict.tokens.slice(start, end)),
          })),
          trace: context.trace ? output.trace : undefined,
        });
        if (!verdict.refuse) {
          context.emit?.({ type: "text", text });
          return {
            ...output,
            trace: traceOf(output.trace?.steps ?? [], false),
            details: details(false, output.details),
          };
        }
      }
      const refusal = options.refusal ?? DEFAULT_REFUSAL;
      const tokens = await model.tokenize(refusal, { addBos: false });
      const logprobs = await tokenLogprobs(model, context, tokens);
      // The text runStrategy reports is the refusal's tokens decoded after the prompt.
      const refused: DecodeOutput = { tokens, logprobs, stopReason: "end-of-generation" };
      context.emit?.({ type: "text", text: rolloutText(model, context.promptTokens, refused).text });
      return { ...refused, trace: traceOf([], true), details: details(true) };
    },
  };
}

/** The model's logprob of each of `tokens` after the prompt (one scoring pass). */
async function tokenLogprobs(
  model: LanguageModel,
  context: DecodeContext,
  tokens: readonly Token[],
): Promise<number[]> {
  if (tokens.length === 0) return [];
  const [scored] = await model.scoreContinuations([{ prefix: context.promptTokens, continuation: tokens }], {
    signal: context.signal,
    onWarning: (warning) => context.emit?.({ type: "warning", warning }),
  });
  return scored.logprobs;
}
