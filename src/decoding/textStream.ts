import type { LanguageModel, Token } from "../lm/types.js";
import { StopStrings, tokensBefore } from "./stopStrings.js";

/** Tokens a multi-byte character may take before the stream gives up waiting for it to complete. */
const MAX_PENDING_BYTES = 4;

/**
 * Turns tokens into text incrementally for streaming, decoding each new token once (with the
 * tokens before it as context, so leading spaces survive). It holds back a token whose text ends
 * in a replacement character (a multi-byte character split across tokens, its remaining bytes
 * still to come) and any tail that could be the start of a stop string, and emits nothing from a
 * stop string on — so the streamed text is exactly the final text. Stop tokens are never text.
 */
export class TextStream {
  private readonly tokens: Token[] = [];
  /** Tokens whose text is in `text`; the rest wait for the bytes of a split character. */
  private decoded = 0;
  private text = "";
  private emitted = 0;
  private stopped = false;
  private readonly stops: StopStrings;

  constructor(
    private readonly model: LanguageModel,
    private readonly context: readonly Token[],
    private readonly onText: (text: string) => void,
    stopStrings: StopStrings | readonly string[] = [],
  ) {
    this.stops = stopStrings instanceof StopStrings ? stopStrings : new StopStrings(stopStrings);
  }

  push(token: Token): void {
    if (this.stopped || this.model.isStopToken(token)) return;
    this.tokens.push(token);
    this.decode(false);
  }

  /** The generation ended: emit what was held back for a stop string that never came. */
  end(): void {
    if (this.stopped) return;
    this.decode(true);
    this.stopped = true;
    if (this.text.length > this.emitted) this.onText(this.text.slice(this.emitted));
    this.emitted = this.text.length;
  }

  private decode(final: boolean): void {
    if (this.decoded === this.tokens.length) return;
    const piece = this.model.detokenize(this.tokens.slice(this.decoded), {
      context: tokensBefore(this.context, this.tokens, this.decoded),
    });
    const waiting = this.tokens.length - this.decoded;
    if (!final && piece.endsWith("\uFFFD") && waiting < MAX_PENDING_BYTES) return;
    // A stop string this piece completes starts at most `longest - 1` characters before it.
    const from = Math.max(0, this.text.length - this.stops.longest + 1);
    this.text += piece;
    this.decoded = this.tokens.length;
    const cut = this.stops.firstIn(this.text, from);
    if (cut >= 0) {
      this.text = this.text.slice(0, cut);
      this.stopped = true;
      if (cut > this.emitted) this.onText(this.text.slice(this.emitted));
      this.emitted = Math.max(this.emitted, cut);
      return;
    }
    if (final) return;
    const stable = this.text.length - this.stops.pendingPrefix(this.text);
    if (stable > this.emitted) {
      this.onText(this.text.slice(this.emitted, stable));
      this.emitted = stable;
    }
  }
}

/**
 * Streams the tokens every candidate output shares (beam search's live and finished hypotheses,
 * DeAL's beams): text that no later choice can change. The shared prefix only grows, since every
 * new candidate extends an old one.
 */
export class SharedPrefixStream {
  private committed = 0;

  constructor(private readonly stream: TextStream) {}

  /** Streams what `outputs` (all candidate outputs, tokens after the prompt) now share. */
  update(outputs: readonly (readonly Token[])[]): void {
    if (outputs.length === 0) return;
    const first = outputs[0];
    let shared = this.committed;
    while (shared < first.length && outputs.every((o) => o.length > shared && o[shared] === first[shared]))
      shared++;
    for (let i = this.committed; i < shared; i++) this.stream.push(first[i]);
    this.committed = shared;
  }
}
