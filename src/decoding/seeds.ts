/**
 * Per-sample seeds for batched sampling. Each consumer (the reference policy, Best-of-N, the
 * win-rate estimator's policy samples) draws from its own named stream, so two streams with the
 * same base seed never hand out the same seed — a Best-of-N candidate is never, by construction,
 * a copy of a reference sample it is then compared with.
 */

/** A 32-bit integer hash (lowbias32): a bijection on uint32 with good avalanche. */
export function hash32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return hash32(h);
}

/** The `index`-th seed of stream `stream` under base seed `base` (a uint32). */
export function streamSeed(base: number, stream: string, index: number): number {
  return hash32(hash32((base >>> 0) ^ hashString(stream)) ^ hash32(index + 0x9e3779b9));
}

/** `count` seeds of one stream. */
export function streamSeeds(base: number, stream: string, count: number): number[] {
  return Array.from({ length: count }, (_, i) => streamSeed(base, stream, i));
}
