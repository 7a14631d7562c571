import type { LlamaContext, LlamaContextSequence, LlamaModel } from "node-llama-cpp";
import { TillerError } from "../../errors.js";
import { rolloutStopReason } from "../rolloutStop.js";
import { pickToken, seededRandom } from "../sampling.js";
import {
  type ChatMessage,
  emptyUsage,
  type LanguageModel,
  type ModelCallOptions,
  type ModelCapabilities,
  type ModelUsage,
  type NextTokenDistribution,
  type Rollout,
  type RolloutOptions,
  type RolloutRequest,
  type ScoredContinuation,
  type ScoreOptions,
  type ScoreRequest,
  type StopReason,
  type Token,
  type TokenLogprob,
} from "../types.js";
import { ChatTemplate } from "./chatTemplate.js";
import { guardLogitReads } from "./logitReadGuard.js";
import { type Probabilities, ProbabilityList } from "./probabilityList.js";
import { SequencePool } from "./sequencePool.js";

/** One-token texts `detokenize` keeps before it empties its cache. */
const PIECES_KEPT = 8192;

/**
 * The in-process llama.cpp backend: a pool of sequences over one context, or over several (each
 * decodes its sequences' share of a batch on a worker thread of its own, in parallel).
 */
export class LlamaCppModel implements LanguageModel {
  readonly usage: ModelUsage = emptyUsage();
  readonly stopTokens: ReadonlySet<Token>;
  readonly bosToken: Token | undefined;
  private readonly pool: SequencePool;
  private contexts: LlamaContext[];
  private readonly vocabSize: number;
  /** The GGUF's own chat template, if it carries one. */
  private readonly chatTemplate: ChatTemplate | undefined;
  /** Texts of one token after its last 8 context tokens (`detokenize`), at most PIECES_KEPT. */
  private readonly pieces = new Map<string, string>();

  constructor(
    readonly id: string,
    /** The resolved GGUF file this model was loaded from (keys on-disk caches, e.g. ReferencePolicy's). */
    readonly path: string,
    private readonly model: LlamaModel,
    /** The context, or contexts, whose sequences `sequences` are (interleaved, see `interleavedSequences`). */
    context: LlamaContext | readonly LlamaContext[],
    sequences: LlamaContextSequence[],
    /** Threads the context runs on (chosen by measurement unless given). */
    readonly threads: number,
    /**
     * The context size the caller asked for. llama.cpp pads a sequence's cells up to a multiple
     * of 256, so the context may hold more; the limit callers see is what they asked for.
     */
    private readonly requestedContextSize = Number.POSITIVE_INFINITY,
    /** Makes a context like the first ones (for `clearCache`); without it the sequences are only emptied. */
    private readonly createContext?: () => Promise<LlamaContext>,
    /** `copySequences`, `pairLoneTokens`, `contiguousWaves`: see LoadModelOptions. All default to false. */
    options: { copySequences?: boolean; pairLoneTokens?: boolean; contiguousWaves?: boolean } = {},
  ) {
    this.contexts = Array.isArray(context) ? [...context] : [context as LlamaContext];
    for (const each of this.contexts) guardLogitReads(each);
    // Copy whenever it saves an evaluation: DeAL on the 260K test model (40 tasks) took 8.4, 8.4
    // and 8.6 s with a minimum of 1, 2 and 4 saved tokens against 10.6 s without copies, and on a
    // model of real size one evaluation (~2 ms in a batch) outweighs a copy (0.3–1.6 ms).
    this.pool = new SequencePool(
      sequences,
      this.usage,
      options.copySequences ? 1 : Number.POSITIVE_INFINITY,
      options.pairLoneTokens,
      options.contiguousWaves,
    );
    this.vocabSize = model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length ?? 0;
    this.bosToken = model.tokens.bos ?? undefined;
    const stops = new Set<Token>();
    for (let token = 0; token < this.vocabularySize; token++)
      if (model.isEogToken(token as never)) stops.add(token);
    // Models trained on concatenated documents (the TinyStories models among them) end a
    // document by emitting BOS, which llama.cpp does not count as end of generation.
    if (this.bosToken !== undefined) stops.add(this.bosToken);
    this.stopTokens = stops;
    this.chatTemplate = ChatTemplate.of(model, id);
  }

