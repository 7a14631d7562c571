import { usageSince } from "../lm/types.js";
import { rolloutText } from "./rolloutText.js";
import type { DecodeOutput, Strategy } from "./strategy.js";
import type { DecodeContext, GenerationResult } from "./types.js";

/**
 * Runs a strategy and measures it: the text (stop token stripped, cut at a stop string), its
 * logprob, and how many tokens the model evaluated to produce it.
 */
export async function runStrategy(
  strategy: Strategy,
  context: DecodeContext,
): Promise<GenerationResult & { score?: number }> {
  const { model } = context;
  const before = { ...model.usage };
  const started = performance.now();
  const output: DecodeOutput = await strategy.decode(context);
  const wallMs = performance.now() - started;
  const usage = usageSince(before, model.usage);
  const { text, tokens, logprob, stopReason } = rolloutText(
    model,
    context.promptTokens,
    output,
    context.stopStrings,
  );
  return {
    text,
    tokens,
    logprob,
    stopReason,
    score: output.score,
    stats: {
      promptTokens: context.promptTokens.length,
      generatedTokens: tokens.length,
      evaluatedTokens: usage.evaluatedTokens,
      wallMs: Math.round(wallMs * 10) / 10,
      usage,
    },
    trace: output.trace,
  };
}
