import type { LanguageModel, Token } from "../lm/types.js";
import { firstStop } from "./rolloutText.js";

/**
 * Turns tokens into text incrementally for streaming. It decodes with the prompt as context (so
 * leading spaces survive); it holds back a trailing replacement character (a multi-byte
 * character split across tokens, its remaining bytes still to come) and any tail that could be
 * the start of a stop string, and emits nothing from a stop string on — so the streamed text is
 * exactly the final text.
 */
export class TextStream {
  private readonly tokens: Token[] = [];
  private emitted = 0;
  private stopped = false;

  constructor(
    private readonly model: LanguageModel,
    private readonly context: readonly Token[],
    private readonly onText: (text: string) => void,
    private readonly stopStrings: readonly string[] = [],
  ) {}

  push(token: Token): void {
    if (this.stopped || this.model.isStopToken(token)) return;
    this.tokens.push(token);
    const text = this.model.detokenize(this.tokens, { context: this.context.slice(-8) });
    const cut = firstStop(text, this.stopStrings);
    let stable: string;
    if (cut >= 0) {
      stable = text.slice(0, cut);
      this.stopped = true;
    } else {
      stable = text.endsWith("\uFFFD") ? text.slice(0, text.lastIndexOf("\uFFFD")) : text;
      stable = stable.slice(0, stable.length - this.pendingStopPrefix(stable));
    }
    if (stable.length > this.emitted) {
      this.onText(stable.slice(this.emitted));
      this.emitted = stable.length;
    }
  }

  /** The generation ended: emit what was held back for a stop string that never came. */
  end(): void {
    if (this.stopped) return;
    this.stopped = true;
    const text = this.model.detokenize(this.tokens, { context: this.context.slice(-8) });
    if (text.length > this.emitted) this.onText(text.slice(this.emitted));
    this.emitted = text.length;
  }

  /** Length of the longest tail of `text` that is a proper prefix of some stop string. */
  private pendingStopPrefix(text: string): number {
    let longest = 0;
    for (const stop of this.stopStrings)
      for (let n = Math.min(stop.length - 1, text.length); n > longest; n--)
        if (text.endsWith(stop.slice(0, n))) {
          longest = n;
          break;
        }
    return longest;
  }
}
