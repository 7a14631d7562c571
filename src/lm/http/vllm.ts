/**
 * The vLLM dialect. vLLM cannot run on tiller's development machines (it needs a GPU), so this
 * file is tested only up to the network boundary: against request/response fixtures
 * (test/fixtures/vllm/) written from vLLM's documented OpenAI-compatible API (the
 * CompletionRequest / CompletionResponse / Tokenize* models in vllm/entrypoints/openai), replayed
 * by a loopback HTTP server — never against a running vLLM.
 */
import { z } from "zod";
import { TillerError } from "../../errors.js";
import type {
  ChatMessage,
  NextTokenDistribution,
  SamplingOptions,
  ScoredContinuation,
  ScoreRequest,
  Token,
} from "../types.js";
import type { CallContext, Dialect, RequestStats, RolloutCall, ServerInfo, ServerStop } from "./dialect.js";
import type { Piece } from "./pieces.js";
import { type Endpoint, EndpointError } from "./transport.js";

export interface VllmOptions {
  /** Token ids the model knows. Defaults to what vLLM states when asked for an out-of-range logit_bias. */
  vocabularySize?: number;
  /** The server's --max-logprobs. Defaults to what vLLM states when asked for more (20 unless raised). */
  maxLogprobs?: number;
  /** Requests sent to one vLLM server at once (it batches them itself). Defaults to 64. */
  maxConcurrency?: number;
}

/** Text tokenized on every server of a fleet: equal tokens are part of "same model". */
const FINGERPRINT_TEXT = "Once upon a time, Ünïcödé → 東京 🙂\n\tdone.";
/** An id no vocabulary reaches: vLLM's validation error then names the vocabulary size. */
const OUT_OF_RANGE = 2_147_483_647;

const modelsSchema = z.object({
  data: z
    .array(z.object({ id: z.string(), owned_by: z.string().optional(), max_model_len: z.number().int() }))
    .min(1),
});
const tokenizeSchema = z.object({ tokens: z.array(z.number().int()) });
const detokenizeSchema = z.object({ prompt: z.string() });
const topSchema = z.record(z.string(), z.number());
const logprobsSchema = z.object({
  tokens: z.array(z.string()),
  token_logprobs: z.array(z.number().nullable()),
  top_logprobs: z.array(topSchema.nullable()).nullable().optional(),
});
const promptLogprobSchema = z.record(
  z.string(),
  z.object({ logprob: z.number(), rank: z.number().nullable().optional() }),
);
const choiceSchema = z.object({
  index: z.number().int(),
  logprobs: logprobsSchema.nullable().optional(),
  finish_reason: z.string().nullable().optional(),
  stop_reason: z.union([z.string(), z.number()]).nullable().optional(),
  token_ids: z.array(z.number().int()).nullable().optional(),
  prompt_logprobs: z.array(promptLogprobSchema.nullable()).nullable().optional(),
});
const completionSchema = z.object({
  choices: z.array(choiceSchema).min(1),
  usage: z.object({
    prompt_tokens: z.number(),
    completion_tokens: z.number().nullable().optional(),
    prompt_tokens_details: z
      .object({ cached_tokens: z.number().nullable().optional() })
      .nullable()
      .optional(),
  }),
});
const tokenizerInfoSchema = z.object({
  eos_token: z
    .union([z.string(), z.object({ content: z.string() })])
    .nullable()
    .optional(),
});

type Completion = z.infer<typeof completionSchema>;

/**
 * vLLM's OpenAI-compatible server: `/v1/completions` with token-id prompts, `logprobs` (raw
 * logprobs, at most --max-logprobs per position), `prompt_logprobs` to score a known continuation
 * in one request, `n` and `seed` for samples, `return_tokens_as_token_ids`; `/tokenize` and
 * `/detokenize` for text.
 */
export class VllmDialect implements Dialect {
  readonly multiSample = true;
  private running = 0;
  private readonly queue: (() => void)[] = [];

  private constructor(
    private readonly endpoint: Endpoint,
    private readonly model: string,
    readonly info: ServerInfo,
    /** Tokens of "a" and their text: a token's piece is the text it adds after them. */
    private readonly anchor: { tokens: Token[]; text: string },
  ) {}

