import type { FastifyInstance } from "fastify";
import { promptTokens } from "../../lm/prompt.js";
import type { ChatMessage } from "../../lm/types.js";
import { planDecode } from "../alignment.js";
import type { ServerContext } from "../context.js";
import { ApiError, toApiError } from "../errors.js";
import { type GenerationJob, type PreparedPrompt, respond } from "../generation.js";
import { checkLimit } from "../limits.js";
import { type ChatBody, type CompletionBody, chatSchema, completionSchema, parseBody } from "../schemas.js";

/** Default max_tokens: OpenAI's for /v1/completions; a story's worth for chat. */
const DEFAULT_MAX_TOKENS = { completion: 16, chat: 256 } as const;

/** POST /v1/completions and POST /v1/chat/completions. */
export function registerCompletionRoutes(app: FastifyInstance, context: ServerContext): void {
  app.post("/v1/completions", async (request, reply) => {
    const { value: body, unknown } = parseBody(completionSchema, request.body);
    const job = await prepareCompletion(context, body, unknown);
    await respond(context, job, request, reply);
  });
  app.post("/v1/chat/completions", async (request, reply) => {
    const { value: body, unknown } = parseBody(chatSchema, request.body);
    const job = await prepareChat(context, body, unknown);
    await respond(context, job, request, reply);
  });
}

async function prepareCompletion(
  context: ServerContext,
  body: CompletionBody,
  unknown: string[],
): Promise<GenerationJob> {
  if (body.suffix) throw new ApiError(400, "suffix is not supported", "unsupported_parameter", "suffix");
  if ((body.best_of ?? 1) > 1)
    throw new ApiError(
      400,
      'best_of is not supported; use "alignment": {"strategy": "bon:n=N", "rewards": [...]} for reward-ranked Best-of-N',
      "unsupported_parameter",
      "best_of",
    );
  const texts = typeof body.prompt === "string" ? [body.prompt] : body.prompt;
  const job = await prepareCommon(context, body, unknown, "completion", texts.length);
  job.prompts = await Promise.all(
    texts.map(
      async (text): Promise<PreparedPrompt> => ({
        text,
        tokens: await tokensAt("prompt", () => promptTokens(context.model, { prompt: text, chat: "off" })),
      }),
    ),
  );
  job.logprobs = body.logprobs ?? undefined;
  job.echo = body.echo ?? false;
  return job;
}

async function prepareChat(
  context: ServerContext,
  body: ChatBody,
  unknown: string[],
): Promise<GenerationJob> {
  if (body.tools?.length)
    throw new ApiError(400, "tools are not supported", "unsupported_parameter", "tools");
  if (body.response_format && body.response_format.type !== "text")
    throw new ApiError(
      400,
      `response_format ${JSON.stringify(body.response_format.type)} is not supported (only "text")`,
      "unsupported_parameter",
      "response_format",
    );
  const job = await prepareCommon(context, body, unknown, "chat", 1, body.max_completion_tokens);
  const messages: ChatMessage[] = body.messages.map((message) => ({
    role: message.role === "developer" ? "system" : message.role,
    content:
      typeof message.content === "string"
        ? message.content
        : (message.content ?? []).map((part) => part.text).join(""),
  }));
  const lastUser = [...messages].reverse().find((message) => message.role === "user");
  job.prompts = [
    {
      text: lastUser?.content ?? "",
      messages,
      tokens: await tokensAt("messages", () => promptTokens(context.model, { messages, chat: "on" })),
    },
  ];
  if (body.logprobs) job.logprobs = body.top_logprobs ?? 0;
  else if (body.top_logprobs)
    throw new ApiError(400, "top_logprobs needs logprobs: true", "invalid_value", "top_logprobs");
  return job;
}

/** What both endpoints share: model/profile, limits, the alignment plan, warnings. */
async function prepareCommon(
  context: ServerContext,
  body: CompletionBody | ChatBody,
  unknown: string[],
  kind: "completion" | "chat",
  promptCount: number,
  maxCompletionTokens?: number | null,
): Promise<GenerationJob> {
  const profile = context.resolveModel(body.model);
  const maxTokens =
    body.max_tokens ?? maxCompletionTokens ?? Math.min(DEFAULT_MAX_TOKENS[kind], context.limits.maxTokens);
  checkLimit(context.limits, "maxTokens", maxTokens, "max_tokens", "max_tokens");
  const n = body.n ?? 1;
  checkLimit(context.limits, "choices", n * promptCount, "choices (n × prompts)", "n");
  const planModel = context.view();
  const plan = planDecode(profile, body.alignment, body, {
    model: planModel,
    index: context.index,
    limits: context.limits,
    randomSeed: () => context.randomSeed(),
  });
  const warnings = [...plan.warnings];
  for (const field of unknown) warnings.push(`unknown field "${field}" ignored`);
  if (body.presence_penalty) warnings.push("presence_penalty is not supported; ignored");
  if (body.frequency_penalty) warnings.push("frequency_penalty is not supported; ignored");
  if (body.logit_bias && Object.keys(body.logit_bias).length > 0)
    warnings.push("logit_bias is not supported; ignored");
  if (n > 1 && !plan.samples)
    warnings.push(
      `n = ${n}: strategy "${plan.settings.strategy}" does not sample, so the choices are identical`,
    );
  const stop =
    body.stop === undefined || body.stop === null
      ? []
      : typeof body.stop === "string"
        ? [body.stop]
        : body.stop;
  return {
    kind,
    model: body.model,
    plan,
    planUsage: planModel.usage,
    prompts: [],
    n,
    maxTokens,
    stop,
    echo: false,
    stream: body.stream ?? false,
    includeUsage: body.stream_options?.include_usage ?? false,
    warnings,
  };
}

/** Prompt tokens; a prompt that does not fit is a 400 naming the sizes and the field. */
async function tokensAt<T>(param: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw toApiError(error, param);
  }
}
