import { TillerError } from "../../errors.js";
import type { LanguageModel, Token } from "../../lm/types.js";
import { TraceIndex } from "../../provenance/trace-index.js";
import type { Draft, Drafter, DraftRequest } from "./drafter.js";
import { continuation, longestSuffixMatch } from "./indexContinuation.js";
import { Recaser } from "./recase.js";

export interface CorpusLookupOptions {
  /** Context tokens looked up; the longest suffix of them found in the corpus is matched. Defaults to 12. */
  window?: number;
  /** Shortest match (index tokens) trusted to predict what follows. Defaults to 2. */
  minMatch?: number;
  /**
   * Occurrences a match needs: the longest suffix occurring at least this often is matched, so a
   * rare long match (one story's wording) gives way to a shorter one the corpus agrees on
   * (REST takes the longest match, i.e. 1). Defaults to 16 (measured best on TinyStories, bench:spec).
   */
  minCount?: number;
  /** Occurrences sampled per position to find the most frequent continuation. Defaults to 64. */
  samples?: number;
  /**
   * Stop the draft where the corpus's estimate of it (the product of each token's share of the
   * occurrences) falls below this. Defaults to 0.2.
   */
  minShare?: number;
}

const TEXT_CONTEXT_TOKENS = 256;

/**
 * Corpus lookup (as REST does): the longest suffix of the context that occurs in a tiller trace
 * index is matched, and its most frequent continuation in the corpus is proposed. The index must
 * have been built with the target's tokenizer (checked). No model call; pays off where the
 * target writes text its training corpus is full of.
 *
 * A lowercased index (`tiller index build --lowercase`) holds lowercased text: the context is then
 * detokenized, lowercased and re-tokenized for the lookup, and the continuation's text is recased
 * ({@link Recaser}) and tokenized as the target would write it after its last word.
 *
 * Documents should never span two texts (`tiller index build --doc-sep line` for a corpus of one
 * story per line, its paragraphs parted by blank lines): a match that ends where one text ends
 * drafts the next one's opening, which the target, going on with its own text, rejects.
 */
export class CorpusLookupDrafter implements Drafter {
  readonly name: string;
  private target: LanguageModel | undefined;
  private readonly window: number;
  private readonly minMatch: number;
  private readonly minCount: number;
  private readonly samples: number;
  private readonly minShare: number;
  /** Lowercase word → whether the target's vocabulary marks it as a name (cached). */
  private readonly nameCache = new Map<string, boolean>();

  constructor(
    readonly index: TraceIndex,
    options: CorpusLookupOptions = {},
    label = "corpus",
  ) {
    this.name = `index:${label}`;
    this.window = Math.max(1, Math.floor(options.window ?? 12));
    this.minMatch = Math.max(1, Math.floor(options.minMatch ?? 2));
    this.minCount = Math.max(1, Math.floor(options.minCount ?? 16));
    this.samples = Math.max(1, Math.floor(options.samples ?? 64));
    this.minShare = options.minShare ?? 0.2;
  }

  /** Opens the index in `dir` (a clear TillerError when it is missing or damaged). */
  static open(dir: string, options: CorpusLookupOptions = {}): CorpusLookupDrafter {
    let index: TraceIndex;
    try {
      index = TraceIndex.open(dir, { verify: false });
    } catch (error) {
      if (error instanceof TillerError)
        throw new TillerError(`draft index: ${error.message}`, error.code, error.exitCode);
      throw error;
    }
    return new CorpusLookupDrafter(index, options, dir);
  }

  async prepare(target: LanguageModel): Promise<void> {
    await this.index.checkModel(target);
    this.target = target;
  }

  async propose(requests: readonly DraftRequest[]): Promise<Draft[]> {
    const target = this.target;
    if (!target) throw new Error("CorpusLookupDrafter: call prepare(target) first");
    const drafts: Draft[] = [];
    for (const request of requests)
      drafts.push({
        tokens: this.index.header.build.lowercase
          ? await this.throughText(target, request)
          : this.inTokens(request.context, request.n),
      });
    return drafts;
  }

