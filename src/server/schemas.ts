import { z } from "zod";
import { ApiError } from "./errors.js";

/*
 * Request bodies, validated with zod. Fields follow OpenAI's API (snake_case); tiller's own
 * settings travel in `alignment`. Unknown top-level fields are dropped and reported as warnings
 * (clients such as LangChain send fields tiller has no use for), never silently ignored.
 */

const finite = z.number().finite();

/** Prov-Decode: veto continuations that copy rare corpus spans (needs --index). */
export const provenanceSchema = z.strictObject({
  veto: z.enum(["hard", "soft"]).optional(),
  tau: finite.optional(),
  gamma: finite.positive().optional(),
  window: z.number().int().min(1).max(64).optional(),
  min_match: z.number().int().min(1).max(64).optional(),
  max_count: z.number().int().min(1).optional(),
  normalize: z.boolean().optional(),
});

/** TraceShield: refuse (or regenerate) an output whose max span BCI exceeds τ (needs --index). */
export const shieldSchema = z.strictObject({
  tau: finite.optional(),
  regenerate: z.number().int().min(0).optional(),
  refusal: z.string().optional(),
  min_len: z.number().int().min(1).max(256).optional(),
  max_count: z.number().int().min(1).optional(),
});

/** Alignment settings: what a request's `alignment` holds and what a profile names. */
export const alignmentSchema = z.strictObject({
  /** Reward specs in the CLI grammar (`keywords:dog,ball`, `2*sentiment`, …). */
  rewards: z.union([z.string().min(1), z.array(z.string().min(1))]).optional(),
  /** One weight per reward, in order (instead of WEIGHT* prefixes). */
  weights: z.array(finite).optional(),
  /** A strategy spec: `greedy`, `sample:temperature=0.7`, `bon:n=8`, `deal:k=5,l=8`, … */
  strategy: z.string().min(1).optional(),
  /** `true` for the recommended settings, `false` to turn a profile's off. */
  provenance: z.union([z.boolean(), provenanceSchema]).optional(),
  shield: z.union([z.boolean(), shieldSchema]).optional(),
  /** Return the search trace (and stream `tiller.step` events). */
  trace: z.boolean().optional(),
});

export type AlignmentSettings = z.infer<typeof alignmentSchema>;

const stop = z.union([z.string().min(1), z.array(z.string().min(1)).max(4)]).nullish();

/** Fields both completion endpoints share. */
const common = {
  model: z.string().min(1),
  max_tokens: z.number().int().min(1).nullish(),
  temperature: finite.min(0).max(2).nullish(),
  top_p: finite.gt(0).max(1).nullish(),
  /** Not OpenAI's, but llama-server's and vLLM's: keep the k most likely tokens. */
  top_k: z.number().int().min(0).nullish(),
  seed: z.number().int().nullish(),
  n: z.number().int().min(1).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullish(),
  stop,
  presence_penalty: finite.min(-2).max(2).nullish(),
  frequency_penalty: finite.min(-2).max(2).nullish(),
  logit_bias: z.record(z.string(), finite).nullish(),
  user: z.string().nullish(),
  alignment: alignmentSchema.nullish(),
};

export const completionSchema = z.object({
  ...common,
  prompt: z.union([z.string(), z.array(z.string()).min(1)]),
  logprobs: z.number().int().min(0).max(5).nullish(),
  echo: z.boolean().nullish(),
  suffix: z.string().nullish(),
  best_of: z.number().int().min(1).nullish(),
});

const textPart = z.object({ type: z.literal("text"), text: z.string() });

export const chatMessageSchema = z.object({
  role: z.enum(["system", "developer", "user", "assistant"]),
  content: z.union([z.string(), z.array(textPart)]).nullable(),
  name: z.string().optional(),
});

export const chatSchema = z.object({
  ...common,
  messages: z.array(chatMessageSchema).min(1),
  max_completion_tokens: z.number().int().min(1).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  tools: z.array(z.unknown()).nullish(),
  tool_choice: z.unknown().optional(),
  response_format: z.object({ type: z.string() }).loose().nullish(),
});

export type CompletionBody = z.infer<typeof completionSchema>;
export type ChatBody = z.infer<typeof chatSchema>;

export const scoreSchema = z.strictObject({
  /** Reward spec(s) in the CLI grammar; several are mixed as Σ wᵢ·Rᵢ. */
  reward: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  weights: z.array(finite).optional(),
  /** Φ: identity (default), log, exp:t, negexp:t. */
  transform: z.string().min(1).optional(),
  /** The reference policy C calibrates against (plain sampling of the served model). */
  reference: z
    .strictObject({
      m: z.number().int().min(2).optional(),
      temperature: finite.gt(0).optional(),
      top_k: z.number().int().min(0).optional(),
      top_p: finite.gt(0).max(1).optional(),
      seed: z.number().int().optional(),
      max_tokens: z.number().int().min(1).optional(),
      stop: z.array(z.string().min(1)).max(4).optional(),
    })
    .optional(),
  pairs: z.array(z.strictObject({ prompt: z.string(), completion: z.string() })).min(1),
});

export type ScoreBody = z.infer<typeof scoreSchema>;

export const attributeSchema = z.strictObject({
  text: z.string().min(1),
  tau: finite.optional(),
  min_len: z.number().int().min(1).max(256).optional(),
  max_count: z.number().int().min(0).optional(),
  examples: z.number().int().min(0).max(10).optional(),
});

export type AttributeBody = z.infer<typeof attributeSchema>;

export const pairsSchema = z.strictObject({
  prompts: z.array(z.string().min(1)).min(1),
  n: z.number().int().min(2).optional(),
  tau: finite.optional(),
  max_tokens: z.number().int().min(1).optional(),
  temperature: finite.gt(0).optional(),
  seed: z.number().int().optional(),
});

export type PairsBody = z.infer<typeof pairsSchema>;

/**
 * Validates a body: the parsed value, plus the names of top-level fields the schema does not
 * know (to warn about). A bad body is a 400 naming the first field at fault.
 */
export function parseBody<S extends z.ZodObject>(
  schema: S,
  body: unknown,
): { value: z.infer<S>; unknown: string[] } {
  if (typeof body !== "object" || body === null || Array.isArray(body))
    throw new ApiError(
      400,
      "the request body must be a JSON object (Content-Type: application/json)",
      "invalid_body",
    );
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue.path.map(String).join(".");
    const where = path || "body";
    const message =
      issue.code === "unrecognized_keys"
        ? `${where}: unknown field(s) ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}`
        : getPath(body, issue.path) === undefined
          ? `${where}: missing required field`
          : `${where}: ${issue.message}`;
    const param =
      issue.code === "unrecognized_keys" ? [path, issue.keys[0]].filter(Boolean).join(".") : path || null;
    throw new ApiError(400, message, "invalid_value", param);
  }
  const known = new Set(Object.keys(schema.shape));
  return { value: parsed.data, unknown: Object.keys(body).filter((key) => !known.has(key)) };
}

function getPath(value: unknown, path: readonly PropertyKey[]): unknown {
  let current = value;
  for (const key of path) {
    if (typeof current !== "object" || current === null) return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}
