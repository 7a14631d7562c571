import { z } from "zod";
import type {
  ChatMessage,
  NextTokenDistribution,
  ScoredContinuation,
  ScoreRequest,
  Token,
} from "../types.js";
import type { CallContext, Dialect, RolloutCall, ServerInfo, ServerStop } from "./dialect.js";
import { describeLlamaServer, fetchLlamaServerPieces } from "./llamaServerOpen.js";
import { PositionReader } from "./llamaServerPositions.js";
import { StreamedRollout } from "./llamaServerStream.js";
import { tokensSchema } from "./llamaServerWire.js";
import type { Piece, PieceCache } from "./pieces.js";
import { SlotScheduler } from "./slots.js";
import type { Endpoint } from "./transport.js";

export interface LlamaServerOptions {
  /**
   * Score a run of plain-text tokens in one grammar-constrained request (RunReader) instead of one
   * request per position; false reads every position on its own (for comparison). Defaults to true.
   */
  scoreRuns?: boolean;
}

/**
 * llama.cpp's llama-server, through its native `/completion`: token-array prompts, `n_probs` raw
 * (pre-sampling) logprobs, `cache_prompt` with `id_slot` pinning (SlotScheduler: a request goes to
 * the slot whose cache holds the most of its prefix), streamed rollouts that tiller stops itself,
 * `/tokenize` `/apply-template`.
 *
 * llama-server has no prompt logprobs (its `/v1/completions` has no `echo`), so a known
 * continuation is scored by generating it: a run of plain-text tokens in one request, greedy under
 * a grammar of the run's token ids (RunReader), any other token in a cached `n_predict: 1`
 * request with the token forced by `logit_bias` (PositionReader) — raw logprobs either way. Still
 * not one pass for every continuation: `capabilities.singlePassScoring` is false.
 */
export class LlamaServerDialect implements Dialect {
  readonly multiSample = false;
  private readonly slots: SlotScheduler;
  private readonly positions: PositionReader;

  private constructor(
    private readonly endpoint: Endpoint,
    readonly info: ServerInfo,
    safeToken: Token,
    options: LlamaServerOptions,
  ) {
    this.slots = new SlotScheduler(info.capacity);
    this.positions = new PositionReader(endpoint, info.vocabularySize, safeToken, options.scoreRuns ?? true);
  }

  /** Reads the model's description from a server already known to be llama-server. */
  static async open(
    endpoint: Endpoint,
    options: LlamaServerOptions = {},
    signal?: AbortSignal,
  ): Promise<LlamaServerDialect> {
    const { info, safeToken } = await describeLlamaServer(endpoint, signal);
    return new LlamaServerDialect(endpoint, info, safeToken, options);
  }

  async tokenize(text: string, signal?: AbortSignal): Promise<Token[]> {
    const body = { content: text, add_special: false, parse_special: false };
    return (await this.endpoint.postJson("/tokenize", body, tokensSchema, { signal })).tokens;
  }

  async chatTokens(messages: readonly ChatMessage[], signal?: AbortSignal): Promise<Token[]> {
    const template = z.object({ prompt: z.string() });
    const { prompt } = await this.endpoint.postJson("/apply-template", { messages }, template, { signal });
    // As llama-server's own chat endpoint does: BOS as the tokenizer wants, markup parsed as special tokens.
    const body = { content: prompt, add_special: true, parse_special: true };
    const { tokens } = await this.endpoint.postJson("/tokenize", body, tokensSchema, { signal });
    const bos = this.info.bosToken;
    if (bos !== undefined && tokens[0] === bos && tokens[1] === bos) tokens.shift();
    return tokens;
  }

  fetchPieces(tokens: readonly Token[]): Promise<Map<Token, Piece>> {
    return fetchLlamaServerPieces(this.endpoint, this.info, tokens);
  }

  attachPieces(pieces: PieceCache): void {
    this.positions.pieces = pieces;
  }

  async next(prefix: readonly Token[], topK: number, call: CallContext): Promise<NextTokenDistribution> {
    const lease = await this.slots.acquire(prefix, call.signal);
    let holds: readonly Token[] | undefined;
    try {
      const top = await this.positions.distribution(prefix, topK, lease.slot, call, false);
      holds = prefix;
      return top;
    } finally {
      lease.release(holds);
    }
  }

  /**
   * In order on one slot, each prompt extending the previous one so the slot's cache holds it: a
   * run of plain-text tokens in one request (PositionReader.logprobsAlong), any other token (and
   * `next`) one request each.
   */
  async score(
    request: ScoreRequest,
    options: { topK: number; nextTopK: number },
    call: CallContext,
  ): Promise<ScoredContinuation> {
    const { prefix, continuation } = request;
    const full = [...prefix, ...continuation];
    const lease = await this.slots.acquire(full, call.signal);
    let holds: readonly Token[] | undefined;
    try {
      const logprobs: number[] = [];
      const top: NextTokenDistribution[] = [];
      const width = Math.max(1, options.topK);
      for (let i = 0; i < continuation.length; ) {
        const prompt = full.slice(0, prefix.length + i);
        const rest = continuation.slice(i);
        const { read, cached } = await this.positions.logprobsAlong(prompt, rest, width, lease.slot, call);
        for (const found of read) {
          logprobs.push(found.logprob);
          if (options.topK > 0) top.push(found.top.slice(0, options.topK));
        }
        holds = full.slice(0, prefix.length + i + cached);
        i += read.length;
      }
      const result: ScoredContinuation = { logprobs, logprob: logprobs.reduce((a, b) => a + b, 0) };
      if (options.topK > 0) result.top = top;
      if (options.nextTopK > 0) {
        result.next = await this.positions.distribution(full, options.nextTopK, lease.slot, call, true);
        holds = full;
      }
      return result;
    } finally {
      lease.release(holds);
    }
  }

  async rollout(call: RolloutCall): Promise<ServerStop[]> {
    if (call.samples !== 1) throw new Error("llama-server rollouts take one sample per request");
    const lease = await this.slots.acquire(call.prefix, call.signal);
    const rollout = new StreamedRollout(this.endpoint, this.positions, lease.slot, call);
    let holds: readonly Token[] | undefined;
    try {
      const stop = await rollout.run();
      holds = [...call.prefix, ...rollout.generated];
      return [stop];
    } finally {
      lease.release(holds);
    }
  }

  healthy(signal?: AbortSignal): Promise<boolean> {
    return this.endpoint.ok("/health", { signal, timeoutMs: 5_000 });
  }
}