  /** Same token space: the context's own tokens are looked up, the corpus tokens proposed. */
  private inTokens(context: readonly Token[], n: number): Token[] {
    const query = context.slice(-this.window);
    const match = longestSuffixMatch(this.index, query, this.minMatch, this.minCount);
    return match ? continuation(this.index, match, n, this.samples, this.minShare) : [];
  }

  /** Lowercased index: look up the context's lowercased text, propose the recased continuation. */
  private async throughText(target: LanguageModel, request: DraftRequest): Promise<Token[]> {
    const { context } = request;
    const before = context.slice(Math.max(0, context.length - TEXT_CONTEXT_TOKENS));
    const text = target.detokenize(before);
    const cut = Math.max(0, context.length - this.window);
    const windowText = wordAligned(
      target.detokenize(context.slice(cut), { context: context.slice(Math.max(0, cut - 8), cut) }),
      cut > 0,
    );
    if (windowText.trim() === "") return [];
    const query = await this.index.tokenizeQuery(target, windowText);
    const match = longestSuffixMatch(this.index, query, this.minMatch, this.minCount);
    if (!match) return [];
    // Index tokens → lowercase text, decoded after the matched tokens so its leading space stays.
    const next = continuation(this.index, match, request.n, this.samples, this.minShare);
    if (next.length === 0) return [];
    const lower = target.detokenize(next, { context: query.slice(-8) });
    const recaser = new Recaser();
    recaser.learn(text);
    recaser.addNames(await this.names(target, lower));
    const cased = recaser.recase(lower, text);
    return (await tokensAfter(target, text, cased)).slice(0, request.n);
  }

  /**
   * The words of `text` the target's vocabulary spells as names: the capitalised word is one
   * token while the lowercase word takes several (a tokenizer trained on cased text spends a
   * whole token on "Lily" only if it mostly saw it capitalised).
   */
  private async names(target: LanguageModel, text: string): Promise<string[]> {
    const names: string[] = [];
    for (const word of Recaser.words(text)) {
      let name = this.nameCache.get(word);
      if (name === undefined) {
        const [lower, upper] = await Promise.all([
          target.tokenize(word, { addBos: false }),
          target.tokenize(word[0].toUpperCase() + word.slice(1), { addBos: false }),
        ]);
        name = upper.length === 1 && lower.length > 1;
        if (this.nameCache.size >= 65536) this.nameCache.clear();
        this.nameCache.set(word, name);
      }
      if (name) names.push(word);
    }
    return names;
  }
}

/** Drops a leading word fragment (the window may start inside a word) and leading spaces. */
function wordAligned(text: string, cut: boolean): string {
  if (cut && !/^\s/.test(text)) {
    const space = text.search(/\s/);
    text = space < 0 ? "" : text.slice(space);
  }
  return text.replace(/^ +/, "");
}

/**
 * The target's tokens for `continuation` written after `before`: the last word of `before` is
 * tokenized with it (a word's first piece carries its leading space, so tokenizing the
 * continuation alone would mark its first word wrongly), and that word's own tokens are dropped.
 * Nothing when the two merge across the boundary.
 */
async function tokensAfter(model: LanguageModel, before: string, continuation: string): Promise<Token[]> {
  // From the last space: a word (or a line break) with everything after it.
  const anchor = before.slice(before.lastIndexOf(" ") + 1);
  if (anchor === "") return [];
  const [anchorTokens, tokens] = await Promise.all([
    model.tokenize(anchor, { addBos: false }),
    model.tokenize(anchor + continuation, { addBos: false }),
  ]);
  for (let i = 0; i < anchorTokens.length; i++) if (tokens[i] !== anchorTokens[i]) return [];
  return tokens.slice(anchorTokens.length);
}
