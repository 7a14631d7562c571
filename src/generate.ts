import { z } from "zod";
import { beamSearch } from "./decoding/beam.js";
import { plainDecoding } from "./decoding/greedy.js";
import { runStrategy } from "./decoding/run.js";
import type { Strategy } from "./decoding/strategy.js";
import type { GenerationResult } from "./decoding/types.js";
import type { CandidateVeto } from "./decoding/veto.js";
import { TillerError } from "./errors.js";
import type { LanguageModel, Token } from "./lm/types.js";

export const generateOptionsSchema = z.object({
  prompt: z.string(),
  maxTokens: z.number().int().min(1).default(128),
  strategy: z.enum(["greedy", "sample", "beam"]).default("greedy"),
  temperature: z.number().min(0).optional(),
  topK: z.number().int().min(0).optional(),
  topP: z.number().gt(0).max(1).optional(),
  seed: z.number().int().optional(),
  beamWidth: z.number().int().min(1).default(4),
  lengthPenalty: z.number().min(0).optional(),
  stopStrings: z.array(z.string().min(1)).optional(),
});

export type GenerateOptions = z.input<typeof generateOptionsSchema> & {
  signal?: AbortSignal;
  /** Receives text as it becomes final (streaming). */
  onText?: (text: string) => void;
  /** Record a search trace in the result. */
  trace?: boolean;
  vetoes?: readonly CandidateVeto[];
};

/** Turns zod's issues into one readable line. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join(".") || "options"}: ${issue.message}`).join("; ");
}

/** Tokenizes a prompt (BOS added) and checks it leaves room to generate. */
export function promptTokens(model: LanguageModel, prompt: string): Token[] {
  const tokens = model.tokenize(prompt);
  if (tokens.length === 0) throw new TillerError("the prompt tokenizes to nothing", "empty-prompt");
  if (tokens.length >= model.contextSize)
    throw new TillerError(
      `the prompt is ${tokens.length} tokens but the context holds ${model.contextSize}; shorten it or raise --context-size`,
      "prompt-too-long",
    );
  return tokens;
}

/** Greedy, sampling or beam search on any `LanguageModel` — the library form of `tiller generate`. */
export async function generate(
  model: LanguageModel,
  options: GenerateOptions,
): Promise<GenerationResult & { score?: number }> {
  const parsed = generateOptionsSchema.safeParse(options);
  if (!parsed.success)
    throw new TillerError(`invalid generate options: ${describeIssues(parsed.error)}`, "bad-options");
  const o = parsed.data;
  let strategy: Strategy;
  if (o.strategy === "beam")
    strategy = beamSearch({ width: o.beamWidth, lengthPenalty: o.lengthPenalty, vetoes: options.vetoes });
  else
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
    promptTokens: promptTokens(model, o.prompt),
    maxTokens: o.maxTokens,
    stopStrings: o.stopStrings,
    signal: options.signal,
    onText: options.onText,
    trace: options.trace,
  });
}