  /** The GGUF file this model was loaded from (keys on-disk caches). */
  get source(): { readonly path: string } {
    return { path: this.path };
  }

  get vocabularySize(): number {
    return this.vocabSize;
  }

  get capabilities(): ModelCapabilities {
    return {
      // Every token of the vocabulary, with its exact logprob.
      maxTopK: this.vocabularySize,
      exactDistributions: true,
      seededSampling: true,
      prefixCache: true,
      singlePassScoring: true,
      chatTemplate: this.chatTemplate !== undefined,
    };
  }

  get contextSize(): number {
    // node-llama-cpp may make a context smaller than asked when memory is short: the smallest holds.
    return Math.min(...this.contexts.map((each) => each.contextSize), this.requestedContextSize);
  }

  async tokenize(text: string, options: { addBos?: boolean } = {}): Promise<Token[]> {
    return this.tokenizeSync(text, options);
  }

  /** In-process tokenization needs no round trip; `tokenize` wraps this for the async contract. */
  tokenizeSync(text: string, options: { addBos?: boolean } = {}): Token[] {
    const tokens = [...this.model.tokenize(text)] as Token[];
    const addBos = options.addBos ?? true;
    if (
      addBos &&
      this.bosToken !== undefined &&
      this.model.tokens.shouldPrependBosToken &&
      tokens[0] !== this.bosToken
    )
      tokens.unshift(this.bosToken);
    return tokens;
  }

  detokenize(tokens: readonly Token[], options: { context?: readonly Token[] } = {}): string {
    // One token after its context is what search strategies ask most (a candidate's text, asked
    // several times a step): kept, instead of two native decodes each time.
    if (tokens.length !== 1 || !options.context?.length) return this.decodeText(tokens, options.context);
    const key = `${tokens[0]}:${options.context.slice(-8).join(",")}`;
    let text = this.pieces.get(key);
    if (text === undefined) {
      if (this.pieces.size >= PIECES_KEPT) this.pieces.clear();
      text = this.decodeText(tokens, options.context);
      this.pieces.set(key, text);
    }
    return text;
  }

  private decodeText(tokens: readonly Token[], contextTokens: readonly Token[] = []): string {
    const piece = (t: readonly Token[]) => this.model.detokenize(t as never[], false);
    // BOS is not text: decoding [BOS, "▁Once", …] must give "Once", not " Once".
    let start = 0;
    while (start < tokens.length && tokens[start] === this.bosToken) start++;
    if (start > 0) tokens = tokens.slice(start);
    if (tokens.length === 0) return "";
    // Decode context + tokens and drop the context's text, so the first token keeps its leading
    // space. node-llama-cpp's own `lastTokens` does the same but gives up when the context ends
    // inside a multi-byte character (its text then ends in U+FFFD); here those bytes belong to the
    // character `tokens` complete, so they are decoded with it.
    const context = contextTokens.slice(-8);
    const contextText = context.length > 0 ? piece(context) : "";
    if (contextText === "") return piece(tokens);
    const complete = contextText.replace(/\uFFFD+$/, "");
    const text = piece([...context, ...tokens]);
    return text.startsWith(complete) ? text.slice(complete.length) : piece(tokens);
  }

  isStopToken(token: Token): boolean {
    return this.stopTokens.has(token);
  }

  /** A prefix must fit with room for one more token, and hold only this vocabulary's tokens. */
  private checkPrefix(prefix: readonly Token[]): void {
    if (prefix.length === 0)
      throw new TillerError("a prefix must hold at least one token (e.g. BOS)", "empty-prefix");
    if (prefix.length >= this.contextSize)
      throw new TillerError(
        `the input is ${prefix.length} tokens but the context holds ${this.contextSize}; shorten the prompt or raise --context-size`,
        "prompt-too-long",
      );
    this.checkTokens(prefix);
  }

  /** llama.cpp aborts the process on a token outside the vocabulary; refuse it here instead. */
  private checkTokens(tokens: readonly Token[]): void {
    for (const token of tokens)
      if (!(Number.isInteger(token) && token >= 0 && token < this.vocabularySize))
        throw new TillerError(
          `token ${token} is not in ${this.id}'s vocabulary (ids 0 to ${this.vocabularySize - 1})`,
          "bad-token",
        );
  }

