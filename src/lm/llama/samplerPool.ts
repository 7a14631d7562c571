import type { LlamaContextSequence } from "node-llama-cpp";

/** node-llama-cpp 3.21.1's native sampler (`LlamaSampler._sampler`). */
export interface NativeSampler {
  applyConfig(config: object): void;
  dispose(): void;
}

/** What a sequence of node-llama-cpp 3.21.1 holds that makes its samplers. */
interface SamplerSource {
  model: { _llama: { _bindings: { AddonSampler: new (model: unknown) => NativeSampler } }; _model: unknown };
  _resolveSamplerConfig(options: object): object;
}

/**
 * Native samplers with node-llama-cpp's default configuration (what `controlledEvaluate` makes
 * afresh for every call), made once and kept: `get(i)` is the i-th, so reads in flight together
 * each take their own (a sampler keeps per-read buffers and must not serve two threads at once).
 * A greedy sampler keeps nothing from one read to the next that a read depends on.
 */
export class SamplerPool {
  private readonly samplers: NativeSampler[] = [];

  /** `source`: any sequence of the model the samplers read for. */
  constructor(private readonly source: LlamaContextSequence) {}

  get(i: number): NativeSampler {
    const source = this.source as unknown as SamplerSource;
    while (this.samplers.length <= i) {
      const sampler = new source.model._llama._bindings.AddonSampler(source.model._model);
      sampler.applyConfig(source._resolveSamplerConfig({}));
      this.samplers.push(sampler);
    }
    return this.samplers[i];
  }

  dispose(): void {
    for (const sampler of this.samplers) sampler.dispose();
    this.samplers.length = 0;
  }
}
