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
export * from "./rewards/index.js";
export { align, type AlignOptions, type AlignResult } from "./align.js";
export { deal, DEAL_DEFAULTS, PAPER_FAITHFUL, type DealOptions } from "./decoding/deal.js";
export {
  createStrategy,
  parseStrategySpec,
  parseStrategyList,
  registerStrategy,
  strategyNames,
  type StrategySpec,
  type StrategyDeps,
} from "./decoding/registry.js";
export { suffixArray } from "./provenance/sais.js";
export { IndexBuilder, type IndexBuilderOptions, type ModelIdentity } from "./provenance/builder.js";
export { buildIndex, type BuildIndexOptions, type BuildIndexResult } from "./provenance/build-index.js";
export { type IndexHeader, FORMAT_VERSION as TRACE_INDEX_FORMAT_VERSION } from "./provenance/format.js";
export {
  TraceIndex,
  type OpenIndexOptions,
  type Occurrence,
  type FindResult,
  type AttributeOptions,
  type AttributedSpan,
  type LongestMatches,
  UNSEEN_TOKEN_PROBABILITY,
} from "./provenance/trace-index.js";
export { tokenizerFingerprint } from "./provenance/fingerprint.js";
export {
  traceShield,
  traceShieldTokens,
  shieldGeneration,
  withTraceShield,
  type TraceShieldOptions,
  type ShieldVerdict,
  type ShieldedGeneration,
  type ShieldedGenerationOptions,
} from "./provenance/shield.js";
export { ProvDecodeVeto, type ProvDecodeOptions, type ProvMatch } from "./provenance/prov-decode.js";
export { regurgitation, type RegurgitationResult } from "./provenance/regurgitation.js";
export { type EvalTask, evalTaskSchema, parseTasks, readTasks } from "./eval/tasks.js";
export { taskReward } from "./eval/taskReward.js";
export {
  runEval,
  summarize,
  type EvalMetrics,
  type EvalProgress,
  type EvalResult,
  type EvalRow,
  type RunEvalOptions,
  type StrategySummary,
} from "./eval/runEval.js";
export { formatReport, formatTable, qualityVsCostSpec, writeQualityVsCost } from "./eval/report.js";
export { renderPlot, writePlot, type PlotOptions, type RenderedPlot, type VegaLiteSpec } from "./eval/plot.js";
// InfAlign: reference samples, calibrated/transformed rewards, Best-/worst-of-N, win rates, CTRL.
export {
  ReferencePolicy,
  referencePolicy,
  fixedReference,
  type ReferenceSample,
  type ReferenceSource,
  type ReferencePolicyOptions,
  type ReferenceSampling,
  type ReferenceStats,
  type ReferenceKey,
} from "./calibration/reference.js";
export { modelFileHash } from "./calibration/modelHash.js";
export { calibrated, calibratedValue, type CalibratedReward } from "./calibration/calibrated.js";
export {
  transform,
  parseTransform,
  transformed,
  negated,
  LOG_FLOOR,
  TRANSFORM_FORMS,
  type Transform,
  type TransformKind,
} from "./calibration/transforms.js";
export { ctrlReward, type CtrlRewardOptions, type CtrlRewardFunction } from "./calibration/ctrl.js";
export {
  maxWinRate,
  minWinRate,
  analyticBoNWinRate,
  analyticBoNKL,
  bonLogRatio,
  bootstrapMean,
  wilson,
  ksUniform,
  type Interval,
  type PromptScores,
  type BootstrapOptions,
} from "./calibration/winrate.js";
export {
  estimateWinRates,
  nGrid,
  samplerDistribution,
  type WinRateOptions,
  type WinRateReport,
  type WinRateRow,
  type WinRateTask,
  type KLEstimate,
} from "./calibration/winrateRun.js";
export { winRatePlotSpec, writeWinRatePlot } from "./calibration/plot.js";
export {
  bestOfN,
  selectByReward,
  selectAmong,
  pickIndex,
  checkN,
  type BestOfNOptions,
  type Candidate,
  type Pick,
  type Selection,
} from "./decoding/bestOfN.js";
export { streamSeed, streamSeeds } from "./decoding/seeds.js";
