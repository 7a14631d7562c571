import type { Token } from "../types.js";
import type { CallContext } from "./dialect.js";
import { type Completion, completionSchema, RESPONSE_FIELDS } from "./llamaServerWire.js";
import type { PieceCache } from "./pieces.js";
import type { Endpoint } from "./transport.js";
import { isValidUtf8 } from "./utf8.js";

export type Position = NonNullable<Completion["completion_probabilities"]>[number];

/**
 * Lifts the run's tokens above every other token, keeping their own order: 1e9 (as for one forced
 * token) would round every biased float32 logit to the same value, and the lowest id would win.
 */
const LIFT = 1000;
const decoder = new TextDecoder("utf-8");

/**
 * Reads the raw logprobs of a known run of tokens in ONE llama-server request instead of one per
 * position: generate `tokens.length` tokens greedily, constrained by a grammar that admits only
 * the run's text, with every token of the run lifted by `logit_bias`. At each position the
 * grammar leaves only tokens that continue the text and the bias puts the run's own tokens above
 * all others (among themselves in the model's order), so greedy decoding retraces the run; `n_probs` with `post_sampling_probs: false`
 * reports each position's raw softmax (grammar and bias are sampler steps, not applied to the
 * logits) — the same numbers as the one-request-per-position path.
 *
 * A run retraced only in part (two of its tokens fit the text at one position and the other had
 * the higher logit) is still good up to where it left the run: the caller takes that part and
 * reads the position where it left one request at a time.
 */
export class RunReader {
  constructor(
    private readonly endpoint: Endpoint,
    private readonly pieces: () => PieceCache | undefined,
    /** Off when asked, or after the server rejected a run request (a build without grammars). */
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
    const pieces = this.pieces();
    const text = tokens.map((t) => decoder.decode(pieces?.bytesOf(t))).join("");
    const body = {
      prompt,
      n_predict: tokens.length,
      n_probs: nProbs,
      temperature: 0,
      samplers: ["temperature"],
      cache_prompt: true,
      post_sampling_probs: false,
      id_slot: slot,
      logit_bias: [...new Set(tokens)].map((t) => [t, LIFT]),
      grammar: literalGrammar(text),
      response_fields: RESPONSE_FIELDS,
    };
    let completion: Completion;
    try {
      completion = await this.endpoint.postJson("/completion", body, completionSchema, {
        signal: call.signal,
      });
    } catch (error) {
      // A server that refuses grammars (or this one) is read one position at a time from now on;
      // connection failures, timeouts and aborts are the caller's.
      if (isRejection(error)) {
        this.enabled = false;
        return undefined;
      }
      throw error;
    }
    const reported = completion.completion_probabilities ?? [];
    let matched = 0;
    while (matched < tokens.length && reported[matched]?.id === tokens[matched]) matched++;
    return { positions: reported.slice(0, matched), completion };
  }
}

function isRejection(error: unknown): boolean {
  const e = error as { code?: unknown; retryable?: unknown };
  return e?.code === "server-rejected" && e.retryable === false;
}

/** A GBNF grammar admitting exactly `text` (every character outside printable ASCII escaped). */
export function literalGrammar(text: string): string {
  let literal = "";
  for (const char of text) {
    const code = char.codePointAt(0) as number;
    if (char === '"' || char === "\\") literal += `\\${char}`;
    else if (code >= 0x20 && code < 0x7f) literal += char;
    else if (code <= 0xffff) literal += `\\u${code.toString(16).padStart(4, "0")}`;
    else literal += `\\U${code.toString(16).padStart(8, "0")}`;
  }
  return `root ::= "${literal}"`;
}
