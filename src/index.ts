// Public library API: `import { loadModel, generate } from "tiller"`.
export { TillerError, isTillerError } from "./errors.js";
export type * from "./lm/types.js";
export { loadModel, type LoadModelOptions } from "./lm/load.js";
export { resolveModelPath, cacheDir, DEFAULT_MODEL_URI } from "./lm/resolve.js";
export { LlamaCppModel } from "./lm/llama/LlamaCppModel.js";
export { generate, type GenerateOptions } from "./generate.js";
export type * from "./decoding/types.js";
export type { Strategy, DecodeOutput } from "./decoding/strategy.js";
export type { CandidateVeto } from "./decoding/veto.js";
export { runStrategy } from "./decoding/run.js";
export { plainDecoding } from "./decoding/greedy.js";
export { beamSearch, type BeamOptions } from "./decoding/beam.js";
export type { Reward, RewardInput } from "./rewards/types.js";
