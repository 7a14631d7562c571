/**
 * Fluency of an output beyond its mean logprob. A search that forces a keyword in pays for it
 * in a few tokens the model finds absurd ("the sky was very s shop"); averaged over a whole
 * text that cost all but disappears, so we also look at the worst token, the share of outputs
 * holding "word salad", and repetition (a search can also loop on a phrase).
 */
import type { LanguageModel, Token } from "../lm/types.js";
import { wordSpans } from "../rewards/words.js";

/** A token the model gives less than e^-8 (≈ 1 in 3000) marks the output as word salad. */
export const SALAD_LOGPROB = -8;

/** n of the repeated n-gram share (word 4-grams). */
export const REPETITION_N = 4;

/** The least likely token of an output under the model. */
export interface MinToken {
  text: string;
  logprob: number;
  /** Position among the generated tokens (0-based). */
  index: number;
}

export interface Fluency {
  /** Mean of the per-token logprobs; null for an empty output. */
  meanLogprob: number | null;
  /** The least likely token; null for an empty output. */
  minToken: MinToken | null;
  /** Whether some token's logprob is below {@link SALAD_LOGPROB}. */
  salad: boolean;
  /** Share of the text's word 4-grams that repeat an earlier one (0 with none). */
  repetition: number;
}

/**
 * The model's logprob of every generated token given the prompt and the tokens before it, in
 * one `scoreContinuations` call — rescored rather than taken from the strategy, so every
 * strategy is judged by the same exact numbers.
 */
export async function tokenLogprobs(
  model: LanguageModel,
  promptTokens: readonly Token[],
  tokens: readonly Token[],
): Promise<number[]> {
  if (tokens.length === 0) return [];
  const [scored] = await model.scoreContinuations([{ prefix: promptTokens, continuation: tokens }]);
  return scored.logprobs;
}

/** The least likely of `logprobs` (the first on ties), or null when there are none. */
export function minLogprobIndex(logprobs: readonly number[]): number | null {
  if (logprobs.length === 0) return null;
  let min = 0;
  for (let i = 1; i < logprobs.length; i++) if (logprobs[i] < logprobs[min]) min = i;
  return min;
}

/** Share of word n-grams of `text` that repeat an earlier one (case-insensitive); 0 with none. */
export function repetitionRate(text: string, n = REPETITION_N): number {
  const words = wordSpans(text).map((s) => s.word);
  const total = words.length - n + 1;
  if (total <= 0) return 0;
  const seen = new Set<string>();
  let repeated = 0;
  for (let i = 0; i < total; i++) {
    const gram = words.slice(i, i + n).join(" ");
    if (seen.has(gram)) repeated++;
    else seen.add(gram);
  }
  return repeated / total;
}

/** The fluency figures of one output from its per-token logprobs (see {@link tokenLogprobs}). */
export function fluencyOf(
  model: LanguageModel,
  promptTokens: readonly Token[],
  tokens: readonly Token[],
  logprobs: readonly number[],
  text: string,
): Fluency {
  return {
    meanLogprob: logprobs.length ? logprobs.reduce((a, b) => a + b, 0) / logprobs.length : null,
    minToken: minTokenOf(model, promptTokens, tokens, logprobs),
    salad: logprobs.some((lp) => lp < SALAD_LOGPROB),
    repetition: repetitionRate(text),
  };
}

/** The least likely of `tokens` (whose logprobs are `logprobs`) with its text; null when empty. */
export function minTokenOf(
  model: LanguageModel,
  promptTokens: readonly Token[],
  tokens: readonly Token[],
  logprobs: readonly number[],
): MinToken | null {
  const index = minLogprobIndex(logprobs);
  if (index === null) return null;
  const before = [...promptTokens, ...tokens.slice(0, index)].slice(-4);
  return { text: model.detokenize([tokens[index]], { context: before }), logprob: logprobs[index], index };
}

/** Per-strategy fluency: means over the outputs that have tokens. */
export interface FluencySummary {
  /** Share of outputs with a token below {@link SALAD_LOGPROB}. */
  saladShare: number;
  /** Mean over outputs of each output's minimum token logprob; null with no output. */
  meanMinLogprob: number | null;
  /** Mean over outputs of the repeated 4-gram share. */
  repetition: number;
}

export function summarizeFluency(outputs: readonly Fluency[]): FluencySummary {
  const mins = outputs.map((f) => f.minToken?.logprob).filter((v): v is number => v !== undefined);
  const mean = (values: readonly number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  return {
    saladShare: outputs.length ? outputs.filter((f) => f.salad).length / outputs.length : 0,
    meanMinLogprob: mins.length ? mean(mins) : null,
    repetition: outputs.length ? mean(outputs.map((f) => f.repetition)) : 0,
  };
}
