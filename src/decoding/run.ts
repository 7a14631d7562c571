import type { ModelWarning } from "../lm/types.js";
import { usageSince } from "../lm/types.js";
import type { DecodeEvent } from "./events.js";
import { rolloutText } from "./rolloutText.js";
import type { DecodeOutput, Strategy } from "./strategy.js";
import type { DecodeContext, GenerationResult } from "./types.js";

/**
 * Runs a strategy and measures it: the text (stop token stripped, cut at a stop string), its
 * logprob, how many tokens the model evaluated to produce it, and every warning raised on the
 * way. The context's `emit` receives the strategy's events and, last, the `result` event.
 */
export async function runStrategy(strategy: Strategy, context: DecodeContext): Promise<GenerationResult> {
  const { model } = context;
  const warnings: ModelWarning[] = [];
  const emit = (event: DecodeEvent): void => {
    if (event.type === "warning") warnings.push(event.warning);
    context.emit?.(event);
  };
  const before = { ...model.usage };
  const started = performance.now();
  const output: DecodeOutput = await strategy.decode({ ...context, emit });
  const wallMs = performance.now() - started;
  const usage = usageSince(before, model.usage);
  const { text, tokens, logprob, stopReason } = rolloutText(
    model,
    context.promptTokens,
    output,
    context.stopStrings,
  );
  const result: GenerationResult = {
    text,
    tokens,
    logprob,
    stopReason,
    warnings,
    score: output.score,
    stats: {
      promptTokens: context.promptTokens.length,
      generatedTokens: tokens.length,
      evaluatedTokens: usage.evaluatedTokens,
      wallMs: Math.round(wallMs * 10) / 10,
      usage,
    },
    trace: output.trace,
    details: output.details,
  };
  context.emit?.({ type: "result", result });
  return result;
}