  static async open(
    endpoint: Endpoint,
    options: VllmOptions = {},
    signal?: AbortSignal,
  ): Promise<VllmDialect> {
    const { data } = await endpoint.getJson("/v1/models", modelsSchema, { signal });
    const card = data[0];
    const model = card.id;
    const tokenize = (prompt: string, special: boolean) =>
      endpoint
        .postJson("/tokenize", { model, prompt, add_special_tokens: special }, tokenizeSchema, { signal })
        .then((r) => r.tokens);
    const [withSpecial, plain, probe] = await Promise.all([
      tokenize("a", true),
      tokenize("a", false),
      tokenize(FINGERPRINT_TEXT, false),
    ]);
    const addBos = withSpecial.length > plain.length;
    const bosToken = addBos ? withSpecial[0] : undefined;
    const first = plain[0] ?? 0;
    const [vocabularySize, maxLogprobs, chatTemplate, anchorText, eos] = await Promise.all([
      options.vocabularySize ??
        statedLimit(
          endpoint,
          model,
          first,
          { logit_bias: { [OUT_OF_RANGE]: 0 } },
          /Vocabulary size: (\d+)/,
          "vocabularySize",
          signal,
        ),
      options.maxLogprobs ??
        statedLimit(
          endpoint,
          model,
          first,
          { logprobs: OUT_OF_RANGE },
          /max allowed: (\d+)/,
          "maxLogprobs",
          signal,
        ),
      hasChatTemplate(endpoint, model, signal),
      detokenize(endpoint, model, plain, signal),
      endOfSequence(endpoint, model, signal),
    ]);
    const doubled = await detokenize(endpoint, model, [...plain, ...plain], signal);
    const stopTokens = new Set<Token>(eos === undefined ? [] : [eos]);
    return new VllmDialect(
      endpoint,
      model,
      {
        dialect: "vllm",
        modelName: model,
        fingerprint: JSON.stringify({ model: card.id, vocabularySize, probe }),
        vocabularySize,
        contextSize: card.max_model_len,
        bosToken,
        addBos,
        addSpacePrefix: doubled.slice(anchorText.length).startsWith(" "),
        stopTokens,
        capacity: options.maxConcurrency ?? 64,
        capabilities: {
          maxTopK: Math.min(maxLogprobs, vocabularySize),
          // vLLM returns raw logprobs by default (--logprobs-mode raw_logprobs).
          exactDistributions: true,
          // vLLM's results depend on what else is batched with a request unless batch invariance is on.
          seededSampling: false,
          prefixCache: true,
          singlePassScoring: true,
          chatTemplate,
        },
      },
      { tokens: plain, text: anchorText },
    );
  }

  async tokenize(text: string, signal?: AbortSignal): Promise<Token[]> {
    const body = { model: this.model, prompt: text, add_special_tokens: false };
    return (await this.endpoint.postJson("/tokenize", body, tokenizeSchema, { signal })).tokens;
  }

  async chatTokens(messages: readonly ChatMessage[], signal?: AbortSignal): Promise<Token[]> {
    // The chat template places BOS itself, so the tokenizer adds no special tokens.
    const body = { model: this.model, messages, add_generation_prompt: true, add_special_tokens: false };
    return (await this.endpoint.postJson("/tokenize", body, tokenizeSchema, { signal })).tokens;
  }

  /** Each piece is the text a token adds after the anchor (so a leading space survives decoding). */
  async fetchPieces(tokens: readonly Token[]): Promise<Map<Token, Piece>> {
    const pieces = new Map<Token, Piece>();
    const encoder = new TextEncoder();
    await Promise.all(
      tokens.map((token) =>
        this.gated(async () => {
          const text = await detokenize(this.endpoint, this.model, [...this.anchor.tokens, token]);
          const piece = text.startsWith(this.anchor.text)
            ? text.slice(this.anchor.text.length)
            : await detokenize(this.endpoint, this.model, [token]);
          const control = token === this.info.bosToken || this.info.stopTokens.has(token);
          pieces.set(token, { bytes: encoder.encode(control ? "" : piece), control });
        }),
      ),
    );
    return pieces;
  }

  async next(prefix: readonly Token[], topK: number, call: CallContext): Promise<NextTokenDistribution> {
    const body = { ...this.greedy(prefix), logprobs: topK };
    const response = await this.complete(body, prefix.length, call);
    return topOf(response.choices[0].logprobs?.top_logprobs?.[0], topK, this.endpoint);
  }

