import { randomUUID } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { DecodeEvent } from "../decoding/events.js";
import type { TraceStep } from "../decoding/types.js";
import type { ChatMessage, Token } from "../lm/types.js";
import type { DecodePlan } from "./alignment.js";
import { type ChoiceJob, type ChoiceOutcome, runChoice } from "./choice.js";
import type { ServerContext } from "./context.js";
import { inDecodingSlot } from "./decodingSlot.js";
import { errorBody, toApiError } from "./errors.js";
import { chatLogprobs, completionLogprobs, tillerBlock, tillerChoice, usageOf } from "./shapes.js";
import { SseStream } from "./sse.js";

/** One prompt of a request, tokenized. */
export interface PreparedPrompt {
  /** What rewards see as the prompt. */
  text: string;
  tokens: Token[];
  /** The chat messages (chat endpoint), for the record. */
  messages?: ChatMessage[];
}

/** A validated completion or chat request, ready to decode. */
export interface GenerationJob {
  kind: "completion" | "chat";
  /** The model name as requested (echoed back). */
  model: string;
  plan: DecodePlan;
  /** Usage counters of the request's own model calls outside its choices (e.g. a judge reward). */
  planUsage: { evaluatedTokens: number };
  prompts: PreparedPrompt[];
  n: number;
  maxTokens: number;
  stop: string[];
  /** Alternatives per token for logprobs (0: chosen only); undefined: no logprobs. */
  logprobs?: number;
  echo: boolean;
  stream: boolean;
  includeUsage: boolean;
  warnings: string[];
}

/**
 * Decodes a job's choices (concurrently: the scheduler batches them with each other and with
 * other requests) once a decoding slot is free, and answers as JSON or as an SSE stream. A client
 * that goes away aborts its choices and frees its slot.
 */
