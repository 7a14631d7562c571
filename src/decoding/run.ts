import { usageSince } from "../lm/types.js";
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
  const tokens = [...output.tokens];
  const logprobs = [...output.logprobs];
  if (tokens.length > 0 && model.isStopToken(tokens[tokens.length - 1])) {
    tokens.pop();
    logprobs.pop();
  }
  let text = model.detokenize(tokens, { context: context.promptTokens.slice(-8) });
  if (output.stopReason === "stop-string" && context.stopStrings?.length) {
    const cut = Math.min(...context.stopStrings.map((stop) => text.indexOf(stop)).filter((i) => i >= 0));
    if (Number.isFinite(cut)) text = text.slice(0, cut);
  }
  return {
    text,
    tokens,
    logprob: logprobs.reduce((a, b) => a + b, 0),
    stopReason: output.stopReason,
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