  async score(
    request: ScoreRequest,
    options: { topK: number; nextTopK: number },
    call: CallContext,
  ): Promise<ScoredContinuation> {
    const full = [...request.prefix, ...request.continuation];
    const body: Record<string, unknown> = { ...this.greedy(full), prompt_logprobs: options.topK };
    if (options.nextTopK > 0) body.logprobs = options.nextTopK;
    call.stats.scoreRequests++;
    const response = await this.complete(body, full.length, call);
    const choice = response.choices[0];
    const logprobs: number[] = [];
    const top: NextTokenDistribution[] = [];
    request.continuation.forEach((token, j) => {
      const position = request.prefix.length + j;
      const entries = choice.prompt_logprobs?.[position];
      const own = entries?.[String(token)];
      if (!entries || !own)
        throw this.endpoint.failure(
          "/v1/completions",
          `returned no prompt logprob for position ${position} (token ${token})`,
          "server-bad-response",
          false,
        );
      logprobs.push(own.logprob);
      if (options.topK > 0) top.push(sortedTop(entries, options.topK, (e) => e.logprob));
    });
    const result: ScoredContinuation = { logprobs, logprob: logprobs.reduce((a, b) => a + b, 0) };
    if (options.topK > 0) result.top = top;
    if (options.nextTopK > 0)
      result.next = topOf(choice.logprobs?.top_logprobs?.[0], options.nextTopK, this.endpoint);
    return result;
  }

  /**
   * One request for all samples (`n`); vLLM stops on the stop strings itself, and tiller checks
   * the returned tokens again with its own rule through `onToken`.
   */
  async rollout(call: RolloutCall): Promise<ServerStop[]> {
    const body: Record<string, unknown> = {
      model: this.model,
      prompt: call.prefix,
      max_tokens: call.maxTokens,
      n: call.samples,
      ...samplingBody(call.sampling),
      logprobs: 0,
      return_tokens_as_token_ids: true,
      return_token_ids: true,
      skip_special_tokens: false,
    };
    if (call.stopStrings?.length) {
      body.stop = call.stopStrings;
      body.include_stop_str_in_output = true;
    }
    const response = await this.complete(body, call.prefix.length, call);
    const choices = [...response.choices].sort((a, b) => a.index - b.index);
    if (choices.length !== call.samples)
      throw this.endpoint.failure(
        "/v1/completions",
        `returned ${choices.length} choices for n=${call.samples}`,
        "server-bad-response",
        false,
      );
    const generated = choices.map((choice) => this.generated(choice));
    choices.forEach((choice, i) => {
      // Finished on the model's own end of sequence: its last token is one (learned for isStopToken).
      const tokens = generated[i].tokens;
      if (choice.finish_reason === "stop" && choice.stop_reason == null && tokens.length > 0)
        this.info.stopTokens.add(tokens[tokens.length - 1]);
    });
    await call.seen(generated.flatMap((g) => g.tokens));
    return choices.map((choice, sample) => {
      const { tokens, logprobs } = generated[sample];
      for (let i = 0; i < tokens.length; i++)
        if (!call.onToken(sample, tokens[i], logprobs[i])) return "tiller";
      if (choice.finish_reason === "length") return "length";
      return typeof choice.stop_reason === "string" ? "stop-string" : "end-of-generation";
    });
  }

  healthy(signal?: AbortSignal): Promise<boolean> {
    return this.endpoint.ok("/health", { signal, timeoutMs: 5_000 });
  }

  private generated(choice: z.infer<typeof choiceSchema>): { tokens: Token[]; logprobs: number[] } {
    const tokens = choice.token_ids ?? choice.logprobs?.tokens.map((t) => tokenId(t, this.endpoint)) ?? [];
    const logprobs = choice.logprobs?.token_logprobs ?? [];
    if (logprobs.length < tokens.length)
      throw this.endpoint.failure(
        "/v1/completions",
        "returned fewer logprobs than tokens",
        "server-bad-response",
        false,
      );
    return { tokens, logprobs: logprobs.map((l) => l ?? Number.NEGATIVE_INFINITY) };
  }

  private greedy(prompt: readonly Token[]): Record<string, unknown> {
    return { model: this.model, prompt, max_tokens: 1, temperature: 0, return_tokens_as_token_ids: true };
  }

  private complete(
    body: Record<string, unknown>,
    promptTokens: number,
    call: CallContext,
  ): Promise<Completion> {
    return this.gated(async () => {
      const response = await this.endpoint.postJson("/v1/completions", body, completionSchema, {
        signal: call.signal,
      });
      count(call.stats, promptTokens, response.usage);
      return response;
    }, call.signal);
  }

  /** At most `capacity` requests in flight to this server; the rest wait here, in order. */
  private async gated<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.running < this.info.capacity) this.running++;
    // A finishing request hands its place straight to the next waiter.
    else await new Promise<void>((resolve) => this.queue.push(resolve));
    try {
      signal?.throwIfAborted();
      return await task();
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.running--;
    }
  }
}

/**
 * vLLM names its limits in validation errors ("… Vocabulary size: N", "… max allowed: N"): one
 * request that exceeds the limit on purpose reads it.
 */
