import type {
  ControlledEvaluateIndexOutput,
  ControlledEvaluateInputItem,
  LlamaContextSequence,
} from "node-llama-cpp";
import type { ModelUsage, Token } from "../types.js";
import { evaluateDirect, type Next } from "./directEvaluate.js";
import { SamplerPool } from "./samplerPool.js";
import { planForks, SequenceForker } from "./sequenceFork.js";

type GenerateNext = NonNullable<Exclude<ControlledEvaluateInputItem, number>[1]["generateNext"]>;

/** Evaluated positions that cost about one more pass over the weights (stories-heavy-n25: ~9 ms a pass, ~2.3 ms a position). */
const POSITIONS_PER_PASS = 4;

/** Length of the longest common prefix of two token arrays. */
export function commonPrefixLength(a: readonly Token[], b: readonly Token[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/**
 * For each prefix, the index of a distinct sequence, greedily by longest shared prefix
 * (`shared[p][s]`); ties go to the lower index so the assignment is deterministic.
 */
function assignByShared(shared: readonly (readonly number[])[]): number[] {
  const pairs: { prefix: number; sequence: number; shared: number }[] = [];
  shared.forEach((row, prefix) => {
    row.forEach((length, sequence) => {
      pairs.push({ prefix, sequence, shared: length });
    });
  });
  pairs.sort((a, b) => b.shared - a.shared || a.prefix - b.prefix || a.sequence - b.sequence);
  const assigned: number[] = new Array(shared.length);
  const taken = new Set<number>();
  let remaining = shared.length;
  for (const pair of pairs) {
    if (remaining === 0) break;
    if (assigned[pair.prefix] !== undefined || taken.has(pair.sequence)) continue;
    assigned[pair.prefix] = pair.sequence;
    taken.add(pair.sequence);
    remaining--;
  }
  return assigned;
}

/** Cached tokens a prefix may give up to move to an idle context (less than the parallel decode saves). */
const BALANCE_SLACK = 4;

/**
 * `assigned` (prefix → sequence) with its prefixes spread over more contexts where a wave landed
 * on fewer than it could use: a prefix moves to a free sequence of an unused context when that
 * sequence shares at most `BALANCE_SLACK` fewer tokens with it (the move costing the fewest goes
 * first). llama.cpp decodes a context's sequences one after another but separate contexts in
 * parallel, so a wave of two one-token prefixes on two contexts takes about the time of one.
 * `contextOf[s]` is the context of sequence s.
 */
export function balanceContexts(
  assigned: readonly number[],
  shared: readonly (readonly number[])[],
  contextOf: readonly number[],
  reusable: readonly number[] = shared.map(() => Number.POSITIVE_INFINITY),
): number[] {
  const out = [...assigned];
  const contexts = new Set(contextOf).size;
  for (;;) {
    const used = new Set(out.map((s) => contextOf[s]));
    if (used.size >= Math.min(contexts, out.length)) return out;
    const taken = new Set(out);
    // A context holding several of the wave's prefixes gives one up.
    const crowded = out.map((s) => out.filter((t) => contextOf[t] === contextOf[s]).length > 1);
    let best: { prefix: number; sequence: number; loss: number } | undefined;
    out.forEach((s, p) => {
      if (!crowded[p]) return;
      shared[p].forEach((length, t) => {
        if (taken.has(t) || used.has(contextOf[t])) return;
        // Only what the prefix can reuse counts (`reusable`, as for copies).
        const loss = Math.min(shared[p][s], reusable[p]) - Math.min(length, reusable[p]);
        if (loss <= BALANCE_SLACK && (!best || loss < best.loss)) best = { prefix: p, sequence: t, loss };
      });
    });
    if (!best) return out;
    out[best.prefix] = best.sequence;
  }
}

/**
 * For a wave of n prefixes, the run of n consecutive sequences s, s+1, … (prefix i on s + i) that
 * reuses the most cached tokens; ties go to the lowest s. llama.cpp (one KV stream per sequence)
 * decodes a batch in micro-batches of consecutive sequence ids in increasing order with equally
 * many tokens each, and every micro-batch reads all the weights: three sequences of one token
 * each took 15 ms on stories-heavy-n25 as 0, 1, 2 and 40 ms as 0, 7, 14 (12 ms for one alone).
 */
export function assignContiguous(
  shared: readonly (readonly number[])[],
  reusable: readonly number[],
): number[] {
  const n = shared.length;
  const size = shared[0]?.length ?? 0;
  let best = { start: 0, reused: -1 };
  for (let start = 0; start + n <= size; start++) {
    let reused = 0;
    for (let i = 0; i < n; i++) reused += Math.min(shared[i][start + i], reusable[i]);
    if (reused > best.reused) best = { start, reused };
  }
  return shared.map((_, i) => best.start + i);
}

/**
 * A pool of llama.cpp context sequences that remembers what each one holds. node-llama-cpp
 * cannot fork a sequence, so search stays affordable only by sending each prefix to the sequence
 * whose cached tokens share the longest prefix with it and evaluating just the difference.
 *
 * A wave's sequences are decoded in one batch per context (on the CPU by `evaluateDirect`, which
 * drives node-llama-cpp's native context without its per-call machinery; else by node-llama-cpp,
 * evaluating them in the same tick), so a "wave" of up to `size` prefixes costs roughly one
 * forward pass per token position; when the sequences come from several contexts (loadModel's `contexts`), each context decodes
 * its share in parallel with the others, and `place` spreads a wave over them (`balanceContexts`).
 */
export class SequencePool {
  /** Serialises batched calls: each call owns every sequence while it runs. */
  private queue: Promise<unknown> = Promise.resolve();

  private readonly forker = new SequenceForker();

  /** Samplers of the direct path (evaluateDirect), made on first use. */
  private samplerPool: SamplerPool | undefined;

  /** Undefined where node-llama-cpp lacks what the pool uses (the direct path then steps aside). */
  private get samplers(): SamplerPool | undefined {
    if (!this.samplerPool && SamplerPool.canMake(this.sequences[0]))
      this.samplerPool = new SamplerPool(this.sequences[0]);
    return this.samplerPool;
  }

  constructor(
    private sequences: readonly LlamaContextSequence[],
    private readonly usage: ModelUsage,
    /**
     * Copy another sequence's cache into an assigned one when that saves at least this many
     * token evaluations (sequenceFork.ts). Defaults to Infinity (never).
     */
    private readonly forkMinTokens = Number.POSITIVE_INFINITY,
    /**
     * Evaluate the cached token before a lone token again with it (two tokens, never one), so a
     * scored or prefix distribution does not depend on the sequence's history: llama.cpp computes
     * a lone token on another path (its KV differs in the last bits, and the f16 cache carries
     * that on to 3e-3 nats in later distributions), while two or more tokens store the KV of the
     * whole prefix evaluated at once (measured on the CPU). What is left is the output layer's
     * rounding, ~6e-6 nats between reading one position and several. Rollouts still add their
     * tokens one at a time. Defaults to false.
     */
    private readonly pairLoneTokens = false,
    /**
     * Place a wave on consecutive sequences in wave order (`assignContiguous`), its prefixes' caches
     * copied in where another sequence holds more of them; only with copies (`forkMinTokens`).
     * Defaults to false.
     */
    private readonly contiguous = false,
  ) {}

  get size(): number {
    return this.sequences.length;
  }

  /** Swaps in new sequences (of a new context); call inside `exclusive`. */
  replace(sequences: readonly LlamaContextSequence[]): void {
    this.sequences = sequences;
  }

  /** Empties every sequence (waits for running calls). */
  clear(): Promise<void> {
    return this.exclusive(async () => {
      await Promise.all(this.sequences.map((sequence) => sequence.clearHistory()));
    });
  }

  /** Runs `task` exclusively (batched calls never interleave on the same sequences). */
  exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Assigns each prefix of one wave (≤ size) to a distinct sequence, greedily by longest shared
   * prefix, so the tokens a previous call left in a sequence are reused where they fit best; then
   * (with `forkMinTokens`) gives an assigned sequence a copy of another sequence's cache where that
   * one shares at least `forkMinTokens` more of its prefix (`reusable[i]` caps what prefix `i` can
   * reuse: the tokens before the first position whose output is read). Call before evaluating.
   */
  async place(
    prefixes: readonly (readonly Token[])[],
    reusable: readonly number[],
  ): Promise<LlamaContextSequence[]> {
    const cached = this.sequences.map((sequence) => sequence.contextTokens as unknown as Token[]);
    // shared[p][s]: what prefix p has in common with sequence s's cache (read by both steps).
    const shared = prefixes.map((prefix) => cached.map((tokens) => commonPrefixLength(prefix, tokens)));
    const contiguous = this.contiguous && Number.isFinite(this.forkMinTokens) && prefixes.length > 1;
    let assigned = contiguous ? assignContiguous(shared, reusable) : assignByShared(shared);
    if (!contiguous && prefixes.length > 1) {
      const contextOf = this.contextIndices();
      if (new Set(contextOf).size > 1) assigned = balanceContexts(assigned, shared, contextOf, reusable);
    }
    if (Number.isFinite(this.forkMinTokens))
      await this.forker.apply(this.sequences, planForks(shared, assigned, reusable, this.forkMinTokens));
    return assigned.map((s) => this.sequences[s]);
  }

  /** Each sequence's context, numbered in order of first appearance. */
  private contextIndices(): number[] {
    const numbers = new Map<unknown, number>();
    return this.sequences.map((sequence) => {
      let n = numbers.get(sequence.context);
      if (n === undefined) {
        n = numbers.size;
        numbers.set(sequence.context, n);
      }
      return n;
    });
  }

  /**
   * Removes the fork folder and frees the direct path's samplers (the pool's model is being
   * disposed), once the calls already queued are done: a read in flight may still use a sampler.
   */
  async dispose(): Promise<void> {
    await this.queue;
    this.forker.dispose();
    this.samplerPool?.dispose();
  }

  /**
   * Makes `sequence` hold exactly `prefix` and returns the model's output after its last token.
   * Only the tokens past the longest cached prefix are evaluated; the last token is always
   * evaluated again if it was cached, because its logits are not kept.
   */
  async evaluatePrefix(
    sequence: LlamaContextSequence,
    prefix: readonly Token[],
    generateNext: GenerateNext,
  ): Promise<ControlledEvaluateIndexOutput["next"]> {
    return this.evaluate(sequence, await this.preparePrefix(sequence, prefix, generateNext));
  }

  /**
   * Evaluates a whole wave of prefixes in one llama.cpp batch. Erasing stale cache cells is
   * awaited for every sequence first, so all evaluations are queued in the same tick: the batch
   * then always holds the same sequences, which keeps results reproducible (the order of float
   * additions depends on what is batched together).
   */
  async evaluatePrefixes(
    sequences: readonly LlamaContextSequence[],
    prefixes: readonly (readonly Token[])[],
    generateNext: GenerateNext,
    /**
     * Whether the wave may be padded (contiguous). False when the sequences go on from their
     * prefixes (rollouts): padding would sit between a prefix and what follows it. Defaults to true.
     */
    pad = true,
  ): Promise<Next[]> {
    const inputs = await Promise.all(
      prefixes.map((prefix, i) => this.preparePrefix(sequences[i], prefix, generateNext)),
    );
    const lengths = inputs.map((input) => input.length);
    if (pad) this.padToEqualLengths(sequences, inputs);
    const direct = await evaluateDirect(sequences, inputs, this.samplers);
    if (direct)
      return direct.map((output, i) => {
        this.usage.evaluatedTokens += inputs[i].length;
        const last = output[lengths[i] - 1];
        if (!last) throw new Error("llama.cpp returned no output for the last token");
        return last;
      });
    return Promise.all(
      inputs.map(async (input, i) => {
        const output = await sequences[i].controlledEvaluate(input);
        this.usage.evaluatedTokens += input.length;
        const last = output[lengths[i] - 1];
        if (!last) throw new Error("llama.cpp returned no output for the last token");
        return last.next;
      }),
    );
  }

  /**
   * For each sequence, makes it hold `tokens[i]` and returns the output after each token from
   * index `from[i] - 1` on (`generateNext` says what: the full probabilities by default): the
   * outputs that predict `tokens[i][from..]` and, unless `last[i]` is false, the one after the
   * last token. When `last[i]` is false the last token is not evaluated at all (nothing reads
   * its output), so the sequence then holds `tokens[i]` without it. One evaluation per sequence,
   * every one queued in the same tick (stale cells are erased first, as in `evaluatePrefixes`),
   * so the wave is one batch.
   */
  async evaluateContinuations(
    sequences: readonly LlamaContextSequence[],
    tokens: readonly (readonly Token[])[],
    from: readonly number[],
    generateNext: GenerateNext = { probabilities: true },
    last: readonly boolean[] = [],
  ): Promise<Next[][]> {
    const inputs = await Promise.all(
      tokens.map((t, i) => this.prepareContinuation(sequences[i], t, from[i], generateNext, last[i] ?? true)),
    );
    const lengths = inputs.map(({ input }) => input.length);
    this.usage.evaluatedTokens += this.padToEqualLengths(
      sequences,
      inputs.map(({ input }) => input),
    );
    const direct = await evaluateDirect(
      sequences,
      inputs.map(({ input }) => input),
      this.samplers,
    );
    if (direct)
      return inputs.map(({ skip }, i) => {
        const out: Next[] = [];
        for (let j = skip; j < lengths[i]; j++) {
          const next = direct[i][j];
          if (!next) throw new Error("llama.cpp returned no output for a scored token");
          out.push(next);
        }
        return out;
      });
    return Promise.all(
      inputs.map(async ({ input, skip }, i) => {
        const output = await sequences[i].controlledEvaluate(input);
        const out: Next[] = [];
        for (let j = skip; j < lengths[i]; j++) {
          const next = output[j]?.next;
          if (!next) throw new Error("llama.cpp returned no output for a scored token");
          out.push(next);
        }
        return out;
      }),
    );
  }

  /**
   * Erases what `sequence` holds past what `tokens` can reuse, and returns the tokens to evaluate
   * (probabilities asked from index `from - 1` on) and how many of them come before that index.
   * The token at `from - 1` is evaluated even when cached: its logits are not kept. Without
   * `last` the last token is left out: its output would not be read, and evaluating a position
   * costs about as much as reading one (a score request whose first token is read off its
   * context's distribution, " b" + "oy", then evaluates " b" alone).
   */
  private async prepareContinuation(
    sequence: LlamaContextSequence,
    tokens: readonly Token[],
    from: number,
    generateNext: GenerateNext,
    last: boolean,
  ): Promise<{ input: ControlledEvaluateInputItem[]; skip: number }> {
    const first = Math.max(0, from - 1);
    // `from` ≤ tokens.length, so without `last` (a non-empty continuation) `first` is still evaluated.
    const end = last || tokens.length <= from ? tokens.length : tokens.length - 1;
    const shared = this.paired(
      end,
      Math.min(commonPrefixLength(tokens, sequence.contextTokens as unknown as Token[]), first),
    );
    if (shared < sequence.nextTokenIndex)
      await sequence.eraseContextTokenRanges([{ start: shared, end: sequence.nextTokenIndex }]);
    const input: ControlledEvaluateInputItem[] = tokens
      .slice(shared, end)
      .map((token, i) => (shared + i >= first ? [token as never, { generateNext }] : (token as never)));
    this.usage.requestedPrefixTokens += end;
    this.usage.cachedPrefixTokens += shared;
    this.usage.evaluatedTokens += input.length;
    return { input, skip: first - shared };
  }

  /** How much of a cached prefix `shared` to keep before evaluating the rest of `length` tokens (pairLoneTokens). */
  private paired(length: number, shared: number): number {
    return this.pairLoneTokens && length - shared === 1 && shared > 0 ? shared - 1 : shared;
  }

  /** Erases what `sequence` holds past its longest shared prefix with `prefix`; returns what is left to evaluate. */
  private async preparePrefix(
    sequence: LlamaContextSequence,
    prefix: readonly Token[],
    generateNext: GenerateNext,
  ): Promise<ControlledEvaluateInputItem[]> {
    const shared = this.paired(
      prefix.length,
      Math.min(commonPrefixLength(prefix, sequence.contextTokens as unknown as Token[]), prefix.length - 1),
    );
    if (shared < sequence.nextTokenIndex)
      await sequence.eraseContextTokenRanges([{ start: shared, end: sequence.nextTokenIndex }]);
    // node-llama-cpp brands its token type; ours are plain numbers.
    const input = prefix.slice(shared, -1) as unknown as ControlledEvaluateInputItem[];
    input.push([prefix[prefix.length - 1] as never, { generateNext }]);
    this.usage.requestedPrefixTokens += prefix.length;
    this.usage.cachedPrefixTokens += shared;
    return input;
  }

  /**
   * With `contiguous`, lengthens the shorter inputs of a wave (in place) to the longest one's
   * length by repeating their last token, unread, when that costs fewer positions than the micro-
   * batches it saves: llama.cpp takes equally many tokens from each sequence of a run per
   * micro-batch, so unequal lengths cost another pass over the weights per distinct length (3
   * sequences of 4, 2 and 3 tokens: 45 ms against 29 ms for 4 each on stories-heavy-n25, where a
   * pass costs about as much as 4 positions). The padding is stale cache that the next placement
   * erases. Returns how many tokens were added (none where one would not fit in its context).
   */
  private padToEqualLengths(
    sequences: readonly LlamaContextSequence[],
    inputs: ControlledEvaluateInputItem[][],
  ): number {
    if (!this.contiguous || inputs.length < 2) return 0;
    const longest = Math.max(...inputs.map((input) => input.length));
    // Padding must fit in every sequence's context.
    if (sequences.some((sequence) => sequence.nextTokenIndex + longest > sequence.contextSize)) return 0;
    const padding = inputs.reduce((sum, input) => sum + (input.length > 0 ? longest - input.length : 0), 0);
    const passesSaved = new Set(inputs.map((input) => input.length).filter((length) => length > 0)).size - 1;
    if (padding === 0 || padding > POSITIONS_PER_PASS * passesSaved) return 0;
    for (const input of inputs) {
      const last = input.at(-1);
      if (last === undefined) continue;
      const token = (Array.isArray(last) ? last[0] : last) as ControlledEvaluateInputItem;
      while (input.length < longest) input.push(token);
    }
    return padding;
  }

  /** Appends tokens to a sequence and returns the output after the last one. */
  async evaluate(
    sequence: LlamaContextSequence,
    input: ControlledEvaluateInputItem[],
  ): Promise<ControlledEvaluateIndexOutput["next"]> {
    this.usage.evaluatedTokens += input.length;
    const output = await sequence.controlledEvaluate(input);
    const last = output[input.length - 1];
    if (!last) throw new Error("llama.cpp returned no output for the last token");
    return last.next;
  }
}
