/**
 * What the verifier reads: the text re-tokenized with the verifier's own tokenizer (draft and
 * verifier may differ), with the constitution given first. Prefixes are built from the whole
 * text every step, so a context only grows at its end and the backend's prefix cache serves the
 * part it saw at the previous step.
 */
import { TillerError } from "../../errors.js";
import { promptTokens } from "../../lm/prompt.js";
import type { LanguageModel, ScoreRequest, Token } from "../../lm/types.js";
import { TokenEndings } from "./tokenEndings.js";

/** Tokenizations kept before the cache is emptied (each step needs a handful). */
const CACHE_LIMIT = 256;

export class VerifierView {
  private readonly cache = new Map<string, Promise<Token[]>>();
  /** Which words can end one verifier token (a pre-check before tokenizing a text to find out). */
  readonly endings: TokenEndings;

  constructor(
    readonly verifier: LanguageModel,
    /** An instruction the verifier reads before the prompt (the constitution); none when undefined. */
    private readonly constitution: string | undefined,
  ) {
    this.endings = new TokenEndings(verifier);
  }

  /** With a chat template the constitution is the system message; otherwise it is prepended as text. */
  private get chat(): boolean {
    return this.verifier.capabilities.chatTemplate;
  }

  /** The verifier's tokens for `prompt` followed by `body` (generated text). */
  tokens(prompt: string, body: string): Promise<Token[]> {
    const key = `${prompt}\u0000${body}`;
    let tokens = this.cache.get(key);
    if (!tokens) {
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      tokens = this.tokenize(prompt, body);
      this.cache.set(key, tokens);
      tokens.catch(() => this.cache.delete(key));
    }
    return tokens;
  }

  private async tokenize(prompt: string, body: string): Promise<Token[]> {
    if (this.chat) {
      const head = await promptTokens(this.verifier, { prompt, system: this.constitution, chat: "on" });
      return body === "" ? head : [...head, ...(await this.verifier.tokenize(body, { addBos: false }))];
    }
    const preamble = this.constitution === undefined ? "" : `${this.constitution.trim()}\n\n`;
    return this.verifier.tokenize(preamble + prompt + body);
  }

  /**
   * The request scoring `unit` after (`prompt`, `body`). The split is where the two
   * tokenizations part: when the unit merges with the end of the body into one token, that
   * token is scored as part of the continuation.
   */
  async request(prompt: string, body: string, unit: string): Promise<ScoreRequest> {
    const [before, after] = await Promise.all([this.tokens(prompt, body), this.tokens(prompt, body + unit)]);
    let shared = 0;
    const n = Math.min(before.length, after.length);
    while (shared < n && before[shared] === after[shared]) shared++;
    if (shared === 0)
      throw new TillerError(
        `verifier ${this.verifier.id}: the text tokenizes with no stable first token; give the verifier a prompt`,
        "verifier-tokenization",
      );
    return { prefix: after.slice(0, shared), continuation: after.slice(shared) };
  }
}