  /** `k` (at least `min`), clamped to the vocabulary with a "top-k-clamped" warning when asked for more. */
  private topKWithin(k: number, option: string, min: number, options: ModelCallOptions): number {
    if (Number.isNaN(k)) throw new TillerError(`${option} must be a number, got NaN`, "bad-top-k");
    const asked = Math.max(min, Math.floor(k));
    if (asked <= this.vocabularySize) return asked;
    options.onWarning?.({
      code: "top-k-clamped",
      message: `${option} ${asked} asked, ${this.vocabularySize} given: ${this.id} has ${this.vocabularySize} tokens`,
    });
    return this.vocabularySize;
  }

  /** The model's chat template, or a TillerError "no-chat-template" when its GGUF has none. */
  private template(): ChatTemplate {
    if (!this.chatTemplate)
      throw new TillerError(
        `${this.id} carries no chat template (tokenizer.chat_template); give a plain prompt (chat "off")`,
        "no-chat-template",
      );
    return this.chatTemplate;
  }

  async chatTokens(messages: readonly ChatMessage[]): Promise<Token[]> {
    return this.template().tokens(messages);
  }

  /** The rendered chat prompt as text (what `chatTokens` tokenizes), for display and tests. */
  chatText(messages: readonly ChatMessage[]): string {
    return this.template().text(messages);
  }

  async scoreContinuations(
    requests: readonly ScoreRequest[],
    options: ScoreOptions = {},
  ): Promise<ScoredContinuation[]> {
    for (const request of requests) {
      // The prefix predicts the first continuation token, so it cannot be empty.
      if (request.prefix.length === 0)
        throw new TillerError("a scored prefix must hold at least one token (e.g. BOS)", "empty-prefix");
      this.checkPrefix([...request.prefix, ...request.continuation]);
    }
    const topK = this.topKWithin(options.topK ?? 0, "topK", 0, options);
    const nextTopK = this.topKWithin(options.nextTopK ?? 0, "nextTopK", 0, options);
    // The argmax alone skips llama.cpp's softmax-and-sort of the vocabulary and its Map per position.
    const argmaxOnly = options.argmaxOnly === true && topK <= 1 && nextTopK <= 1;
    return this.pool.exclusive(async () => {
      this.usage.calls++;
      const results: ScoredContinuation[] = new Array(requests.length);
      for (let start = 0; start < requests.length; start += this.pool.size) {
        options.signal?.throwIfAborted();
        const wave = requests.slice(start, start + this.pool.size);
        const full = wave.map((r) => [...r.prefix, ...r.continuation]);
        const sequences = await this.pool.place(
          full,
          wave.map((r) => Math.max(0, r.prefix.length - 1)),
        );
        // The distribution after the last token is read only when it is returned.
        const next = wave.map((r) => r.continuation.length === 0 || (nextTopK > 0 && r.wantsNext !== false));
        const outputs = await this.pool.evaluateContinuations(
          sequences,
          full,
          wave.map((r) => r.prefix.length),
          argmaxOnly ? { token: true, confidence: true } : { probabilities: true },
          next,
        );
        wave.forEach((request, i) => {
          // Without the distribution after the last token, `nextTopK` has nothing to return.
          const nextK = next[i] ? nextTopK : 0;
          results[start + i] = argmaxOnly
            ? argmaxScored(request.continuation, outputs[i], topK, nextK)
            : fullScored(request.continuation, outputs[i], topK, nextK);
        });
      }
      return results;
    });
  }

  async nextTokenDistributions(
    prefixes: readonly (readonly Token[])[],
    options: { topK: number } & ModelCallOptions,
  ): Promise<NextTokenDistribution[]> {
    for (const prefix of prefixes) this.checkPrefix(prefix);
    const topK = this.topKWithin(options.topK, "topK", 1, options);
    return this.pool.exclusive(async () => {
      this.usage.calls++;
      const results: NextTokenDistribution[] = new Array(prefixes.length);
      for (let start = 0; start < prefixes.length; start += this.pool.size) {
        options.signal?.throwIfAborted();
        const wave = prefixes.slice(start, start + this.pool.size);
        const sequences = await this.pool.place(
          wave,
          wave.map((prefix) => prefix.length - 1),
        );
        // Top-1 (a greedy drafter's question) needs only the argmax and its probability: asking
        // for the whole distribution costs a sort and a Map of the vocabulary per prefix.
        const outputs = await this.pool.evaluatePrefixes(
          sequences,
          wave,
          topK === 1 ? { token: true, confidence: true } : { probabilities: true },
        );
        outputs.forEach((next, i) => {
          results[start + i] = topK === 1 ? argmaxEntry(next) : topEntries(next.probabilities, topK);
        });
      }
      return results;
    });
  }

