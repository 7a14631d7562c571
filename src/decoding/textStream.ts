import type { LanguageModel, Token } from "../lm/types.js";

/**
 * Turns tokens into text incrementally for streaming. It decodes with the prompt as context (so
 * leading spaces survive) and holds back a trailing replacement character, which means a
 * multi-byte character is split across tokens and its remaining bytes are still to come.
 */
export class TextStream {
  private readonly tokens: Token[] = [];
  private emitted = 0;

  constructor(
    private readonly model: LanguageModel,
    private readonly context: readonly Token[],
    private readonly onText: (text: string) => void,
  ) {}

  push(token: Token): void {
    if (this.model.isStopToken(token)) return;
    this.tokens.push(token);
    const text = this.model.detokenize(this.tokens, { context: this.context.slice(-8) });
    const stable = text.endsWith("\uFFFD") ? text.slice(0, text.lastIndexOf("\uFFFD")) : text;
    if (stable.length > this.emitted) {
      this.onText(stable.slice(this.emitted));
      this.emitted = stable.length;
    }
  }
}
