/**
 * One position's probabilities as llama.cpp's sampler hands them to node-llama-cpp: token,
 * probability, token, probability, …, most likely first (node-llama-cpp 3.21.1's
 * `sampleToken`). Answers what node-llama-cpp's Map of them answers (`size`, `get`, `keys`,
 * `values`, in the same order) without building a Map of the vocabulary per read.
 */
export class ProbabilityList {
  constructor(
    /** The sampler's array as is; read, never changed. */
    readonly flat: readonly number[],
  ) {
    if (flat.length % 2 !== 0) throw new Error("llama.cpp returned an odd-length probability list");
  }

  get size(): number {
    return this.flat.length / 2;
  }

  /** The probability of `token`, undefined where the list lacks it (a scan: a read asks for a few). */
  get(token: number): number | undefined {
    for (let i = 0; i < this.flat.length; i += 2) if (this.flat[i] === token) return this.flat[i + 1];
    return undefined;
  }

  *keys(): IterableIterator<number> {
    for (let i = 0; i < this.flat.length; i += 2) yield this.flat[i];
  }

  *values(): IterableIterator<number> {
    for (let i = 1; i < this.flat.length; i += 2) yield this.flat[i];
  }
}

/** A position's probabilities: node-llama-cpp's Map, or the direct path's list of the same entries (directEvaluate.ts). */
export type Probabilities = ReadonlyMap<number, number> | ProbabilityList;