  async rollouts(requests: readonly RolloutRequest[], options: RolloutOptions): Promise<Rollout[]> {
    for (const request of requests) this.checkPrefix(request.prefix);
    return this.pool.exclusive(async () => {
      this.usage.calls++;
      const results: Rollout[] = new Array(requests.length);
      for (let start = 0; start < requests.length; start += this.pool.size) {
        options.signal?.throwIfAborted();
        const wave = requests.slice(start, start + this.pool.size);
        const prefixes = wave.map((request) => request.prefix);
        const sequences = await this.pool.place(
          prefixes,
          prefixes.map((prefix) => prefix.length - 1),
        );
        const done = await this.rolloutWave(sequences, wave, options, start);
        done.forEach((rollout, i) => {
          results[start + i] = rollout;
        });
      }
      return results;
    });
  }

  /**
   * Rolls out one wave (≤ pool size) in lockstep: every step evaluates the next token of all
   * live rollouts in a single batch, so the batch composition — and with it every float — is the
   * same each time the same call is made.
   */
  private async rolloutWave(
    sequences: readonly LlamaContextSequence[],
    requests: readonly RolloutRequest[],
    options: RolloutOptions,
    firstIndex: number,
  ): Promise<Rollout[]> {
    const greedy = (options.temperature ?? 0) <= 0;
    // Greedy rollouts ask llama.cpp for the argmax and its probability only (cheaper than the
    // full distribution); sampled ones take the full distribution and sample here, seeded.
    const generateNext = greedy ? { token: true, confidence: true } : { probabilities: true };
    const states = requests.map((request) => ({
      request,
      maxTokens: request.maxTokens ?? options.maxTokens,
      random: seededRandom(request.seed ?? options.seed ?? 0),
      tokens: [] as Token[],
      logprobs: [] as number[],
      stopReason: undefined as StopReason | undefined,
    }));
    for (const state of states) if (state.maxTokens <= 0) state.stopReason = "max-tokens";
    let live = states.map((_, i) => i).filter((i) => !states[i].stopReason);
    // Unpadded: each rollout goes on from its prefix in the same sequence.
    let outputs = await this.pool.evaluatePrefixes(
      live.map((i) => sequences[i]),
      live.map((i) => requests[i].prefix),
      generateNext,
      false,
    );
    while (live.length > 0) {
      const next: number[] = [];
      live.forEach((i, j) => {
        const state = states[i];
        const output = outputs[j];
        let token: Token;
        let logprob: number;
        if (greedy) {
          token = output.token as Token;
          logprob = Math.log(output.confidence ?? 0);
        } else {
          const sorted = topEntries(output.probabilities, Number.POSITIVE_INFINITY);
          token = pickToken(sorted, options, state.random);
          logprob = Math.log(output.probabilities?.get(token as never) ?? 0);
        }
        state.tokens.push(token);
        state.logprobs.push(logprob);
        this.usage.generatedTokens++;
        options.onToken?.(firstIndex + i, token);
        state.stopReason = this.stopAfter(state.request.prefix, state.tokens, state.maxTokens, options);
        if (!state.stopReason) next.push(i);
      });
      live = next;
      if (live.length === 0) break;
      outputs = await Promise.all(
        live.map((i) =>
          this.pool.evaluate(sequences[i], [[states[i].tokens.at(-1) as never, { generateNext }]]),
        ),
      );
    }
    return states.map((state) => ({
      tokens: state.tokens,
      logprobs: state.logprobs,
      logprob: state.logprobs.reduce((a, b) => a + b, 0),
      stopReason: state.stopReason ?? "max-tokens",
    }));
  }

  /** Why a rollout stops after `tokens`, or undefined if it goes on. */
  private stopAfter(
    prefix: readonly Token[],
    tokens: readonly Token[],
    maxTokens: number,
    options: RolloutOptions,
  ): StopReason | undefined {
    return rolloutStopReason(this, prefix, tokens, maxTokens, options);
  }

