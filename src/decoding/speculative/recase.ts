/**
 * Restores capitals in a continuation taken from a lowercased corpus, so the target (which writes
 * "Lily" and "She") can accept it. A heuristic, not a model: a word is written as the context
 * wrote it when the context only ever wrote it capitalised, or capitalised when it is a known
 * name ({@link addNames}) the context never wrote in lowercase; the first word of a sentence or
 * of a quotation is capitalised, and so is "i". A wrong guess only costs a rejected draft token;
 * the output is the target's either way.
 */
export class Recaser {
  /** Lowercased word → the capitalised form the context used, for words never seen lowercase. */
  private readonly cased = new Map<string, string>();
  private readonly lower = new Set<string>();

  /** Learns the casing of every word in `text` (the prompt and output so far). */
  learn(text: string): void {
    for (const word of text.match(WORD) ?? []) {
      const key = word.toLowerCase();
      if (key === word) {
        this.lower.add(key);
        this.cased.delete(key);
      } else if (!this.lower.has(key) && !isSentenceStartOnly(text, word)) this.cased.set(key, word);
    }
  }

  /** Words to capitalise unless the context wrote them in lowercase (names). */
  addNames(names: Iterable<string>): void {
    for (const name of names)
      if (!this.lower.has(name) && !this.cased.has(name))
        this.cased.set(name, name[0].toUpperCase() + name.slice(1));
  }

  /** The distinct words of a text. */
  static words(text: string): Set<string> {
    return new Set(text.match(WORD) ?? []);
  }

  /** `continuation` (lowercase) recased as it would follow `before` (the context's text). */
  recase(continuation: string, before: string): string {
    let out = "";
    for (const piece of continuation.split(PIECES)) {
      if (piece === "") continue;
      if (!/^\p{L}/u.test(piece)) {
        out += piece;
        continue;
      }
      const prior = before.slice(-3) + out;
      let word = this.cased.get(piece) ?? piece;
      if (startsSentence(prior) || opensQuote(prior) || word === "i" || word.startsWith("i'"))
        word = word[0].toUpperCase() + word.slice(1);
      out += word;
    }
    return out;
  }
}

const WORD = /\p{L}[\p{L}']*/gu;
/** Splits into words and the runs of other characters between them (kept). */
const PIECES = /(\p{L}[\p{L}']*)/u;

/** Whether text that follows `before` starts a sentence. */
function startsSentence(before: string): boolean {
  const trimmed = before.replace(/[ \t]+$/, "");
  return trimmed === "" || /[.!?]["']?$/.test(trimmed) || trimmed.endsWith("\n");
}

/** Whether text that follows `before` starts a quotation (an opening quote after a space). */
function opensQuote(before: string): boolean {
  return /(^|\s)"$/.test(before);
}

/** True when every occurrence of `word` in `text` starts a sentence (so its capital says nothing). */
function isSentenceStartOnly(text: string, word: string): boolean {
  let from = 0;
  for (let at = text.indexOf(word); at >= 0; at = text.indexOf(word, from)) {
    from = at + word.length;
    const prior = text.slice(Math.max(0, at - 3), at);
    if (!startsSentence(prior) && !opensQuote(prior)) return false;
  }
  return true;
}
