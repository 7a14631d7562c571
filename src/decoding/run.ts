import type { ModelWarning } from "../lm/types.js";
import { usageSince } from "../lm/types.js";
import { DecodeAbortedError, decodeAborted, untilAborted } from "./aborted.js";
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
 *
 * An abort (the signal firing before or during the decode) always rejects with a
 * `DecodeAbortedError` carrying the text decoded so far, whether the strategy returned early or
 * threw; a strategy stuck on something that ignores the signal is abandoned after a short grace.
 */
export async function runStrategy(strategy: Strategy, context: DecodeContext): Promise<GenerationResult> {
  const { model, signal } = context;
  if (signal?.aborted) throw decodeAborted(signal, { text: "", tokens: [] });
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
  let output: DecodeOutput;
  try {
    output = await untilAborted(
      strategy.decode({ ...context, emit, streaming: context.streaming ?? context.emit !== undefined }),
      signal,
      () => new DecodeAbortedError("aborted", { text: streamed, tokens: [] }),
    );
  } catch (error) {
    if (!signal?.aborted) throw error;
    // What the strategy had committed (streamed) before it threw or was abandoned.
    throw decodeAborted(signal, { text: streamed, tokens: await tokensOf(model, streamed) });
  }
  const wallMs = performance.now() - started;
  const usage = usageSince(before, model.usage);
  const { text, tokens, logprob, stopReason } = rolloutText(
    model,
    context.promptTokens,
    output,
    context.stopStrings,
  );
  if (signal?.aborted) throw decodeAborted(signal, { text, tokens });
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

/** The tokens of a partial text (none when the tokenizer is unavailable: the text is what counts). */
async function tokensOf(model: DecodeContext["model"], text: string): Promise<number[]> {
  if (text === "") return [];
  try {
    return await model.tokenize(text, { addBos: false });
  } catch {
    return [];
  }
}
