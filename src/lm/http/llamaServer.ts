import { basename } from "node:path";
import { z } from "zod";
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
import { SlotScheduler } from "./slots.js";
import type { Endpoint } from "./transport.js";

/**
 * The template llama-server reports when the model has none of its own (llama.cpp's
 * CHATML_TEMPLATE_SRC): then the model has no chat template as far as tiller is concerned.
 */
const CHATML_FALLBACK =
  "{%- for message in messages -%}\n  {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' -}}\n{%- endfor -%}\n{%- if add_generation_prompt -%}\n  {{- '<|im_start|>assistant\n' -}}\n{%- endif -%}";

/** A bias no logit overcomes: forces the known token so llama-server reports its raw logprob. */
const FORCE = 1e9;
/** llama-server writes log(0) as the lowest float (JSON has no -Infinity). */
const LOG_ZERO_BELOW = -1e30;
/** Ids per /tokenize request when the vocabulary's pieces are fetched. */
const PIECE_CHUNK = 8192;
/** Text tokenized on every server of a fleet: equal tokens are part of "same model". */
const FINGERPRINT_TEXT = "Once upon a time, Ünïcödé → 東京 🙂\n\tdone.";

const propsSchema = z.object({
  default_generation_settings: z.object({ n_ctx: z.number().int().positive() }),
  total_slots: z.number().int().positive(),
  model_path: z.string(),
  chat_template: z.string().optional(),
  bos_token: z.string().optional(),
  build_info: z.string().optional(),
});

