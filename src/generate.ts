import { z } from "zod";
import { decodeAborted } from "./decoding/aborted.js";
import { beamSearch } from "./decoding/beam.js";
import { type DecodeEvent, streamedCall } from "./decoding/events.js";
import { plainDecoding } from "./decoding/greedy.js";
import { checkSearchWidth } from "./decoding/limits.js";
import { runStrategy } from "./decoding/run.js";
import type { Strategy } from "./decoding/strategy.js";
import type { GenerationResult } from "./decoding/types.js";
import type { CandidateVeto } from "./decoding/veto.js";
import { type ChatMode, promptTokens } from "./lm/prompt.js";
import type { LanguageModel } from "./lm/types.js";
import { checkModel, fields, parseOptions } from "./util/options.js";

export const generateOptionsSchema = z
  .object({
    prompt: fields.prompt,
    maxTokens: fields.maxTokens.default(128),
    strategy: z.enum(["greedy", "sample", "beam"]).default("greedy"),
    temperature: z.number().min(0).optional(),
    topK: z.number().int().min(0).optional(),
    topP: z.number().gt(0).max(1).optional(),
    seed: z.number().int().optional(),
    beamWidth: z.number().int().min(1).default(4),
    lengthPenalty: z.number().min(0).optional(),
    stopStrings: fields.stopStrings.optional(),
    signal: fields.signal.optional(),
    onEvent: fields.callback<(event: DecodeEvent) => void>().optional(),
    system: z.string().optional(),
    chat: fields.chat.optional(),
    trace: z.boolean().optional(),
    vetoes: z.array(fields.object<CandidateVeto>("a veto")).optional(),
  })
  .strict();

export type GenerateOptions = Omit<
  z.input<typeof generateOptionsSchema>,
  "signal" | "onEvent" | "system" | "chat" | "trace" | "vetoes"
> & {
  signal?: AbortSignal;
  /**
   * Receives the decode's events: text as it becomes final, search steps, warnings, the result.
   * Defaults to none.
   */
  onEvent?: (event: DecodeEvent) => void;
  /** A system message (chat template only). Defaults to none. */
  system?: string;
  /** Chat template: `auto` (default: when the model has one), `on`, `off`. */
  chat?: ChatMode;
  /** Record a search trace in the result. Defaults to false. */
  trace?: boolean;
  /** Hooks that drop or demote candidate tokens. Defaults to none. */
  vetoes?: readonly CandidateVeto[];
};

export { describeIssues } from "./util/options.js";

/** Greedy, sampling or beam search on any `LanguageModel` — the library form of `tiller generate`. */
export async function generate(model: LanguageModel, options: GenerateOptions): Promise<GenerationResult> {
  checkModel("generate", model);
  const o = parseOptions("generate", generateOptionsSchema, options);
  if (o.signal?.aborted) throw decodeAborted(o.signal, { text: "", tokens: [] });
  let strategy: Strategy;
  if (o.strategy === "beam") {
    checkSearchWidth("beam", "width", o.beamWidth, model);
    strategy = beamSearch({ width: o.beamWidth, lengthPenalty: o.lengthPenalty, vetoes: options.vetoes });
  } else
    strategy = plainDecoding(
      {
        temperature: o.strategy === "greedy" ? 0 : (o.temperature ?? 1),
        topK: o.topK,
        topP: o.topP,
        seed: o.seed ?? 0,
      },
      options.vetoes,
    );
  return runStrategy(strategy, {
    model,
    prompt: o.prompt,
    promptTokens: await promptTokens(model, { prompt: o.prompt, system: options.system, chat: options.chat }),
    maxTokens: o.maxTokens,
    stopStrings: o.stopStrings,
    signal: options.signal,
    emit: options.onEvent,
    trace: options.trace,
  });
}

/**
 * {@link generate} as a stream: `for await (const event of generateStream(model, options))`
 * yields text as it becomes final, search steps and warnings, and last the `result`. An error
 * rejects the iteration; leaving the loop early aborts the decode.
 */
export function generateStream(model: LanguageModel, options: GenerateOptions): AsyncIterable<DecodeEvent> {
  return streamedCall(options, (signal, onEvent) => generate(model, { ...options, signal, onEvent }));
}
