/**
 * What the verifier reads: the text re-tokenized with the verifier's own tokenizer (draft and
 * verifier may differ), with the constitution given first. Prefixes are built from the whole
 * text every step, so a context only grows at its end and the backend's prefix cache serves the
 * part it saw at the previous step. With a word-local verifier the text is tokenized only from
 * the last word the view tokenized before (see `tokens`), not whole again.
 */
import { TillerError } from "../../errors.js";
import { promptTokens } from "../../lm/prompt.js";
import type { LanguageModel, ScoreRequest, Token } from "../../lm/types.js";
import { whitespaceCuts } from "./termSpans.js";
import { TokenEndings } from "./tokenEndings.js";

/** Tokenizations kept before the cache is emptied (each step needs a handful). */
const CACHE_LIMIT = 256;

/** A text before which a word-local tokenizer always cuts (see wordLocal). */
const SENTINEL = "a";

const wordLocalModels = new WeakMap<LanguageModel, Promise<boolean>>();

/** Each verifier's unit tails (VerifierView's `tails`), kept across decodes. */
const verifierTails = new WeakMap<LanguageModel, Map<string, Promise<Token[] | null>>>();

/** Unit tails kept per verifier before they are emptied (the words a decode's steps end with). */
const TAILS_KEPT = 4096;

/**
 * Whether no token of the verifier's vocabulary holds whitespace after its first character.
 * Then a merge never joins anything to the left of a whitespace character (the merged text
 * would be such a token), so a text tokenizes as its part before a whitespace character and its
 * part from there, each on its own: the tokens of `text + " word"` are those of `text` followed
 * by those of " word" (`text` not ending in whitespace). False when the vocabulary cannot be
 * listed (a remote backend).
 */
function wordLocal(verifier: LanguageModel): Promise<boolean> {
  let answer = wordLocalModels.get(verifier);
  if (!answer) {
    answer = (async () => {
      try {
        const context = await verifier.tokenize(SENTINEL, { addBos: false });
        for (let token = 0; token < verifier.vocabularySize; token++)
          // Decoded after a context, so a leading space is kept.
          if (/\s/u.test(verifier.detokenize([token], { context }).slice(1))) return false;
        return context.length > 0;
      } catch {
        return false;
      }
    })();
    wordLocalModels.set(verifier, answer);
  }
  return answer;
}

export class VerifierView {
  private readonly cache = new Map<string, Promise<Token[]>>();
  /**
   * The tokens a unit that begins with whitespace adds after any text (word-local verifiers), or
   * null; shared by the verifier's views (they depend on the verifier alone).
   */
  private readonly tails: Map<string, Promise<Token[] | null>>;
  /** The sentinel's own tokens (unitTokens). */
  private sentinel: Promise<Token[]> | undefined;
  /** Which words can end one verifier token (a pre-check before tokenizing a text to find out). */
  readonly endings: TokenEndings;

  constructor(
    readonly verifier: LanguageModel,
    /** An instruction the verifier reads before the prompt (the constitution); none when undefined. */
    private readonly constitution: string | undefined,
  ) {
    this.endings = TokenEndings.of(verifier);
    let tails = verifierTails.get(verifier);
    if (!tails) {
      tails = new Map();
      verifierTails.set(verifier, tails);
    }
    this.tails = tails;
  }

  /** With a chat template the constitution is the system message; otherwise it is prepended as text. */
  private get chat(): boolean {
    return this.verifier.capabilities.chatTemplate;
  }

  /** The verifier's tokens for `prompt` followed by `body` (generated text). */
  tokens(prompt: string, body: string): Promise<Token[]> {
    const key = VerifierView.key(prompt, body);
    let tokens = this.cache.get(key);
    if (!tokens) {
      const cut = this.cachedCut(prompt, body);
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      tokens = cut ? this.grow(prompt, body, cut) : this.tokenize(prompt, body);
      this.cache.set(key, tokens);
      tokens.catch(() => this.cache.delete(key));
    }
    return tokens;
  }

  private static key(prompt: string, body: string): string {
    return `${prompt}\u0000${body}`;
  }

