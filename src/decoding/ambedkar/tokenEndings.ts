/**
 * Which words can be the end of a single verifier token: a cheap, exact pre-check of "this word
 * is one verifier token after its context" (groupPool.ts), which otherwise tokenizes the whole
 * prompt and generated text once per term of a group (~100 terms, every step).
 *
 * Why it is exact: when a text T + w tokenizes as T's tokens up to some point plus one token t,
 * that token's text is what remains of T + w after the shared tokens, so it ends with w. A word
 * that no token's text ends with can therefore never be one token after any context. Both sides
 * are compared as they are and case- and accent-folded (NFKD, marks dropped, lower case), so a
 * tokenizer that normalizes text that way (WordPiece) is covered too.
 */
import type { LanguageModel } from "../../lm/types.js";

/** Every token's text, as decoded and folded, or null when the verifier cannot list them (a remote backend). */
interface Texts {
  raw: readonly string[];
  folded: readonly string[];
}

const tokenTexts = new WeakMap<LanguageModel, Texts | null>();

function fold(text: string): string {
  return text.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase();
}

function textsOf(model: LanguageModel): Texts | null {
  let texts = tokenTexts.get(model);
  if (texts === undefined) {
    try {
      const raw: string[] = [];
      for (let token = 0; token < model.vocabularySize; token++) raw.push(model.detokenize([token]));
      texts = { raw, folded: raw.map(fold) };
    } catch {
      // A backend that knows only the pieces it handed out (HTTP) cannot list its vocabulary.
      texts = null;
    }
    tokenTexts.set(model, texts);
  }
  return texts;
}

const shared = new WeakMap<LanguageModel, TokenEndings>();

/** Per verifier: whether a word can end one of its tokens (answers kept across decodes). */
export class TokenEndings {
  private readonly answers = new Map<string, boolean>();
  private readonly texts: Texts | null;

  private constructor(model: LanguageModel) {
    this.texts = textsOf(model);
  }

  /** The verifier's one instance, so every decode reads the answers found before. */
  static of(model: LanguageModel): TokenEndings {
    let endings = shared.get(model);
    if (!endings) {
      endings = new TokenEndings(model);
      shared.set(model, endings);
    }
    return endings;
  }

  /** False only when no token's text ends with `word` (then it is never one token); true when unsure. */
  mayEndOneToken(word: string): boolean {
    if (this.texts === null) return true;
    let answer = this.answers.get(word);
    if (answer === undefined) {
      // Folding is not suffix-safe for every script (a final sigma), so the unfolded texts count too.
      const folded = fold(word);
      answer =
        folded === "" ||
        this.texts.raw.some((text) => text.endsWith(word)) ||
        this.texts.folded.some((text) => text.endsWith(folded));
      this.answers.set(word, answer);
    }
    return answer;
  }
}
