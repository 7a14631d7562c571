import { TillerError } from "../errors.js";
import type { ChatMessage, LanguageModel, Token } from "./types.js";

/** Whether a prompt goes through the model's chat template. */
export type ChatMode = "auto" | "on" | "off";

/** What a decode starts from: a plain prompt, or chat messages, with an optional system message. */
export interface PromptInput {
  /** The prompt text (a user message when the chat template applies). */
  prompt?: string;
  /** A whole conversation; the assistant's turn is opened after it. Needs the chat template. */
  messages?: readonly ChatMessage[];
  /** A system message put first (chat template only). */
  system?: string;
  /**
   * `auto` applies the template when the model carries one (never a guessed one); `on` requires
   * it; `off` tokenizes the prompt as plain text. Defaults to `auto`.
   */
  chat?: ChatMode;
}

/** The messages a prompt input stands for (system first), or undefined for a plain-text prompt. */
export function chatMessages(model: LanguageModel, input: PromptInput): ChatMessage[] | undefined {
  const mode = input.chat ?? "auto";
  const templated = model.capabilities.chatTemplate;
  if (mode === "on" && !templated)
    throw new TillerError(
      `chat was requested but ${model.id} carries no chat template (tokenizer.chat_template); use chat "off"`,
      "no-chat-template",
    );
  const useChat = mode === "on" || (mode === "auto" && templated);
  if (!useChat) {
    if (input.messages)
      throw new TillerError("chat messages need the model's chat template; chat is off", "no-chat-template");
    if (input.system !== undefined)
      throw new TillerError(
        `a system message needs a chat template, and ${model.id} has none (or chat is off)`,
        "no-chat-template",
      );
    return undefined;
  }
  const messages: ChatMessage[] = [];
  if (input.system !== undefined) messages.push({ role: "system", content: input.system });
  if (input.messages) messages.push(...input.messages);
  if (input.prompt !== undefined) messages.push({ role: "user", content: input.prompt });
  return messages;
}

/**
 * Prompt tokens (BOS included) for a decode: through the chat template when it applies, else the
 * plain prompt. Checks the prompt leaves room to generate.
 */
export async function promptTokens(model: LanguageModel, input: PromptInput | string): Promise<Token[]> {
  const request = typeof input === "string" ? { prompt: input } : input;
  if (request.prompt === undefined && !request.messages)
    throw new TillerError("give a prompt or chat messages", "empty-prompt");
  const messages = chatMessages(model, request);
  const tokens = messages ? await model.chatTokens(messages) : await model.tokenize(request.prompt ?? "");
  if (tokens.length === 0) throw new TillerError("the prompt tokenizes to nothing", "empty-prompt");
  if (tokens.length >= model.contextSize)
    throw new TillerError(
      `the prompt is ${tokens.length} tokens but the context holds ${model.contextSize}; shorten it or raise --context-size`,
      "prompt-too-long",
    );
  return tokens;
}