const modelsSchema = z.object({
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

const tokensSchema = z.object({ tokens: z.array(z.number().int()) });
const piecesSchema = z.object({
  tokens: z.array(
    z.object({ id: z.number().int(), piece: z.union([z.string(), z.array(z.number().int())]) }),
  ),
});

const logprobSchema = z.object({
  id: z.number().int(),
  logprob: z.number(),
  bytes: z.array(z.number().int()),
});
const probsSchema = z.array(logprobSchema.extend({ top_logprobs: z.array(logprobSchema) }));
const timingsSchema = z.object({ cache_n: z.number(), prompt_n: z.number(), predicted_n: z.number() });

const completionSchema = z.object({
  completion_probabilities: probsSchema.min(1),
  timings: timingsSchema,
  stop_type: z.string().optional(),
});

const streamEventSchema = z.object({
  tokens: z.array(z.number().int()).optional(),
  completion_probabilities: probsSchema.optional(),
  stop: z.boolean().optional(),
  stop_type: z.string().optional(),
  timings: timingsSchema.optional(),
  error: z.unknown().optional(),
});

const settingsSchema = z.object({
  generation_settings: z.object({
    logit_bias: z.array(z.object({ token: z.number().int(), bias: z.number().nullable() })).optional(),
  }),
});

const RESPONSE_FIELDS = ["completion_probabilities", "timings", "stop_type"];
const STREAM_FIELDS = ["tokens", "completion_probabilities", "stop", "stop_type", "timings", "error"];

/**
 * llama.cpp's llama-server, through its native `/completion`: token-array prompts, `n_probs` raw
 * (pre-sampling) logprobs, `cache_prompt` with `id_slot` pinning (see SlotScheduler), streamed
 * rollouts that tiller stops itself, `/tokenize` `/detokenize` `/apply-template`.
 *
 * llama-server has no prompt logprobs (its `/v1/completions` has no `echo`), so scoring a known
 * continuation costs one cached `n_predict: 1` request per position, the known token forced with
 * `logit_bias` so its raw logprob is reported: `capabilities.singlePassScoring` is false.
 */
export class LlamaServerDialect implements Dialect {
  readonly multiSample = false;
  private readonly slots: SlotScheduler;

  private constructor(
    private readonly endpoint: Endpoint,
    readonly info: ServerInfo,
  ) {
    this.slots = new SlotScheduler(info.capacity);
  }

  /** Reads the model's description from a server already known to be llama-server. */
  static async open(endpoint: Endpoint, signal?: AbortSignal): Promise<LlamaServerDialect> {
    const options = { signal };
    const [props, models] = await Promise.all([
      endpoint.getJson("/props", propsSchema, options),
      endpoint.getJson("/v1/models", modelsSchema, options),
    ]);
    const meta = models.data[0].meta;
    if (!meta)
      throw endpoint.failure("/v1/models", "reports no model metadata (still loading?)", "server-busy", true);
    const tokenize = (content: string, addSpecial: boolean, parseSpecial: boolean) =>
      endpoint
        .postJson(
          "/tokenize",
          { content, add_special: addSpecial, parse_special: parseSpecial, with_pieces: true },
          piecesSchema,
          options,
        )
        .then((r) => r.tokens);
    const [withSpecial, plain, bos, probe] = await Promise.all([
      tokenize("a", true, false),
      tokenize("a", false, false),
      props.bos_token ? tokenize(props.bos_token, false, true) : Promise.resolve([]),
      tokenize(FINGERPRINT_TEXT, false, false),
    ]);
    const bosToken = bos.length === 1 ? bos[0].id : undefined;
    const addBos =
      bosToken !== undefined && withSpecial.length > plain.length && withSpecial[0].id === bosToken;
    const firstPiece = plain[0]?.piece;
    const addSpacePrefix = typeof firstPiece === "string" && firstPiece.startsWith(" ");
    const stopTokens = await endOfGenerationTokens(endpoint, bosToken ?? plain[0]?.id ?? 0, signal);
    const template = props.chat_template ?? "";
    const vocabularySize = meta.n_vocab;
    return new LlamaServerDialect(endpoint, {
      dialect: "llama-server",
      modelName: basename(props.model_path),
      fingerprint: JSON.stringify({
        vocabularySize,
        params: meta.n_params,
        embd: meta.n_embd,
        size: meta.size,
        probe: probe.map((t) => t.id),
      }),
      vocabularySize,
      contextSize: props.default_generation_settings.n_ctx,
      bosToken,
      addBos,
      addSpacePrefix,
      stopTokens,
      capacity: props.total_slots,
      capabilities: {
        maxTopK: vocabularySize,
        exactDistributions: true,
        seededSampling: true,
        prefixCache: true,
        singlePassScoring: false,
        chatTemplate: template !== "" && template !== CHATML_FALLBACK,
      },
    });
  }

  async tokenize(text: string, signal?: AbortSignal): Promise<Token[]> {
    const body = { content: text, add_special: false, parse_special: false };
    return (await this.endpoint.postJson("/tokenize", body, tokensSchema, { signal })).tokens;
  }

  async chatTokens(messages: readonly ChatMessage[], signal?: AbortSignal): Promise<Token[]> {
    const { prompt } = await this.endpoint.postJson(
      "/apply-template",
      { messages },
      z.object({ prompt: z.string() }),
      { signal },
    );
    // As llama-server's own chat endpoint does: BOS as the tokenizer wants, markup parsed as special tokens.
    const body = { content: prompt, add_special: true, parse_special: true };
    const { tokens } = await this.endpoint.postJson("/tokenize", body, tokensSchema, { signal });
    const bos = this.info.bosToken;
    if (bos !== undefined && tokens[0] === bos && tokens[1] === bos) tokens.shift();
    return tokens;
  }

  /**
   * Pieces through `/tokenize` with token ids as content (it passes them through and renders
   * `with_pieces`), then the special-looking ones are checked by forcing each once: the streamed
   * bytes are the server's special=false rendering, empty for control tokens.
   */
  async fetchPieces(tokens: readonly Token[]): Promise<Map<Token, Piece>> {
    const pieces = new Map<Token, Piece>();
    for (let start = 0; start < tokens.length; start += PIECE_CHUNK) {
      const content = tokens.slice(start, start + PIECE_CHUNK);
      const response = await this.endpoint.postJson(
        "/tokenize",
        { content, with_pieces: true },
        piecesSchema,
      );
      for (const { id, piece } of response.tokens)
        pieces.set(id, { bytes: pieceBytes(piece), control: false });
    }
    const special = [...pieces].filter(
      ([id, piece]) => id === this.info.bosToken || this.info.stopTokens.has(id) || looksSpecial(piece.bytes),
    );
    await eachLimited(special, this.info.capacity, async ([id, piece]) => {
      const rendered = await this.forcedBytes(id);
      if (rendered.length === 0) piece.control = true;
    });
    return pieces;
  }

  private async forcedBytes(token: Token): Promise<number[]> {
    const body = {
      ...greedyBody([this.info.bosToken ?? token], 1),
      logit_bias: [[token, FORCE]],
      response_fields: ["completion_probabilities"],
    };
    const response = await this.endpoint.postJson(
      "/completion",
      body,
      z.object({ completion_probabilities: probsSchema.min(1) }),
    );
    return response.completion_probabilities[0].bytes;
  }

  async next(prefix: readonly Token[], topK: number, call: CallContext): Promise<NextTokenDistribution> {
    const lease = await this.slots.acquire(prefix, call.signal);
    let holds: readonly Token[] | undefined;
    try {
      const response = await this.complete(prefix, topK, lease.slot, undefined, call);
      holds = prefix;
      return response.completion_probabilities[0].top_logprobs.map(entry);
    } finally {
      lease.release(holds);
    }
  }

  async score(
    request: ScoreRequest,
    options: { topK: number; nextTopK: number },
    call: CallContext,
  ): Promise<ScoredContinuation> {
    const { prefix, continuation } = request;
    const full = [...prefix, ...continuation];
    // One slot for the whole request: each position's prompt extends the previous one, so the
    // slot's cache holds all but the newest token.
    const lease = await this.slots.acquire(full, call.signal);
    let holds: readonly Token[] | undefined;
    try {
      const logprobs: number[] = [];
      const top: NextTokenDistribution[] = [];
      for (let i = 0; i < continuation.length; i++) {
        const prompt = full.slice(0, prefix.length + i);
        call.stats.scoreRequests++;
        const response = await this.complete(
          prompt,
          Math.max(1, options.topK),
          lease.slot,
          continuation[i],
          call,
        );
        const forced = response.completion_probabilities[0];
        if (forced.id !== continuation[i])
          throw this.endpoint.failure(
            "/completion",
            `did not honour logit_bias (asked for token ${continuation[i]}, got ${forced.id})`,
            "server-bad-response",
            false,
          );
        logprobs.push(logprobOf(forced.logprob));
        if (options.topK > 0) top.push(forced.top_logprobs.slice(0, options.topK).map(entry));
        holds = prompt;
      }
      const result: ScoredContinuation = { logprobs, logprob: logprobs.reduce((a, b) => a + b, 0) };
      if (options.topK > 0) result.top = top;
      if (options.nextTopK > 0) {
        call.stats.scoreRequests++;
        const response = await this.complete(full, options.nextTopK, lease.slot, undefined, call);
        result.next = response.completion_probabilities[0].top_logprobs.map(entry);
        holds = full;
      }
      return result;
    } finally {
      lease.release(holds);
    }
  }

  /** One `n_predict: 1` request: the distribution after `prompt` (and `force`'s raw logprob). */
  private async complete(
    prompt: readonly Token[],
    nProbs: number,
    slot: number,
    force: Token | undefined,
    call: CallContext,
  ) {
    const body: Record<string, unknown> = {
      ...greedyBody(prompt, nProbs),
      id_slot: slot,
      response_fields: RESPONSE_FIELDS,
    };
    if (force !== undefined) body.logit_bias = [[force, FORCE]];
    const response = await this.endpoint.postJson("/completion", body, completionSchema, {
      signal: call.signal,
    });
    count(call.stats, prompt.length, response.timings);
    return response;
  }

  /**
   * Streams the generation and hands each token to tiller as it arrives; when tiller's stop rule
   * (stop tokens, stop strings) fires, the connection is closed and llama-server cancels.
   */
  async rollout(call: RolloutCall): Promise<ServerStop[]> {
    if (call.samples !== 1) throw new Error("llama-server rollouts take one sample per request");
    const lease = await this.slots.acquire(call.prefix, call.signal);
    const generated: Token[] = [];
    let holds: readonly Token[] | undefined;
    try {
      const body = {
        ...samplingBody(call.sampling),
        prompt: call.prefix,
        n_predict: call.maxTokens,
        n_probs: 1,
        stream: true,
        // Timings in every event: a rollout tiller cancels still reports its prompt cache use.
        timings_per_token: true,
        cache_prompt: true,
        post_sampling_probs: false,
        id_slot: lease.slot,
        response_fields: STREAM_FIELDS,
      };
      let stop: ServerStop | undefined;
      let timings: z.infer<typeof timingsSchema> | undefined;
      await this.endpoint.postEvents(
        "/completion",
        body,
        streamEventSchema,
        (event) => {
          if (event.error !== undefined)
            throw this.endpoint.failure(
              "/completion",
              `failed mid-stream: ${JSON.stringify(event.error)}`,
              "server-error",
              true,
            );
          const tokens = event.tokens ?? [];
          const probs = event.completion_probabilities ?? [];
          timings = event.timings ?? timings;
          for (let i = 0; i < tokens.length && !stop; i++) {
            if (probs[i]?.id !== tokens[i])
              throw this.endpoint.failure(
                "/completion",
                "streamed a token without its probability",
                "server-bad-response",
                false,
              );
            generated.push(tokens[i]);
            if (!call.onToken(0, tokens[i], logprobOf(probs[i].logprob))) stop = "tiller";
          }
          if (event.stop && !stop)
            stop =
              event.stop_type === "eos"
                ? "end-of-generation"
                : event.stop_type === "word"
                  ? "stop-string"
                  : "length";
          return !stop;
        },
        { signal: call.signal },
      );
      if (!stop)
        throw this.endpoint.failure(
          "/completion",
          "closed the stream before its final event",
          "server-closed",
          true,
          true,
        );
      count(
        call.stats,
        call.prefix.length,
        timings ?? { cache_n: 0, prompt_n: call.prefix.length, predicted_n: 0 },
      );
      holds = [...call.prefix, ...generated];
      return [stop];
    } finally {
      lease.release(holds);
    }
  }

  healthy(signal?: AbortSignal): Promise<boolean> {
    return this.endpoint.ok("/health", { signal, timeoutMs: 5_000 });
  }
}

/** The end-of-generation tokens: `ignore_eos` makes llama-server list each with a -inf bias. */
async function endOfGenerationTokens(
  endpoint: Endpoint,
  token: Token,
  signal?: AbortSignal,
): Promise<Set<Token>> {
  const body = { prompt: [token], n_predict: 0, ignore_eos: true, response_fields: ["generation_settings"] };
  const response = await endpoint.postJson("/completion", body, settingsSchema, { signal });
  const biases = response.generation_settings.logit_bias ?? [];
  return new Set(biases.filter((b) => b.bias === null).map((b) => b.token));
}

/** Greedy with the sampler chain reduced to temperature 0 (argmax after logit_bias). */
function greedyBody(prompt: readonly Token[], nProbs: number): Record<string, unknown> {
  return {
    prompt,
    n_predict: 1,
    n_probs: nProbs,
    temperature: 0,
    samplers: ["temperature"],
    cache_prompt: true,
    post_sampling_probs: false,
  };
}

/** tiller's sampler (temperature, then top-k, then top-p on the tempered distribution), seeded. */
function samplingBody(sampling: SamplingOptions): Record<string, unknown> {
  const temperature = sampling.temperature ?? 0;
  if (temperature <= 0) return { temperature: 0, samplers: ["temperature"] };
  return {
    temperature,
    samplers: ["top_k", "temperature", "top_p"],
    top_k: sampling.topK ?? 0,
    top_p: sampling.topP ?? 1,
    min_keep: 1,
    seed: sampling.seed ?? 0,
  };
}

function count(stats: RequestStats, promptTokens: number, timings: z.infer<typeof timingsSchema>): void {
  stats.requests++;
  stats.promptTokens += promptTokens;
  stats.cachedPromptTokens += timings.cache_n;
  stats.evaluatedTokens += timings.prompt_n + Math.max(0, timings.predicted_n - 1);
}

function entry(e: { id: number; logprob: number }): { token: Token; logprob: number } {
  return { token: e.id, logprob: logprobOf(e.logprob) };
}

function logprobOf(value: number): number {
  return value < LOG_ZERO_BELOW ? Number.NEGATIVE_INFINITY : value;
}

function pieceBytes(piece: string | number[]): Uint8Array {
  return typeof piece === "string" ? new TextEncoder().encode(piece) : Uint8Array.from(piece);
}

/** `<s>`, `</s>`, `<|im_end|>`, `[INST]`: shapes of special tokens worth checking. */
function looksSpecial(bytes: Uint8Array): boolean {
  if (bytes.length < 3) return false;
  const first = bytes[0];
  const last = bytes[bytes.length - 1];
  return (first === 0x3c && last === 0x3e) || (first === 0x5b && last === 0x5d);
}

async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