  /**
   * Starts again from a fresh context. Emptying the sequences is not enough for bit-identical
   * results: llama.cpp places new tokens in whichever KV cells are free, and the order of the
   * cells changes the order of float additions in attention.
   */
  clearCache(): Promise<void> {
    const create = this.createContext;
    if (!create) return this.pool.clear();
    return this.pool.exclusive(async () => {
      const size = this.pool.size;
      await Promise.all(this.contexts.map((each) => each.dispose()));
      this.contexts = await Promise.all(this.contexts.map(() => create()));
      for (const each of this.contexts) guardLogitReads(each);
      this.pool.replace(interleavedSequences(this.contexts, size));
    });
  }

  async dispose(): Promise<void> {
    await this.pool.dispose();
    await Promise.all(this.contexts.map((each) => each.dispose()));
    await this.model.dispose();
  }
}

/**
 * `count` sequences taken from `contexts` in turn (sequence i from context i mod n), so a wave
 * placed on sequences 0, 1, … spreads over the contexts and they decode it in parallel.
 */
export function interleavedSequences(
  contexts: readonly LlamaContext[],
  count: number,
): LlamaContextSequence[] {
  return Array.from({ length: count }, (_, i) => contexts[i % contexts.length].getSequence());
}

/** The argmax and its probability (full softmax, temperature 1), as a one-entry distribution. */
function argmaxEntry(next: { token?: number | null; confidence?: number }): TokenLogprob[] {
  if (next.token == null || next.confidence === undefined) throw new Error("llama.cpp returned no argmax");
  return [{ token: next.token, logprob: Math.log(next.confidence) }];
}

type EvaluationOutput = { token?: number | null; confidence?: number; probabilities?: Probabilities };

/** A continuation scored from each position's full distribution. */
function fullScored(
  continuation: readonly Token[],
  outputs: readonly EvaluationOutput[],
  topK: number,
  nextTopK: number,
): ScoredContinuation {
  const distributions = outputs.map((output) => {
    if (!output.probabilities) throw new Error("llama.cpp returned no probabilities for a scored token");
    return output.probabilities;
  });
  const logprobs = continuation.map((token, j) => Math.log(distributions[j].get(token) ?? 0));
  const scored: ScoredContinuation = { logprobs, logprob: logprobs.reduce((a, b) => a + b, 0) };
  if (topK > 0) scored.top = distributions.slice(0, continuation.length).map((d) => topEntries(d, topK));
  if (nextTopK > 0) scored.next = topEntries(distributions[distributions.length - 1], nextTopK);
  return scored;
}

/** A continuation scored from each position's argmax (`argmaxOnly`): other tokens' logprobs are NaN. */
function argmaxScored(
  continuation: readonly Token[],
  outputs: readonly EvaluationOutput[],
  topK: number,
  nextTopK: number,
): ScoredContinuation {
  const best = outputs.map(argmaxEntry);
  const logprobs = continuation.map((token, j) =>
    best[j][0].token === token ? best[j][0].logprob : Number.NaN,
  );
  const scored: ScoredContinuation = { logprobs, logprob: logprobs.reduce((a, b) => a + b, 0) };
  if (topK > 0) scored.top = best.slice(0, continuation.length);
  if (nextTopK > 0) scored.next = best[best.length - 1];
  return scored;
}

/** The first `k` entries of a position's probabilities (already sorted, most likely first). */
function topEntries(probabilities: Probabilities | undefined, k: number): TokenLogprob[] {
  if (!probabilities) throw new Error("llama.cpp returned no probabilities");
  const entries: TokenLogprob[] = new Array(Math.min(k, probabilities.size));
  if (probabilities instanceof ProbabilityList) {
    const flat = probabilities.flat;
    for (let i = 0; i < entries.length; i++)
      entries[i] = { token: flat[2 * i], logprob: Math.log(flat[2 * i + 1]) };
    return entries;
  }
  // Keys and values side by side: destructuring the Map's entries makes an array per entry.
  const tokens = probabilities.keys();
  const values = probabilities.values();
  for (let i = 0; i < entries.length; i++)
    entries[i] = { token: tokens.next().value as number, logprob: Math.log(values.next().value as number) };
  return entries;
}