export async function respond(
  context: ServerContext,
  job: GenerationJob,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<void> {
  // One failed choice stops its siblings too.
  const failed = new AbortController();
  await inDecodingSlot(
    context,
    reply,
    async (signal) => {
      try {
        if (job.stream) await streamJob(context, job, request, reply, signal, () => failed.abort());
        else await reply.send(await answerJob(context, job, signal));
      } catch (error) {
        failed.abort(error);
        throw error;
      }
    },
    [failed.signal],
  );
}

function choiceJobs(job: GenerationJob, signal: AbortSignal): (ChoiceJob & { prompt: PreparedPrompt })[] {
  return job.prompts.flatMap((prompt, p) =>
    Array.from({ length: job.n }, (_, i) => ({
      index: p * job.n + i,
      prompt,
      promptText: prompt.text,
      promptTokens: prompt.tokens,
      maxTokens: job.maxTokens,
      stopStrings: job.stop,
      signal,
      logprobs: job.logprobs,
    })),
  );
}

function header(job: GenerationJob) {
  return {
    id: `${job.kind === "chat" ? "chatcmpl" : "cmpl"}-${randomUUID()}`,
    created: Math.floor(Date.now() / 1000),
    model: job.model,
    system_fingerprint: null,
  };
}

async function answerJob(context: ServerContext, job: GenerationJob, signal: AbortSignal) {
  const jobs = choiceJobs(job, signal);
  const outcomes = await Promise.all(jobs.map((choice) => runChoice(context, job.plan, choice)));
  const promptTokens = job.prompts.reduce((sum, p) => sum + p.tokens.length, 0);
  const choices = outcomes.map((outcome, i) => {
    const { prompt } = jobs[i];
    const text = outcome.result.text;
    if (job.kind === "chat")
      return {
        index: outcome.index,
        message: { role: "assistant", content: text, refusal: null },
        logprobs:
          job.logprobs === undefined ? null : chatLogprobs(context.model, prompt.tokens, outcome.logprobs),
        finish_reason: outcome.finishReason,
      };
    const echo = job.echo ? prompt.text : "";
    return {
      index: outcome.index,
      text: echo + text,
      logprobs:
        job.logprobs === undefined
          ? null
          : completionLogprobs(context.model, prompt.tokens, outcome.logprobs, echo.length),
      finish_reason: outcome.finishReason,
    };
  });
  return {
    ...header(job),
    object: job.kind === "chat" ? "chat.completion" : "text_completion",
    choices,
    usage: usageOf(promptTokens, outcomes),
    tiller: tillerBlock(job.plan, job.warnings, outcomes, job.planUsage.evaluatedTokens),
  };
}

/**
 * Streams a job: text chunks as each choice's text becomes final, `event: tiller.step` for each
 * search step when the alignment asks for a trace, one closing chunk per choice with its
 * finish_reason and `tiller` block, the usage chunk when asked for, then `[DONE]`.
 */
async function streamJob(
  context: ServerContext,
  job: GenerationJob,
  request: FastifyRequest,
  reply: FastifyReply,
  signal: AbortSignal,
  stopSiblings: () => void,
): Promise<void> {
  reply.hijack();
  const sse = new SseStream(reply.raw, { "x-request-id": String(request.id) });
  const head = header(job);
  const object = job.kind === "chat" ? "chat.completion.chunk" : "text_completion";
  const chunk = (index: number, text: string | undefined, extra: Record<string, unknown> = {}) =>
    job.kind === "chat"
      ? {
          ...head,
          object,
          choices: [
            {
              index,
              delta: text === undefined ? {} : { content: text },
              logprobs: null,
              finish_reason: null,
              ...extra,
            },
          ],
        }
      : {
          ...head,
          object,
          choices: [{ index, text: text ?? "", logprobs: null, finish_reason: null, ...extra }],
        };
  const outcomes: ChoiceOutcome[] = [];
  try {
    await Promise.all(
      choiceJobs(job, signal).map(async (choice) => {
        if (job.kind === "chat")
          sse.send({
            ...chunk(choice.index, ""),
            choices: [
              {
                index: choice.index,
                delta: { role: "assistant", content: "" },
                logprobs: null,
                finish_reason: null,
              },
            ],
          });
        else if (job.echo) sse.send(chunk(choice.index, choice.prompt.text));
        let steps = 0;
        const sendStep = (step: TraceStep) => {
          steps++;
          sse.event("tiller.step", { object: "tiller.step", index: choice.index, step });
        };
        const onEvent = (event: DecodeEvent) => {
          if (event.type === "text" && event.text) sse.send(chunk(choice.index, event.text));
          else if (event.type === "step" && job.plan.settings.trace) sendStep(event.step);
        };
        const outcome = await runChoice(context, job.plan, { ...choice, onEvent });
        outcomes.push(outcome);
        // A strategy that records its trace without emitting steps live: send them now, in order.
        if (job.plan.settings.trace && steps === 0)
          for (const step of outcome.result.trace?.steps ?? []) sendStep(step);
        const logprobs =
          job.logprobs === undefined
            ? null
            : job.kind === "chat"
              ? chatLogprobs(context.model, choice.prompt.tokens, outcome.logprobs)
              : completionLogprobs(context.model, choice.prompt.tokens, outcome.logprobs);
        sse.send({
          ...chunk(choice.index, undefined, { finish_reason: outcome.finishReason, logprobs }),
          tiller: { ...tillerBlock(job.plan, job.warnings, [outcome]), choices: [tillerChoice(outcome)] },
        });
      }),
    );
    if (job.includeUsage) {
      const promptTokens = job.prompts.reduce((sum, p) => sum + p.tokens.length, 0);
      sse.send({ ...head, object, choices: [], usage: usageOf(promptTokens, outcomes) });
    }
    sse.done();
  } catch (error) {
    stopSiblings();
    const api = toApiError(error);
    if (api.status >= 500 && !signal.aborted)
      context.logger.error({ err: error, reqId: request.id }, "stream failed");
    sse.send(errorBody(api));
    sse.end();
  }
}