  /**
   * The longest cached tokenization of (`prompt`, a part of `body` that ends right before a
   * whitespace character of it), and where that part ends; undefined when none is cached.
   */
  private cachedCut(prompt: string, body: string): { at: number; before: Promise<Token[]> } | undefined {
    for (const at of whitespaceCuts(body)) {
      const before = this.cache.get(VerifierView.key(prompt, body.slice(0, at)));
      if (before) return { at, before };
    }
    return undefined;
  }

  /**
   * The tokens of (`prompt`, `body`) as those of its part before the cut followed by those of the
   * rest, when the verifier is word-local and the text that part's tokenization read is not empty
   * (the start of a tokenized text is where a tokenizer adds a space: " One" is "▁", "▁One" in
   * the stories vocabulary); the whole text tokenized otherwise.
   */
  private async grow(
    prompt: string,
    body: string,
    cut: { at: number; before: Promise<Token[]> },
  ): Promise<Token[]> {
    // With a chat template the body is tokenized on its own, after the template's tokens.
    const read = this.chat ? body.slice(0, cut.at) : this.preamble + prompt + body.slice(0, cut.at);
    if (read !== "" && (await wordLocal(this.verifier))) {
      const [before, rest] = await Promise.all([cut.before, this.tail(body.slice(cut.at))]);
      if (rest) return [...before, ...rest];
    }
    return this.tokenize(prompt, body);
  }

  /** What is read before the prompt without a chat template: the constitution and a blank line. */
  private get preamble(): string {
    return this.constitution === undefined ? "" : `${this.constitution.trim()}\n\n`;
  }

  private async tokenize(prompt: string, body: string): Promise<Token[]> {
    if (this.chat) {
      const head = await promptTokens(this.verifier, { prompt, system: this.constitution, chat: "on" });
      return body === "" ? head : [...head, ...(await this.verifier.tokenize(body, { addBos: false }))];
    }
    return this.verifier.tokenize(this.preamble + prompt + body);
  }

  /**
   * The request scoring `unit` after (`prompt`, `body`). The split is where the two
   * tokenizations part: when the unit merges with the end of the body into one token, that
   * token is scored as part of the continuation.
   */
  async request(prompt: string, body: string, unit: string): Promise<ScoreRequest> {
    // A unit after the body's last word adds its own tokens (no need to tokenize the whole text again).
    const tail = body !== "" && !/\s$/u.test(body) ? await this.tail(unit) : null;
    if (tail) return { prefix: await this.tokens(prompt, body), continuation: tail };
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

  /**
   * The tokens `unit` adds after any text that is not empty, when the verifier is word-local and
   * the unit begins with whitespace; null otherwise. Read off the sentinel's tokenization with the
   * unit, kept per unit (the pronouns and names are the same every step, and so are the last words
   * of a real text and its counterfactual).
   */
  private tail(unit: string): Promise<Token[] | null> {
    if (!/^\s/u.test(unit)) return Promise.resolve(null);
    let tail = this.tails.get(unit);
    if (!tail) {
      if (this.tails.size >= TAILS_KEPT) this.tails.clear();
      tail = (async () => ((await wordLocal(this.verifier)) ? this.unitTokens(unit) : null))();
      this.tails.set(unit, tail);
      // A failed tokenization (a remote verifier's hiccup) is asked again next time, not kept.
      tail.catch(() => {
        if (this.tails.get(unit) === tail) this.tails.delete(unit);
      });
    }
    return tail;
  }

  /**
   * The tokens a text that begins with whitespace adds after a word (word-local verifiers): read
   * off the sentinel's tokenization with it; null when that does not begin with the sentinel's own.
   */
  private async unitTokens(unit: string): Promise<Token[] | null> {
    if (!this.sentinel) {
      this.sentinel = this.verifier.tokenize(SENTINEL, { addBos: false });
      this.sentinel.catch(() => {
        this.sentinel = undefined;
      });
    }
    const [head, whole] = await Promise.all([
      this.sentinel,
      this.verifier.tokenize(SENTINEL + unit, { addBos: false }),
    ]);
    const cut = whole.length > head.length && head.every((token, i) => whole[i] === token);
    return cut ? whole.slice(head.length) : null;
  }
}
