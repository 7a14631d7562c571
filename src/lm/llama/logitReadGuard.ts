import type { LlamaContext } from "node-llama-cpp";

/** The two methods of node-llama-cpp's native context (`LlamaContext._ctx`, 3.21.1) the guard wraps. */
interface NativeContext {
  decodeBatch(...args: unknown[]): Promise<unknown>;
  sampleToken(...args: unknown[]): Promise<unknown>;
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
 * applies the swaps exactly once; the remaining reads of that batch still run in parallel.
 */
export function guardLogitReads(context: LlamaContext): void {
  const native = (context as unknown as { _ctx?: Partial<NativeContext> })._ctx;
  if (!native || typeof native.decodeBatch !== "function" || typeof native.sampleToken !== "function")
    throw new Error(
      "node-llama-cpp's native context lacks decodeBatch/sampleToken (tiller needs node-llama-cpp 3.21.1)",
    );
  if (guarded.has(native)) return;
  guarded.add(native);
  const decodeBatch = native.decodeBatch.bind(native);
  const sampleToken = native.sampleToken.bind(native);
  let reorderPending = false;
  // Settles once the first read of the latest decoded batch has applied llama.cpp's reorder.
  let reordered: Promise<unknown> = Promise.resolve();
  // The addon's methods are read-only on its prototype; own properties shadow them.
  Object.defineProperty(native, "decodeBatch", {
    configurable: true,
    value: async (...args: unknown[]) => {
      const result = await decodeBatch(...args);
      reorderPending = true;
      return result;
    },
  });
  Object.defineProperty(native, "sampleToken", {
    configurable: true,
    value: (...args: unknown[]) => {
      if (!reorderPending) return reordered.then(() => sampleToken(...args));
      reorderPending = false;
      const first = sampleToken(...args);
      reordered = first.catch(() => undefined);
      return first;
    },
  });
}
