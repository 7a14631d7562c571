// Public library API: `import { loadModel, generate } from "tiller"`.

export { type AlignOptions, type AlignResult, align, alignOptionsSchema, alignStream } from "./align.js";
export { type CalibratedReward, calibrated, calibratedValue } from "./calibration/calibrated.js";
export { type CtrlRewardFunction, type CtrlRewardOptions, ctrlReward } from "./calibration/ctrl.js";
export { modelFileHash } from "./calibration/modelHash.js";
export { winRatePlotSpec, writeWinRatePlot } from "./calibration/plot.js";
// InfAlign: reference samples, calibrated/transformed rewards, Best-/worst-of-N, win rates, CTRL.
export {
  fixedReference,
  type ReferenceKey,
  ReferencePolicy,
  type ReferencePolicyOptions,
  type ReferenceSample,
  type ReferenceSampling,
  type ReferenceSource,
  type ReferenceStats,
  referencePolicy,
} from "./calibration/reference.js";
export {
  LOG_FLOOR,
  negated,
  parseTransform,
  TRANSFORM_FORMS,
  type Transform,
  type TransformKind,
  transform,
  transformed,
} from "./calibration/transforms.js";
export {
  analyticBoNKL,
  analyticBoNWinRate,
  type BootstrapOptions,
  bonLogRatio,
  bootstrapMean,
  type Interval,
  ksUniform,
  maxWinRate,
  minWinRate,
  type PromptScores,
  wilson,
} from "./calibration/winrate.js";
export {
  estimateWinRates,
  type KLEstimate,
  nGrid,
  type WinRateOptions,
  type WinRateReport,
  type WinRateRow,
  type WinRateTask,
} from "./calibration/winrateRun.js";
export { ABORT_GRACE_MS, DecodeAbortedError, type PartialResult } from "./decoding/aborted.js";
// AMBEDKAR: counterfactual verifier decoding, its swap maps, and the identity evaluation.
export { AMBEDKAR_DEFAULTS, type AmbedkarOptions, ambedkar } from "./decoding/ambedkar/ambedkar.js";
export {
  BUILTIN_SWAPS,
  builtinConstitutionPath,
  builtinSwapPath,
  loadSwapMap,
  readConstitution,
} from "./decoding/ambedkar/builtinSwaps.js";
export { counterfactual } from "./decoding/ambedkar/sigma.js";
export { parseSwapMap, readSwapMap, SWAP_MAP_SCHEMA, type SwapMap } from "./decoding/ambedkar/swapMap.js";
export { type BeamOptions, beamSearch } from "./decoding/beam.js";
export {
  type BestOfNOptions,
  bestOfN,
  type Candidate,
  checkN,
  type Pick,
  pickIndex,
  type Selection,
  selectAmong,
  selectByReward,
} from "./decoding/bestOfN.js";
export { callOptions, cappedTopK } from "./decoding/calls.js";
export { DEAL_DEFAULTS, type DealOptions, deal, PAPER_FAITHFUL } from "./decoding/deal/index.js";
export {
  booleanParam,
  numberParam,
  type RewardedDeps,
  SAMPLING_PARAMS,
  type StrategyDefinition,
  samplingFrom,
} from "./decoding/definition.js";
export { type DecodeEvent, type DecodeEventListener, eventStream } from "./decoding/events.js";
export { plainDecoding } from "./decoding/greedy.js";
export { checkSearchWidth, checkThreads } from "./decoding/limits.js";
export {
  createStrategy,
  parseStrategyList,
  parseStrategySpec,
  registerStrategy,
  type StrategyDeps,
  type StrategySpec,
  strategyHelp,
  strategyNames,
} from "./decoding/registry.js";
export type * from "./decoding/result.js";
export { runStrategy } from "./decoding/run.js";
export { streamSeed, streamSeeds } from "./decoding/seeds.js";
export * from "./decoding/speculative/index.js";
export { StepLog } from "./decoding/steps.js";
export { StopStrings } from "./decoding/stopStrings.js";
export type { DecodeOutput, Strategy } from "./decoding/strategy.js";
export { SharedPrefixStream, TextStream } from "./decoding/textStream.js";
export { type DecodeContext, innerContext, warn } from "./decoding/types.js";
export type { CandidateVeto } from "./decoding/veto.js";
export { isTillerError, TillerError } from "./errors.js";
export {
  type IdentityEvalOptions,
  type IdentityEvalResult,
  type IdentityRow,
  type IdentitySummary,
  runIdentityEval,
} from "./eval/identityEval.js";
export { type IdentityLexicon, lexiconFromSwapMap, readIdentityLexicon } from "./eval/identityMetrics.js";
export { type IdentityTask, isIdentityTaskText, readIdentityTasks } from "./eval/identityTasks.js";
export {
  type PlotOptions,
  type RenderedPlot,
  renderPlot,
  type VegaLiteSpec,
  writePlot,
} from "./eval/plot.js";
export { formatReport, formatTable, qualityVsCostSpec, writeQualityVsCost } from "./eval/report.js";
export {
  type EvalMetrics,
  type EvalProgress,
  type EvalResult,
  type EvalRow,
  type RunEvalOptions,
  runEval,
  type StrategySummary,
  summarize,
} from "./eval/runEval.js";
export { taskReward } from "./eval/taskReward.js";
export { type EvalTask, evalTaskSchema, parseTasks, readTasks } from "./eval/tasks.js";
export { type GenerateOptions, generate, generateOptionsSchema, generateStream } from "./generate.js";
export type { DialectName } from "./lm/http/dialect.js";
export type { FleetOptions } from "./lm/http/fleet.js";
export { RemoteModel, type RemoteModelOptions, type RemoteStats } from "./lm/http/remoteModel.js";
export type { RetryPolicy } from "./lm/http/retry.js";
export { LlamaCppModel } from "./lm/llama/LlamaCppModel.js";
export { type LoadModelOptions, loadModel } from "./lm/load.js";
export { isServerUrl, type OpenModelOptions, openModel } from "./lm/open.js";
export { cacheDir, DEFAULT_MODEL_URI, resolveModelPath } from "./lm/resolve.js";
export { samplerDistribution } from "./lm/sampling.js";
export type * from "./lm/types.js";
export { type BuildIndexOptions, type BuildIndexResult, buildIndex } from "./provenance/build-index.js";
export { IndexBuilder, type IndexBuilderOptions, type ModelIdentity } from "./provenance/builder.js";
export { tokenizerFingerprint } from "./provenance/fingerprint.js";
export { FORMAT_VERSION as TRACE_INDEX_FORMAT_VERSION, type IndexHeader } from "./provenance/format.js";
export {
  PROV_DECODE_RECOMMENDED,
  type ProvDecodeOptions,
  ProvDecodeVeto,
  type ProvMatch,
} from "./provenance/prov-decode.js";
export { type RegurgitationResult, regurgitation } from "./provenance/regurgitation.js";
export { suffixArray } from "./provenance/sais.js";
export {
  DEFAULT_REFUSAL,
  type ShieldAttempt,
  type ShieldedGeneration,
  type ShieldedGenerationOptions,
  type ShieldedStrategyOptions,
  type ShieldTrace,
  type ShieldVerdict,
  shielded,
  shieldGeneration,
  type TraceShieldOptions,
  traceShield,
  traceShieldTokens,
  withTraceShield,
} from "./provenance/shield.js";
export {
  type AttributedSpan,
  type AttributeOptions,
  type FindResult,
  type LongestMatches,
  type Occurrence,
  type OpenIndexOptions,
  TraceIndex,
  UNSEEN_TOKEN_PROBABILITY,
} from "./provenance/trace-index.js";
export * from "./rewards/index.js";
