import type { Token } from "../types.js";
import type { CallContext } from "./dialect.js";
import { type Completion, completionSchema, RESPONSE_FIELDS } from "./llamaServerWire.js";
import type { PieceCache } from "./pieces.js";
import type { Endpoint } from "./transport.js";
import { isValidUtf8 } from "./utf8.js";

export type Position = NonNullable<Completion["completion_probabilities"]>[number];

/**
 * Reads the raw logprobs of a known run of tokens in ONE llama-server request instead of one per
 * position: generate `tokens.length` tokens greedily under a grammar that admits exactly that
 * token sequence (GBNF token references, `<[id]>`), so the server retraces the run; `n_probs`
 * with `post_sampling_probs: false` reports each position's raw softmax (the grammar is a sampler
 * step, not applied to the logits) — the same numbers as the one-request-per-position path.
 *
 * Only tokens with text of their own go in a run (see `readable`). Should the server still leave
 * the run (it stops early, or ignores the grammar), the part it retraced is good: the caller
 * takes that and reads the next position on its own. A server that rejects the grammar (a build
 * without token references) is read one position at a time from then on.
 */
export class RunReader {
  constructor(
    private readonly endpoint: Endpoint,
    private readonly pieces: () => PieceCache | undefined,
    /** Off when asked, or after the server rejected a run request (a build without token-reference grammars). */
    private enabled: boolean,
  ) {}

  /**
   * How many leading tokens of `tokens` a run request can read: tokens with text of their own —
   * not control tokens, and valid UTF-8 alone (llama-server withholds a token that ends inside a
   * character). 0 or 1: not worth a run.
   */
  readable(tokens: readonly Token[]): number {
    if (!this.enabled) return 0;
    const pieces = this.pieces();
    let n = 0;
    for (const token of tokens) {
      const bytes = pieces?.bytesOf(token);
      if (!bytes || bytes.length === 0 || !isValidUtf8(bytes)) break;
      n++;
    }
    return n;
  }

  /**
   * The positions of `tokens` after `prompt` that the server retraced (a leading part of the run;
   * possibly none), each with its top-`nProbs`; undefined when the server rejected the request.
   */
  async read(
    prompt: readonly Token[],
    tokens: readonly Token[],
    nProbs: number,
    slot: number,
    call: CallContext,
  ): Promise<{ positions: Position[]; completion: Completion } | undefined> {
    const body = {
      prompt,
      n_predict: tokens.length,
      n_probs: nProbs,
      temperature: 0,
      samplers: ["temperature"],
      cache_prompt: true,
      post_sampling_probs: false,
      id_slot: slot,
      grammar: `root ::= ${tokens.map((t) => `<[${t}]>`).join(" ")}`,
      response_fields: RESPONSE_FIELDS,
    };
    let completion: Completion;
    try {
      completion = await this.endpoint.postJson("/completion", body, completionSchema, {
        signal: call.signal,
      });
    } catch (error) {
      // An HTTP error answer to a run is not the server's failure: read position by position
      // instead (a 500 must not make the fleet retry, or take the server out). A server that
      // rejects the grammar (4xx) is read that way from now on. Connection failures, timeouts and
      // aborts are the caller's.
      const code = (error as { code?: unknown })?.code;
      if (code === "server-rejected") this.enabled = false;
      if (code === "server-rejected" || code === "server-error") return undefined;
      throw error;
    }
    const reported = completion.completion_probabilities ?? [];
    let matched = 0;
    while (matched < tokens.length && reported[matched]?.id === tokens[matched]) matched++;
    return { positions: reported.slice(0, matched), completion };
  }
}
