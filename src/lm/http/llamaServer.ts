import { basename } from "node:path";
import { z } from "zod";
import { pickToken, seededRandom } from "../sampling.js";
import type {
  ChatMessage,
  NextTokenDistribution,
  SamplingOptions,
  ScoredContinuation,
  ScoreRequest,
  Token,
} from "../types.js";
import type { CallContext, Dialect, RequestStats, RolloutCall, ServerInfo, ServerStop } from "./dialect.js";
import {
  type Completion,
  completionSchema,
  modelsSchema,
  piecesSchema,
  propsSchema,
  RESPONSE_FIELDS,
  STREAM_FIELDS,
  settingsSchema,
  streamEventSchema,
  type Timings,
  tokensSchema,
} from "./llamaServerWire.js";
import type { Piece, PieceCache } from "./pieces.js";
import { SlotScheduler } from "./slots.js";
import type { Endpoint } from "./transport.js";
import { concatBytes, endsInsideCharacter, isValidUtf8 } from "./utf8.js";

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

type Probabilities = NonNullable<Completion["completion_probabilities"]>[number];
type Probability = Probabilities["top_logprobs"][number];

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
  private pieces: PieceCache | undefined;

  private constructor(
    private readonly endpoint: Endpoint,
    readonly info: ServerInfo,
    /** A token llama-server always reports (plain ASCII): forced to read a position's distribution. */
    private readonly safeToken: Token,
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
    const safeToken = plain[0]?.id;
    if (safeToken === undefined)
      throw endpoint.failure("/tokenize", 'tokenized "a" to nothing', "server-bad-response", false);
    return new LlamaServerDialect(
      endpoint,
      {
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
      },
      safeToken,
    );
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
      if (rendered?.length === 0) piece.control = true;
    });
    return pieces;
  }

  /** How llama-server renders `token` in generated text (undefined: it withheld the token). */
  private async forcedBytes(token: Token): Promise<number[] | undefined> {
    const body = {
      ...greedyBody([this.info.bosToken ?? token], 1),
      logit_bias: [[token, FORCE]],
      response_fields: RESPONSE_FIELDS,
    };
    const response = await this.endpoint.postJson("/completion", body, completionSchema);
    return response.completion_probabilities?.[0]?.bytes;
  }

  /** The vocabulary's pieces, once fetched: needed to recognise and recover withheld tokens. */
  attachPieces(pieces: PieceCache): void {
    this.pieces = pieces;
  }

  /**
   * Whether llama-server cannot report `token` as the first generated token: its text alone is not
   * valid UTF-8 (it withholds a started character, and a non-streamed answer whose text is invalid
   * fails with a 500).
   */
  private unreportable(token: Token): boolean {
    const bytes = this.pieces?.bytesOf(token);
    return bytes !== undefined && !isValidUtf8(bytes);
  }

  async next(prefix: readonly Token[], topK: number, call: CallContext): Promise<NextTokenDistribution> {
    const lease = await this.slots.acquire(prefix, call.signal);
    let holds: readonly Token[] | undefined;
    try {
      const top = (await this.forcedSafe(prefix, topK, lease.slot, call, false)).top_logprobs;
      holds = prefix;
      return top.map(entry);
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
        const found = await this.logprobAt(
          prompt,
          continuation[i],
          Math.max(1, options.topK),
          lease.slot,
          call,
          true,
        );
        logprobs.push(found.logprob);
        if (options.topK > 0) top.push(found.top.slice(0, options.topK).map(entry));
        holds = prompt;
      }
      const result: ScoredContinuation = { logprobs, logprob: logprobs.reduce((a, b) => a + b, 0) };
      if (options.topK > 0) result.top = top;
      if (options.nextTopK > 0) {
        result.next = (
          await this.forcedSafe(full, options.nextTopK, lease.slot, call, true)
        ).top_logprobs.map(entry);
        holds = full;
      }
      return result;
    } finally {
      lease.release(holds);
    }
  }

  /**
   * The raw logprob of `token` after `prompt`, and the top-`nProbs` there. The token itself is
   * forced with `logit_bias` (its logprob is then reported whatever its rank) unless llama-server
   * cannot report it; then a safe token is forced and `token` looked up in the top list (the
   * whole vocabulary if it must).
   */
  private async logprobAt(
    prompt: readonly Token[],
    token: Token,
    nProbs: number,
    slot: number,
    call: CallContext,
    scoring: boolean,
  ): Promise<{ logprob: number; top: Probability[] }> {
    if (!this.unreportable(token)) {
      const forced = await this.complete(prompt, nProbs, slot, token, call, scoring);
      if (forced && forced.id !== token)
        throw this.endpoint.failure(
          "/completion",
          `did not honour logit_bias (asked for token ${token}, got ${forced.id})`,
          "server-bad-response",
          false,
        );
      if (forced) return { logprob: logprobOf(forced.logprob), top: forced.top_logprobs };
    }
    for (const n of [Math.max(nProbs, 64), this.info.vocabularySize]) {
      const position = await this.forcedSafe(prompt, n, slot, call, scoring);
      const own = position.top_logprobs.find((e) => e.id === token);
      if (own) return { logprob: logprobOf(own.logprob), top: position.top_logprobs };
    }
    throw this.endpoint.failure(
      "/completion",
      `left token ${token} out of the full distribution`,
      "server-bad-response",
      false,
    );
  }

  /** The position after `prompt`, with a safe (never withheld) token forced so it is always reported. */
  private async forcedSafe(
    prompt: readonly Token[],
    nProbs: number,
    slot: number,
    call: CallContext,
    scoring: boolean,
  ): Promise<Probabilities> {
    const position = await this.complete(prompt, nProbs, slot, this.safeToken, call, scoring);
    if (!position)
      throw this.endpoint.failure(
        "/completion",
        "returned no probabilities for a forced token",
        "server-bad-response",
        false,
      );
    return position;
  }

  /** One `n_predict: 1` request: the reported position after `prompt` (none when the token was withheld). */
  private async complete(
    prompt: readonly Token[],
    nProbs: number,
    slot: number,
    force: Token,
    call: CallContext,
    scoring: boolean,
  ): Promise<Probabilities | undefined> {
    const body = {
      ...greedyBody(prompt, nProbs),
      id_slot: slot,
      logit_bias: [[force, FORCE]],
      response_fields: RESPONSE_FIELDS,
    };
    const response: Completion = await this.endpoint.postJson("/completion", body, completionSchema, {
      signal: call.signal,
    });
    count(call.stats, prompt.length, response.timings);
    if (scoring) call.stats.scoreRequests++;
    return response.completion_probabilities?.[0];
  }

  /**
   * Streams the generation and hands each token to tiller as it arrives; when tiller's stop rule
   * (stop tokens, stop strings) fires, the connection is closed and llama-server cancels. Where
   * llama-server withholds tokens (a character split across tokens: the stream cannot name them),
   * the stream is closed, the split character is generated here token by token from the server's
   * distributions, and streaming resumes after it.
   */
  async rollout(call: RolloutCall): Promise<ServerStop[]> {
    if (call.samples !== 1) throw new Error("llama-server rollouts take one sample per request");
    const lease = await this.slots.acquire(call.prefix, call.signal);
    const generated: Token[] = [];
    let holds: readonly Token[] | undefined;
    try {
      let stop: ServerStop | undefined;
      while (!stop) {
        if (generated.length >= call.maxTokens) stop = "length";
        else {
          const prompt = [...call.prefix, ...generated];
          const streamed = await this.streamSegment(
            prompt,
            call.maxTokens - generated.length,
            lease.slot,
            call,
            generated,
          );
          stop = streamed ?? (await this.stepOverSplit(lease.slot, call, generated));
        }
      }
      holds = [...call.prefix, ...generated];
      return [stop];
    } finally {
      lease.release(holds);
    }
  }

  /**
   * One streamed request from `prompt`; accepted tokens are appended to `generated`. Returns why
   * the rollout ended, or undefined when the server withheld tokens (nothing after them was taken).
   */
  private async streamSegment(
    prompt: Token[],
    budget: number,
    slot: number,
    call: RolloutCall,
    generated: Token[],
  ): Promise<ServerStop | undefined> {
    const body = {
      ...samplingBody(call.sampling, prompt.length),
      prompt,
      n_predict: budget,
      n_probs: 1,
      stream: true,
      // Timings in every event: a rollout tiller cancels still reports its prompt cache use.
      timings_per_token: true,
      cache_prompt: true,
      post_sampling_probs: false,
      id_slot: slot,
      response_fields: STREAM_FIELDS,
    };
    let stop: ServerStop | undefined;
    let withheld = false;
    let timings: Timings | undefined;
    let reported = 0;
    await this.endpoint.postEvents(
      "/completion",
      body,
      streamEventSchema,
      (event) => {
        if (event.error !== undefined) {
          const error = JSON.stringify(event.error);
          // Text ending in invalid UTF-8 fails llama-server's final parse after every token was
          // streamed: the generation itself is over, possibly with a withheld tail.
          if (!/does not match the expected/.test(error))
            throw this.endpoint.failure("/completion", `failed mid-stream: ${error}`, "server-error", true);
          if (reported >= budget) stop = "length";
          else withheld = true;
          return false;
        }
        timings = event.timings ?? timings;
        const tokens = event.tokens ?? [];
        if ((event.tokens_predicted ?? reported + tokens.length) > reported + tokens.length) {
          withheld = true;
          return false;
        }
        const probs = event.completion_probabilities ?? [];
        for (let i = 0; i < tokens.length && !stop; i++) {
          if (probs[i]?.id !== tokens[i])
            throw this.endpoint.failure(
              "/completion",
              "streamed a token without its probability",
              "server-bad-response",
              false,
            );
          reported++;
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
    count(call.stats, prompt.length, timings ?? { cache_n: 0, prompt_n: prompt.length, predicted_n: 0 });
    if (stop || withheld) return stop;
    throw this.endpoint.failure(
      "/completion",
      "closed the stream before its final event",
      "server-closed",
      true,
      true,
    );
  }

  /**
   * Generates the tokens of a split character here, one server request per token: each position's
   * distribution (a safe token forced so it is reported), then tiller's own sampler — greedy, or
   * temperature / top-k / top-p seeded like in-process. Returns why the rollout ended, if it did.
   */
  private async stepOverSplit(
    slot: number,
    call: RolloutCall,
    generated: Token[],
  ): Promise<ServerStop | undefined> {
    const { sampling } = call;
    const greedy = (sampling.temperature ?? 0) <= 0;
    const random = seededRandom(mixSeed(sampling.seed ?? 0, call.prefix.length + generated.length));
    const width = greedy ? 1 : sampling.topK && sampling.topK > 0 ? sampling.topK : this.info.vocabularySize;
    const stretch: Uint8Array[] = [];
    do {
      if (generated.length >= call.maxTokens) return "length";
      const position = await this.forcedSafe([...call.prefix, ...generated], width, slot, call, false);
      const sorted = position.top_logprobs.map(entry);
      const token = greedy ? sorted[0].token : pickToken(sorted, sampling, random);
      generated.push(token);
      if (!call.onToken(0, token, sorted.find((e) => e.token === token)?.logprob ?? Number.NaN))
        return "tiller";
      stretch.push(this.pieces?.bytesOf(token) ?? new Uint8Array(0));
    } while (endsInsideCharacter(concatBytes(stretch)));
    return undefined;
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

/**
 * tiller's sampler (temperature, then top-k, then top-p on the tempered distribution). The seed is
 * mixed with the prompt length, so a rollout continued in a later request (after a recovered
 * split character or a failover) does not replay the random stream of its first request.
 */
function samplingBody(sampling: SamplingOptions, promptLength: number): Record<string, unknown> {
  const temperature = sampling.temperature ?? 0;
  if (temperature <= 0) return { temperature: 0, samplers: ["temperature"] };
  return {
    temperature,
    samplers: ["top_k", "temperature", "top_p"],
    top_k: sampling.topK ?? 0,
    top_p: sampling.topP ?? 1,
    min_keep: 1,
    seed: mixSeed(sampling.seed ?? 0, promptLength),
  };
}

function count(stats: RequestStats, promptTokens: number, timings: Timings): void {
  stats.requests++;
  stats.promptTokens += promptTokens;
  stats.cachedPromptTokens += timings.cache_n;
  stats.evaluatedTokens += timings.prompt_n + Math.max(0, timings.predicted_n - 1);
}

/** A 32-bit seed from a rollout's seed and where in the sequence a request starts. */
function mixSeed(seed: number, position: number): number {
  return (Math.imul((seed ^ position) >>> 0, 0x9e3779b1) >>> 0) % 0xffffffff;
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
