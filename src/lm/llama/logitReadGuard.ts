import type { LlamaContext } from "node-llama-cpp";

/** The methods of node-llama-cpp's native context (`LlamaContext._ctx`, 3.21.1) the guard wraps. */
interface NativeContext {
  initBatch(...args: unknown[]): unknown;
  addToBatch(
    sequenceId: number,
    firstTokenIndex: number,
    tokens: ArrayLike<number>,
    ...rest: unknown[]
  ): unknown;
  decodeBatch(...args: unknown[]): Promise<unknown>;
  sampleToken(...args: unknown[]): Promise<unknown>;
}

const METHODS = ["initBatch", "addToBatch", "decodeBatch", "sampleToken"] as const;

/**
 * Whether llama.cpp returns this batch's outputs in batch order, so it records no reorder. With one
 * KV stream per sequence it splits a batch "equally": each micro-batch takes a run of consecutive
 * sequence ids, the same number of tokens from each. A batch whose sequences come in increasing
 * id order and add equally many tokens (e.g. lockstep rollout steps, one token each, whose
 * sequences were assigned in order) thus stays in order.
 */
export function inBatchOrder(items: readonly { sequence: number; tokens: number }[]): boolean {
  return items.every(
    (item, i) => i === 0 || (item.sequence > items[i - 1].sequence && item.tokens === items[0].tokens),
  );
}

const guarded = new WeakSet<object>();

/**
 * Makes the first logit read after each decode of `context` run alone.
 *
 * Why: with several sequences in a batch, llama.cpp splits it into per-sequence ubatches, so the
 * output rows come out of order; it records the swaps that restore batch order and applies them
 * lazily, inside the first `llama_get_logits*` call after the decode (`output_reorder`), without a
 * lock. node-llama-cpp reads every sequence's logits of a batch in parallel on libuv's worker
 * threads (`sampleToken`), so two reads could apply the same swaps concurrently and leave rows
 * swapped twice or half-swapped: whole waves of a batched call then got another prefix's (or a
 * garbled) distribution, now and then. Letting the first read finish before the others start
 * applies the swaps exactly once; the remaining reads of that batch still run in parallel. Batches
 * that need no reorder (see `inBatchOrder`) skip the wait, which would cost a worker round trip.
 */
export function guardLogitReads(context: LlamaContext): void {
  const native = (context as unknown as { _ctx?: Partial<NativeContext> })._ctx;
  if (!native || METHODS.some((name) => typeof native[name] !== "function"))
    throw new Error(
      `node-llama-cpp's native context lacks ${METHODS.join("/")} (tiller needs node-llama-cpp 3.21.1)`,
    );
  if (guarded.has(native)) return;
  guarded.add(native);
  const { initBatch, addToBatch, decodeBatch, sampleToken } = native as NativeContext;
  let batch: { sequence: number; tokens: number }[] = [];
  let reorderPending = false;
  // Settles once the first read of the latest decoded batch has applied llama.cpp's reorder.
  let reordered: Promise<unknown> = Promise.resolve();
  // The addon's methods are read-only on its prototype; own properties shadow them.
  Object.defineProperty(native, "initBatch", {
    configurable: true,
    value: (...args: unknown[]) => {
      batch = [];
      return initBatch.apply(native, args);
    },
  });
  Object.defineProperty(native, "addToBatch", {
    configurable: true,
    value: (sequenceId: number, firstTokenIndex: number, tokens: ArrayLike<number>, ...rest: unknown[]) => {
      batch.push({ sequence: sequenceId, tokens: tokens.length });
      return addToBatch.call(native, sequenceId, firstTokenIndex, tokens, ...rest);
    },
  });
  Object.defineProperty(native, "decodeBatch", {
    configurable: true,
    value: async (...args: unknown[]) => {
      const ordered = inBatchOrder(batch);
      const result = await decodeBatch.apply(native, args);
      reorderPending = !ordered;
      return result;
    },
  });
  Object.defineProperty(native, "sampleToken", {
    configurable: true,
    value: (...args: unknown[]) => {
      if (!reorderPending) return reordered.then(() => sampleToken.apply(native, args));
      reorderPending = false;
      const first = sampleToken.apply(native, args);
      reordered = first.catch(() => undefined);
      return first;
    },
  });
}
