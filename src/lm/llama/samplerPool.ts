import type { LlamaContextSequence } from "node-llama-cpp";

/** node-llama-cpp 3.21.1's native sampler (`LlamaSampler._sampler`). */
export interface NativeSampler {
  applyConfig(config: object): void;
  dispose(): void;
}

type SamplerClass = new (model: unknown) => NativeSampler;

/** What a sequence of node-llama-cpp 3.21.1 holds that makes its samplers. */
interface SamplerSource {
  model?: { _llama?: { _bindings?: { AddonSampler?: SamplerClass } }; _model?: unknown };
  _resolveSamplerConfig?(options: object): object;
}

/**
 * Native samplers with node-llama-cpp's default configuration (what `controlledEvaluate` makes
 * afresh for every call: temperature 0, a greedy chain that keeps nothing from one read to the
 * next), made once and kept. `get(i)` is the i-th: the reads in flight together each take their
 * own (a sampler keeps per-read buffers, a vocabulary's worth, and must not serve two threads at
 * once), so the pool holds as many as a wave has sequences.
 */
export class SamplerPool {
  private readonly samplers: NativeSampler[] = [];
  private readonly make: () => NativeSampler;

  /** `sequence`: any sequence of the model the samplers read for (not kept). */
  constructor(sequence: LlamaContextSequence) {
    const source = sequence as unknown as SamplerSource;
    if (!SamplerPool.canMake(sequence))
      throw new Error("node-llama-cpp's sampler internals are not 3.21.1's");
    const Sampler = source.model?._llama?._bindings?.AddonSampler as SamplerClass;
    const model = source.model?._model;
    const config = source._resolveSamplerConfig?.({}) as object;
    this.make = () => {
      const sampler = new Sampler(model);
      sampler.applyConfig(config);
      return sampler;
    };
  }

  /** Whether `sequence`'s node-llama-cpp has what this pool uses. */
  static canMake(sequence: LlamaContextSequence): boolean {
    const source = sequence as unknown as SamplerSource;
    return (
      typeof source._resolveSamplerConfig === "function" &&
      typeof source.model?._llama?._bindings?.AddonSampler === "function" &&
      source.model._model !== undefined
    );
  }

  get(i: number): NativeSampler {
    while (this.samplers.length <= i) this.samplers.push(this.make());
    return this.samplers[i];
  }

  /** Frees the samplers; call when no read is in flight. */
  dispose(): void {
    for (const sampler of this.samplers) sampler.dispose();
    this.samplers.length = 0;
  }
}
