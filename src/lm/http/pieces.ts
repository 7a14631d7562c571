import { TillerError } from "../../errors.js";
import type { Token } from "../types.js";
import { concatBytes } from "./utf8.js";

/** The text of one token as the server's tokenizer renders it. */
export interface Piece {
  bytes: Uint8Array;
  /** A control or unknown token: it renders as nothing in text (llama.cpp's special=false). */
  control: boolean;
}

/** Fetches the pieces of the given ids from a server. */
export type PieceFetcher = (ids: readonly Token[]) => Promise<Map<Token, Piece>>;

const decoder = new TextDecoder("utf-8");

/**
 * The text of every token a remote model has handed out, fetched once per token id, so
 * `detokenize` — called for every streamed token — is synchronous and never waits on the network.
 *
 * Decoding follows llama.cpp's `llama_detokenize` (what the in-process backend uses): pieces are
 * concatenated as bytes, control tokens render as nothing, and with a SentencePiece-style space
 * prefix the first token loses one leading space.
 */
export class PieceCache {
  private readonly pieces = new Map<Token, Piece>();
  private readonly pending = new Map<Token, Promise<void>>();

  constructor(
    /** The tokenizer adds a space before the first word (SentencePiece), so decoding drops it. */
    private readonly addSpacePrefix: boolean,
    private readonly bosToken: Token | undefined,
    private readonly fetch: PieceFetcher,
  ) {}

  get size(): number {
    return this.pieces.size;
  }

  has(token: Token): boolean {
    return this.pieces.has(token);
  }

  set(token: Token, piece: Piece): void {
    this.pieces.set(token, piece);
  }

  /** The bytes a token renders as (empty for control tokens), if its piece is cached. */
  bytesOf(token: Token): Uint8Array | undefined {
    const piece = this.pieces.get(token);
    return piece && (piece.control ? new Uint8Array(0) : piece.bytes);
  }

  /** Fetches the pieces of the ids not cached yet (one fetch per id, however many callers ask). */
  async ensure(tokens: Iterable<Token>): Promise<void> {
    const missing: Token[] = [];
    const waits: Promise<void>[] = [];
    for (const token of new Set(tokens)) {
      if (this.pieces.has(token)) continue;
      const pending = this.pending.get(token);
      if (pending) waits.push(pending);
      else missing.push(token);
    }
    if (missing.length > 0) {
      const fetching = this.fetch(missing).then((pieces) => {
        for (const [token, piece] of pieces) this.pieces.set(token, piece);
      });
      const settled = fetching.finally(() => {
        for (const token of missing) this.pending.delete(token);
      });
      for (const token of missing) this.pending.set(token, settled);
      waits.push(settled);
    }
    await Promise.all(waits);
  }

  /** Same contract as `LanguageModel.detokenize`. */
  detokenize(tokens: readonly Token[], options: { context?: readonly Token[] } = {}): string {
    // BOS is not text: decoding [BOS, "▁Once", …] must give "Once", not " Once".
    let start = 0;
    while (start < tokens.length && tokens[start] === this.bosToken) start++;
    if (start > 0) tokens = tokens.slice(start);
    if (tokens.length === 0) return "";
    // Decode context + tokens and drop the context's text, so the first token keeps its leading
    // space; bytes of a character split across the boundary are decoded with the tokens.
    const context = options.context?.slice(-8) ?? [];
    const contextText = context.length > 0 ? this.text(context) : "";
    if (contextText === "") return this.text(tokens);
    const complete = contextText.replace(/\uFFFD+$/, "");
    const text = this.text([...context, ...tokens]);
    return text.startsWith(complete) ? text.slice(complete.length) : this.text(tokens);
  }

  /** llama_detokenize(tokens, remove_special = false, unparse_special = false). */
  private text(tokens: readonly Token[]): string {
    const parts: Uint8Array[] = [];
    tokens.forEach((token, i) => {
      const piece = this.pieces.get(token);
      if (!piece)
        throw new TillerError(
          `token ${token} was never handed out by this model, so its text is unknown (detokenize only tokens the model produced)`,
          "unknown-token",
        );
      if (piece.control) return;
      let bytes = piece.bytes;
      if (i === 0 && this.addSpacePrefix && bytes[0] === 0x20) bytes = bytes.subarray(1);
      parts.push(bytes);
    });
    return decoder.decode(concatBytes(parts));
  }
}
