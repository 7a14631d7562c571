import type { Token, TokenLogprob } from "../types.js";
import type { CallContext, RequestStats } from "./dialect.js";
import { RunReader } from "./llamaServerRun.js";
import { type Completion, completionSchema, RESPONSE_FIELDS, type Timings } from "./llamaServerWire.js";
import type { PieceCache } from "./pieces.js";
import type { Endpoint } from "./transport.js";
import { isValidUtf8 } from "./utf8.js";

/** A bias no logit overcomes: forces a token so llama-server reports its raw logprob. */
const FORCE = 1e9;
/** llama-server writes log(0) as the lowest float (JSON has no -Infinity). */
const LOG_ZERO_BELOW = -1e30;

export type Position = NonNullable<Completion["completion_probabilities"]>[number];

/** A position read: the known token's raw logprob and the top entries there. */
export interface PositionRead {
  logprob: number;
  top: TokenLogprob[];
}

/**
 * Reads one position of a sequence from llama-server: an `n_predict: 1` request on the slot that
 * holds the prefix, with a token forced by `logit_bias`. `n_probs` with `post_sampling_probs:
 * false` reports the raw softmax (the bias is a sampler step, not applied to the logits), and
 * the forced token's own logprob whatever its rank.
 *
 * llama-server cannot report a generated token whose text alone is not valid UTF-8 (it withholds a
 * started character; a non-streamed answer with invalid text fails): such a token is never
 * forced — a safe token is, and the token is looked up in the distribution instead.
 */
export class PositionReader {
  /** The vocabulary's pieces, once fetched (to know which tokens cannot be reported). */
  pieces: PieceCache | undefined;
  private readonly runs: RunReader;

  constructor(
    private readonly endpoint: Endpoint,
    private readonly vocabularySize: number,
    /** A token llama-server always reports (plain ASCII). */
    private readonly safeToken: Token,
    /** Read runs of plain-text tokens in one request (RunReader). */
    runs: boolean,
  ) {
    this.runs = new RunReader(endpoint, () => this.pieces, runs);
  }

  /**
   * The raw logprobs of the leading tokens of `tokens` after `prompt`, as many as one request
   * reads (at least one): a run of plain-text tokens in one request (RunReader), else one
   * position. `cached`: how many of the read tokens the slot's cache now holds after `prompt`.
   */
  async logprobsAlong(
    prompt: readonly Token[],
    tokens: readonly Token[],
    nProbs: number,
    slot: number,
    call: CallContext,
  ): Promise<{ read: PositionRead[]; cached: number }> {
    const run = this.runs.readable(tokens);
    if (run >= 2) {
      const width = Math.min(nProbs, this.vocabularySize);
      const got = await this.runs.read(prompt, tokens.slice(0, run), width, slot, call);
      if (got) {
        countRequest(call.stats, prompt.length, got.completion.timings);
        call.stats.scoreRequests++;
        // The last generated token is never fed back, so the cache holds one fewer.
        const generated = got.completion.completion_probabilities?.length ?? 0;
        const cached = Math.max(0, Math.min(got.positions.length, generated - 1));
        if (got.positions.length > 0) {
          const read = got.positions.map((p) => ({
            logprob: logprobOf(p.logprob),
            top: p.top_logprobs.map(entry),
          }));
          return { read, cached };
        }
      }
    }
    return { read: [await this.logprobAt(prompt, tokens[0], nProbs, slot, call, true)], cached: 0 };
  }

  /** The raw logprob of `token` after `prompt`, and the top-`nProbs` there. */
  async logprobAt(
    prompt: readonly Token[],
    token: Token,
    nProbs: number,
    slot: number,
    call: CallContext,
    scoring: boolean,
  ): Promise<PositionRead> {
    if (!this.unreportable(token)) {
      const forced = await this.complete(prompt, nProbs, slot, token, call, scoring);
      if (forced && forced.id !== token)
        throw this.endpoint.failure(
          "/completion",
          `did not honour logit_bias (asked for token ${token}, got ${forced.id})`,
          "server-bad-response",
          false,
        );
      if (forced) return { logprob: logprobOf(forced.logprob), top: forced.top_logprobs.map(entry) };
    }
    for (const n of [Math.max(nProbs, 64), this.vocabularySize]) {
      const top = await this.distribution(prompt, n, slot, call, scoring);
      const own = top.find((e) => e.token === token);
      if (own) return { logprob: own.logprob, top };
    }
    throw this.endpoint.failure(
      "/completion",
      `left token ${token} out of the full distribution`,
      "server-bad-response",
      false,
    );
  }

  /** The top-`nProbs` next tokens after `prompt` (most likely first), the safe token forced. */
  async distribution(
    prompt: readonly Token[],
    nProbs: number,
    slot: number,
    call: CallContext,
    scoring: boolean,
  ): Promise<TokenLogprob[]> {
    const position = await this.complete(prompt, nProbs, slot, this.safeToken, call, scoring);
    if (!position)
      throw this.endpoint.failure(
        "/completion",
        "returned no probabilities for a forced token",
        "server-bad-response",
        false,
      );
    return position.top_logprobs.map(entry);
  }

  private unreportable(token: Token): boolean {
    const bytes = this.pieces?.bytesOf(token);
    return bytes !== undefined && !isValidUtf8(bytes);
  }

  /** One request: the reported position after `prompt` (none when the forced token was withheld). */
  private async complete(
    prompt: readonly Token[],
    nProbs: number,
    slot: number,
    force: Token,
    call: CallContext,
    scoring: boolean,
  ): Promise<Position | undefined> {
    const body = {
      ...greedyBody(prompt, Math.min(nProbs, this.vocabularySize)),
      id_slot: slot,
      logit_bias: [[force, FORCE]],
      response_fields: RESPONSE_FIELDS,
    };
    const response = await this.endpoint.postJson("/completion", body, completionSchema, {
      signal: call.signal,
    });
    countRequest(call.stats, prompt.length, response.timings);
    if (scoring) call.stats.scoreRequests++;
    return response.completion_probabilities?.[0];
  }
}

/** Greedy with the sampler chain reduced to temperature 0 (argmax after logit_bias), one token. */
export function greedyBody(prompt: readonly Token[], nProbs: number): Record<string, unknown> {
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

/** Adds one request's cost, from llama-server's timings (`cache_n`: prompt tokens from its cache). */
export function countRequest(stats: RequestStats, promptTokens: number, timings: Timings): void {
  stats.requests++;
  stats.promptTokens += promptTokens;
  stats.cachedPromptTokens += timings.cache_n;
  stats.evaluatedTokens += timings.prompt_n + Math.max(0, timings.predicted_n - 1);
}

export function logprobOf(value: number): number {
  return value < LOG_ZERO_BELOW ? Number.NEGATIVE_INFINITY : value;
}

function entry(e: { id: number; logprob: number }): TokenLogprob {
  return { token: e.id, logprob: logprobOf(e.logprob) };
}
