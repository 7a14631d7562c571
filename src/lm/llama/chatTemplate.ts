import {
  type ChatHistoryItem,
  JinjaTemplateChatWrapper,
  type LlamaModel,
  type LlamaText,
  SpecialToken,
} from "node-llama-cpp";
import { TillerError } from "../../errors.js";
import type { ChatMessage, Token } from "../types.js";

/**
 * A GGUF's own chat template (`tokenizer.chat_template`), rendered by node-llama-cpp's
 * JinjaTemplateChatWrapper. Never a guessed one: node-llama-cpp's `resolveChatWrapper` falls back
 * to a wrapper picked from the file name or architecture (Llama-2 `[INST]` prompts for the stories
 * model), so a model without a template has no ChatTemplate at all.
 *
 * The prompt ends the way Hugging Face's `apply_chat_template` ends it: with the template's own
 * generation prompt (`add_generation_prompt`), or, when the last message is the assistant's,
 * inside that message so the model continues it. Tokens are what llama.cpp's server makes of the
 * same messages (the rendered text tokenized in one piece, special tokens parsed, BOS prepended
 * when the model wants it), so every backend starts a chat from the same tokens. Tokenizing the
 * template's pieces one by one (as node-llama-cpp's own chat does) would add a word-start space
 * to each piece on SentencePiece models: "terse. \nQuestion" instead of "terse.\nQuestion".
 * Message contents are trusted as in llama-server: a special-token string in them is parsed.
 */
export class ChatTemplate {
  /** One wrapper per ending: the generation prompt opened, or the last assistant message continued. */
  private readonly wrappers = new Map<"open" | "continue", JinjaTemplateChatWrapper>();

  private constructor(
    private readonly model: LlamaModel,
    /** The Jinja source, as stored in the GGUF. */
    readonly source: string,
    /** Names the model in error messages. */
    private readonly modelId: string,
  ) {}

  /** The model's template, or undefined when its GGUF carries none. */
  static of(model: LlamaModel, modelId: string): ChatTemplate | undefined {
    const source = model.fileInfo.metadata.tokenizer?.chat_template;
    return typeof source === "string" && source.trim() !== ""
      ? new ChatTemplate(model, source, modelId)
      : undefined;
  }

  /** The rendered prompt text (special tokens as their text, e.g. "<s>"). */
  text(messages: readonly ChatMessage[]): string {
    return this.render(messages)
      .values.map((value) => (value instanceof SpecialToken ? this.specialText(value) : String(value)))
      .join("");
  }

  /** The prompt tokens: BOS (when the model wants it) and the rendered text. */
  tokens(messages: readonly ChatMessage[]): Token[] {
    const tokens: Token[] = [];
    let run = "";
    const flush = () => {
      tokens.push(...(this.model.tokenize(run, true) as Token[]));
      run = "";
    };
    // Special tokens the template inserts by name (bos_token, eos_token) are taken as ids; the
    // text between them is tokenized in one piece each.
    for (const value of this.render(messages).values) {
      if (value instanceof SpecialToken) {
        flush();
        tokens.push(...(value.tokenize(this.model.tokenizer) as Token[]));
      } else run += String(value);
    }
    flush();
    const bos = this.model.tokens.bos ?? undefined;
    if (bos !== undefined && this.model.tokens.shouldPrependBosToken && tokens[0] !== bos)
      tokens.unshift(bos as Token);
    return tokens;
  }

  private render(messages: readonly ChatMessage[]): LlamaText {
    if (messages.length === 0) throw new TillerError("a chat needs at least one message", "empty-prompt");
    const ending = messages[messages.length - 1].role === "assistant" ? "continue" : "open";
    try {
      return this.wrapper(ending).generateContextState({ chatHistory: messages.map(historyItem) })
        .contextText;
    } catch (error) {
      if (error instanceof TillerError) throw error;
      throw new TillerError(
        `the chat template of ${this.modelId} failed on these messages: ${firstLine(error)}`,
        "chat-template-failed",
      );
    }
  }

  private wrapper(ending: "open" | "continue"): JinjaTemplateChatWrapper {
    let wrapper = this.wrappers.get(ending);
    if (!wrapper) {
      try {
        wrapper = new JinjaTemplateChatWrapper({
          template: this.source,
          tokenizer: this.model.tokenizer,
          // Without it the wrapper ends the prompt where an (empty) assistant message's content
          // would start, which differs from the template's generation prompt in whitespace.
          additionalRenderParameters: ending === "open" ? { add_generation_prompt: true } : undefined,
        });
      } catch (error) {
        throw new TillerError(
          `the chat template of ${this.modelId} (tokenizer.chat_template) cannot be used: ${firstLine(error)}`,
          "bad-chat-template",
        );
      }
      this.wrappers.set(ending, wrapper);
    }
    return wrapper;
  }

  private specialText(token: SpecialToken): string {
    const { tokens } = this.model;
    const text = {
      BOS: tokens.bosString,
      EOS: tokens.eosString,
      EOT: tokens.eotString,
      NL: tokens.nlString,
      SEP: tokens.sepString,
    }[token.value];
    return text ?? "";
  }
}

function historyItem(message: ChatMessage): ChatHistoryItem {
  if (typeof message.content !== "string")
    throw new TillerError("a chat message's content must be a string", "bad-chat-message");
  switch (message.role) {
    case "system":
      return { type: "system", text: message.content };
    case "user":
      return { type: "user", text: message.content };
    case "assistant":
      return { type: "model", response: [message.content] };
    default:
      // Callers outside TypeScript (JSON from a request) can send any role.
      throw new TillerError(
        `a chat message's role must be system, user or assistant, got ${JSON.stringify((message as { role: unknown }).role)}`,
        "bad-chat-message",
      );
  }
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0];
}