async function statedLimit(
  endpoint: Endpoint,
  model: string,
  token: Token,
  excess: Record<string, unknown>,
  pattern: RegExp,
  option: string,
  signal?: AbortSignal,
): Promise<number> {
  const body = { model, prompt: [token], max_tokens: 1, ...excess };
  let answer = "it accepted the request";
  try {
    await endpoint.postJson("/v1/completions", body, z.unknown(), { signal });
  } catch (error) {
    if (!(error instanceof EndpointError) || error.down) throw error;
    const match = pattern.exec(error.message);
    if (match) return Number(match[1]);
    answer = error.message.slice(error.url.length + "/v1/completions ".length);
  }
  throw new TillerError(
    `${endpoint.url} did not state its ${option} when asked (${answer}); pass ${option} explicitly`,
    "vllm-limit-unknown",
  );
}

async function hasChatTemplate(endpoint: Endpoint, model: string, signal?: AbortSignal): Promise<boolean> {
  const body = {
    model,
    messages: [{ role: "user", content: "hi" }],
    add_generation_prompt: true,
    add_special_tokens: false,
  };
  try {
    await endpoint.postJson("/tokenize", body, tokenizeSchema, { signal });
    return true;
  } catch (error) {
    if (error instanceof EndpointError && error.code === "server-rejected") return false;
    throw error;
  }
}

/** The EOS token from /tokenizer_info when the server exposes it (--enable-tokenizer-info-endpoint). */
async function endOfSequence(
  endpoint: Endpoint,
  model: string,
  signal?: AbortSignal,
): Promise<Token | undefined> {
  let eos: string | undefined;
  try {
    const info = await endpoint.getJson("/tokenizer_info", tokenizerInfoSchema, { signal });
    eos = typeof info.eos_token === "string" ? info.eos_token : info.eos_token?.content;
  } catch (error) {
    if (error instanceof EndpointError && !error.down) return undefined;
    throw error;
  }
  if (!eos) return undefined;
  const body = { model, prompt: eos, add_special_tokens: false };
  const { tokens } = await endpoint.postJson("/tokenize", body, tokenizeSchema, { signal });
  return tokens.length === 1 ? tokens[0] : undefined;
}

async function detokenize(endpoint: Endpoint, model: string, tokens: readonly Token[], signal?: AbortSignal) {
  return (await endpoint.postJson("/detokenize", { model, tokens }, detokenizeSchema, { signal })).prompt;
}

function samplingBody(sampling: SamplingOptions): Record<string, unknown> {
  const temperature = sampling.temperature ?? 0;
  if (temperature <= 0) return { temperature: 0 };
  const body: Record<string, unknown> = { temperature, top_p: sampling.topP ?? 1, seed: sampling.seed ?? 0 };
  if (sampling.topK && sampling.topK > 0) body.top_k = sampling.topK;
  return body;
}

function count(stats: RequestStats, promptTokens: number, usage: Completion["usage"]): void {
  const cached = usage.prompt_tokens_details?.cached_tokens ?? 0;
  stats.requests++;
  stats.promptTokens += promptTokens;
  stats.cachedPromptTokens += cached;
  stats.evaluatedTokens += usage.prompt_tokens - cached + Math.max(0, (usage.completion_tokens ?? 0) - 1);
}

/** "token_id:123" (return_tokens_as_token_ids) → 123. */
function tokenId(text: string, endpoint: Endpoint): Token {
  const match = /^token_id:(\d+)$/.exec(text);
  if (!match)
    throw endpoint.failure(
      "/v1/completions",
      `returned token ${JSON.stringify(text)} without its id`,
      "server-bad-response",
      false,
    );
  return Number(match[1]);
}

function topOf(
  top: Record<string, number> | null | undefined,
  k: number,
  endpoint: Endpoint,
): NextTokenDistribution {
  if (!top)
    throw endpoint.failure("/v1/completions", "returned no top_logprobs", "server-bad-response", false);
  const byId: Record<string, number> = {};
  for (const [key, logprob] of Object.entries(top)) byId[String(tokenId(key, endpoint))] = logprob;
  return sortedTop(byId, k, (logprob) => logprob);
}

function sortedTop<V>(
  entries: Record<string, V>,
  k: number,
  logprobOf: (value: V) => number,
): NextTokenDistribution {
  return Object.entries(entries)
    .map(([id, value]) => ({ token: Number(id), logprob: logprobOf(value) }))
    .sort((a, b) => b.logprob - a.logprob || a.token - b.token)
    .slice(0, k);
}
