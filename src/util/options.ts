/**
 * The library's options contract: every public entry point checks its options against one zod
 * schema, so a wrong type, NaN, a negative count or a missing required field is a one-line
 * TillerError naming the option — never a bare TypeError from deep inside, nor a silently odd
 * run. The field schemas below are shared so the same option means the same thing everywhere.
 */
import { z } from "zod";
import { TillerError } from "../errors.js";

/** Turns zod's issues into one readable line (`maxTokens: …; stopStrings.0: …`). */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join(".") || "options"}: ${issue.message}`).join("; ");
}

/**
 * Parses `value` with `schema`, or throws a TillerError "invalid FN options: …" (code
 * "bad-options"; "empty-prompt" when the only problem is an empty prompt, like the CLI's).
 */
export function parseOptions<S extends z.ZodType>(fn: string, schema: S, value: unknown): z.output<S> {
  if (value === undefined || value === null || typeof value !== "object")
    throw new TillerError(
      `${fn}: options must be an object, got ${value === null ? "null" : typeof value}`,
      "bad-options",
    );
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues;
  const emptyPrompt = issues.every((i) => i.path.join(".") === "prompt" && i.code === "too_small");
  if (emptyPrompt)
    throw new TillerError(`${fn}: the prompt is empty; give the text to continue`, "empty-prompt");
  throw new TillerError(`invalid ${fn} options: ${describeIssues(parsed.error)}`, "bad-options");
}

/** A value of some kind that zod cannot describe structurally (a function, an object with methods). */
const custom = <T>(what: string, check: (value: unknown) => boolean) =>
  z.custom<T>(check, { message: `expected ${what}` });

type AnyFunction = (...args: never[]) => unknown;

export const fields = {
  prompt: z.string().min(1, "the prompt is empty"),
  maxTokens: z.number().int().min(1),
  stopStrings: z.array(z.string().min(1, "a stop string must not be empty")),
  signal: custom<AbortSignal>("an AbortSignal", (v) => v instanceof AbortSignal),
  callback: <F extends AnyFunction>() => custom<F>("a function", (v) => typeof v === "function"),
  object: <T>(what: string) =>
    custom<T>(what, (v) => typeof v === "object" && v !== null && !Array.isArray(v)),
  chat: z.enum(["auto", "on", "off"]),
  sampling: z
    .object({
      temperature: z.number().min(0).optional(),
      topK: z.number().int().min(0).optional(),
      topP: z.number().gt(0).max(1).optional(),
      seed: z.number().int().optional(),
    })
    .strict(),
};

/** A reward: an object with a `score` function (a `mix` of rewards is one). */
export const rewardField = custom<{ name: string; score: AnyFunction }>(
  "a reward (an object with a score function)",
  (v) => typeof v === "object" && v !== null && typeof (v as { score?: unknown }).score === "function",
);

/** The model argument of a library call: a `LanguageModel` (loadModel/openModel give one). */
export function checkModel(fn: string, model: unknown): void {
  const ok =
    typeof model === "object" &&
    model !== null &&
    typeof (model as { rollouts?: unknown }).rollouts === "function" &&
    typeof (model as { tokenize?: unknown }).tokenize === "function";
  if (!ok)
    throw new TillerError(
      `${fn}: the first argument must be a model from loadModel() or openModel(), got ${model === null ? "null" : typeof model}`,
      "bad-model",
    );
}
