/**
 * TraceShield (TraceAlign): refuse a completion whose verbatim corpus matches are too rare and too
 * long — when the maximum BCI over its attributed spans exceeds τ.
 *
 * Spans are {@link TraceIndex.attribute}'s maximal spans. Defaults follow the paper: τ = 20,
 * spans occurring at most 3 times; spans of at least 8 tokens (the reference code's 8-token
 * windows), which keeps short common phrases from triggering refusals.
 */
import { firstStop } from "../decoding/rolloutText.js";
import type { DecodeOutput, Strategy } from "../decoding/strategy.js";
import type { DecodeContext, SearchTrace } from "../decoding/types.js";
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
export interface ShieldAttempt {
  attempt: number;
  /** The inner strategy's name for this attempt. */
  strategy: string;
  /** The attempt's text (stop token stripped, cut at a stop string), as checked. */
  text: string;
  verdict: "pass" | "refuse";
  maxBci: number;
  /** The attributed spans, with their text (index token space, e.g. lowercased). */
  spans: { start: number; end: number; length: number; count: number; bci: number; text: string }[];
  /** The inner strategy's own trace, when the run was traced. */
  trace?: SearchTrace;
}

/** What a {@link shielded} strategy records in `SearchTrace.options.shield`. */
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
 * after the prompt (one extra evaluation; NaN for a token outside the backend's top-k), and
 * `stopReason` = "end-of-generation" (the refusal is a complete answer, nothing was cut). Those
 * tokens were not generated by the model; the trace says so (`shield.refused`).
 *
 * The returned output always carries a trace whose `options.shield` is a {@link ShieldTrace}
 * (verdict, max BCI and spans of every attempt), even when the run was not traced, so callers can
 * report the verdict; `steps` (and each attempt's inner trace) are filled only when traced.
 * Inner strategies do not stream: `onText` receives the final text once.
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
      // Inner attempts do not stream: only an accepted text (or the refusal) reaches the stream.
      const innerContext: DecodeContext = { ...context, emit: undefined };
      const attempts: ShieldAttempt[] = [];
      const traceOf = (steps: SearchTrace["steps"], refused: boolean): SearchTrace => ({
        strategy: name,
        options: {
          shield: { ...shieldOptions, regenerate, refused, attempts } satisfies ShieldTrace,
        },
        steps,
      });
      for (let attempt = 0; attempt <= regenerate; attempt++) {
        context.signal?.throwIfAborted();
        const strategy = attempt === 0 ? first : inner(attempt);
        const output = await strategy.decode(innerContext);
        const text = outputText(model, context, output);
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
          return { ...output, trace: traceOf(output.trace?.steps ?? [], false) };
        }
      }
      const refusal = options.refusal ?? DEFAULT_REFUSAL;
      const tokens = await model.tokenize(refusal, { addBos: false });
      const logprobs = await tokenLogprobs(model, context.promptTokens, tokens, context.signal);
      context.emit?.({ type: "text", text: refusal });
      return { tokens, logprobs, stopReason: "end-of-generation", trace: traceOf([], true) };
    },
  };
}

/** The text `runStrategy` will report for `output` (stop token stripped, cut at a stop string). */
function outputText(model: LanguageModel, context: DecodeContext, output: DecodeOutput): string {
  const tokens = [...output.tokens];
  if (tokens.length > 0 && model.isStopToken(tokens[tokens.length - 1])) tokens.pop();
  const text = model.detokenize(tokens, { context: context.promptTokens.slice(-8) });
  const cut = output.stopReason === "stop-string" ? firstStop(text, context.stopStrings) : -1;
  return cut >= 0 ? text.slice(0, cut) : text;
}

/** The model's logprob of each of `tokens` after `prefix`. */
async function tokenLogprobs(
  model: LanguageModel,
  prefix: readonly Token[],
  tokens: readonly Token[],
  signal?: AbortSignal,
): Promise<number[]> {
  if (tokens.length === 0) return [];
  const prefixes = tokens.map((_, i) => [...prefix, ...tokens.slice(0, i)]);
  const [scored] = await model.scoreContinuations([{ prefix, continuation: tokens }], { signal });
  return scored.logprobs;
}
