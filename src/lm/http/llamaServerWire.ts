/** The parts of llama-server's JSON that tiller reads (checked with zod; extra fields ignored). */
import { z } from "zod";

export const propsSchema = z.object({
  default_generation_settings: z.object({ n_ctx: z.number().int().positive() }),
  total_slots: z.number().int().positive(),
  model_path: z.string(),
  chat_template: z.string().optional(),
  bos_token: z.string().optional(),
});

export const modelsSchema = z.object({
  data: z
    .array(
      z.object({
        id: z.string(),
        meta: z
          .object({
            n_vocab: z.number().int().positive(),
            n_params: z.number().optional(),
            n_embd: z.number().optional(),
            size: z.number().optional(),
          })
          .nullable()
          .optional(),
      }),
    )
    .min(1),
});

export const tokensSchema = z.object({ tokens: z.array(z.number().int()) });

/** /tokenize with `with_pieces`: a piece is text, or its bytes when they are not valid UTF-8. */
export const piecesSchema = z.object({
  tokens: z.array(
    z.object({ id: z.number().int(), piece: z.union([z.string(), z.array(z.number().int())]) }),
  ),
});

const logprobSchema = z.object({
  id: z.number().int(),
  logprob: z.number(),
  bytes: z.array(z.number().int()),
});
export const probsSchema = z.array(logprobSchema.extend({ top_logprobs: z.array(logprobSchema) }));
export const timingsSchema = z.object({ cache_n: z.number(), prompt_n: z.number(), predicted_n: z.number() });
export type Timings = z.infer<typeof timingsSchema>;

/** `completion_probabilities` is missing when the generated token was withheld (see utf8.ts). */
export const completionSchema = z.object({
  completion_probabilities: probsSchema.optional(),
  timings: timingsSchema,
});
export type Completion = z.infer<typeof completionSchema>;

/** One event of a streamed /completion (partial events carry one token each). */
export const streamEventSchema = z.object({
  content: z.string().optional(),
  tokens: z.array(z.number().int()).optional(),
  tokens_predicted: z.number().int().optional(),
  completion_probabilities: probsSchema.optional(),
  stop: z.boolean().optional(),
  stop_type: z.string().optional(),
  timings: timingsSchema.optional(),
  error: z.unknown().optional(),
});
export type StreamEvent = z.infer<typeof streamEventSchema>;

export const settingsSchema = z.object({
  generation_settings: z.object({
    logit_bias: z.array(z.object({ token: z.number().int(), bias: z.number().nullable() })).optional(),
  }),
});

export const RESPONSE_FIELDS = ["completion_probabilities", "timings"];
export const STREAM_FIELDS = [
  "tokens",
  "tokens_predicted",
  "completion_probabilities",
  "stop",
  "stop_type",
  "timings",
  "error",
];
