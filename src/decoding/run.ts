import type { ModelWarning } from "../lm/types.js";
import { usageSince } from "../lm/types.js";
import type { DecodeEvent } from "./events.js";
import { rolloutText } from "./rolloutText.js";
import type { DecodeOutput, Strategy } from "./strategy.js";
import type { DecodeContext, GenerationResult } from "./types.js";

/**
 * Runs a strategy and measures it: the text (stop token stripped, cut at a stop string), its
 * logprob, how many tokens the model evaluated to produce it, and every warning raised on the
 * way. The context's `emit` receives the strategy's events (each distinct warning once), then
 * whatever final text the strategy had not streamed yet (Best-of-N's chosen sample, the rest of
 * beam search's best hypothesis), and last the `result` event — so the `text` events always add
 * up to `result.text`.
 */
export async function runStrategy(strategy: Strategy, context: DecodeContext): Promise<GenerationResult> {
  const { model } = context;
  const warnings: ModelWarning[] = [];
  const seen = new Set<string>();
  let streamed = "";
  const emit = (event: DecodeEvent): void => {
    if (event.type === "warning") {
      const key = `${event.warning.code}\u0000${event.warning.message}`;
      if (seen.has(key)) return;
      seen.add(key);
      warnings.push(event.warning);
    } else if (event.type === "text") {
      if (event.text === "") return;
      streamed += event.text;
    }
    context.emit?.(event);
  };
  const before = { ...model.usage };
  const started = performance.now();
  const output: DecodeOutput = await strategy.decode({
    ...context,
    emit,
    streaming: context.streaming ?? context.emit !== undefined,
  });
  const wallMs = performance.now() - started;
  const usage = usageSince(before, model.usage);
  const { text, tokens, logprob, stopReason } = rolloutText(
    model,
    context.promptTokens,
    output,
    context.stopStrings,
  );
  if (text.startsWith(streamed)) emit({ type: "text", text: text.slice(streamed.length) });
  else
    emit({
      type: "warning",
      warning: {
        code: "stream-diverged",
        message: `${strategy.name} streamed text that is not a prefix of its result; trust result.text`,
      },
    });
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
