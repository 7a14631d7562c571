import type { FastifyReply } from "fastify";
import type { ServerContext } from "./context.js";

/**
 * Runs `work` once a decoding slot is free (the admission's back-pressure) and gives the slot back
 * however it ends. Its signal aborts when the client goes away before the answer is written, when
 * the server shuts down, or when one of `also` aborts — so a request nobody waits for stops
 * costing model time.
 */
export async function inDecodingSlot<T>(
  context: ServerContext,
  reply: FastifyReply,
  work: (signal: AbortSignal) => Promise<T>,
  also: readonly AbortSignal[] = [],
): Promise<T> {
  const disconnected = new AbortController();
  reply.raw.on("close", () => {
    if (!reply.raw.writableFinished) disconnected.abort(new Error("the client disconnected"));
  });
  const signal = AbortSignal.any([disconnected.signal, context.shutdown.signal, ...also]);
  const release = await context.admission.acquire(signal);
  try {
    return await work(signal);
  } finally {
    release();
  }
}
