/**
 * `runEval`: every strategy on every task with one model, and the figures that compare them —
 * quality (keyword coverage, length), fluency (mean per-token logprob), cost (evaluated tokens,
 * wall time) and, with a corpus index, regurgitation.
 *
 * Order: sequential by strategy — strategy 1 over all tasks, then strategy 2 over all tasks, …
 * (never interleaved, so one strategy's wall time is not inflated by another's allocations).
 * Cache fairness: the model keeps earlier prefixes in its sequence cache, so a strategy that runs
 * a prompt second would find it already evaluated. With `cache: "cold"` (the default), the model
 * forgets its cache before every run (`LanguageModel.clearCache`, not timed or counted; how is the
 * backend's business), so every strategy pays for its prompt the same way and `evaluatedTokens` ≈
 * prompt + generated for greedy. `cache: "warm"` skips that (faster, but order-dependent).
 */
import { z } from "zod";
import { createStrategy, parseStrategySpec, type StrategySpec } from "../decoding/registry.js";
import { runStrategy } from "../decoding/run.js";
import type { GenerationResult } from "../decoding/types.js";
import type { CandidateVeto } from "../decoding/veto.js";
import { TillerError } from "../errors.js";
import { promptTokens } from "../lm/prompt.js";
import type { LanguageModel, SamplingOptions, Token } from "../lm/types.js";
import { regurgitation } from "../provenance/regurgitation.js";
import type { TraceIndex } from "../provenance/trace-index.js";
import { keywordCoverage } from "../rewards/keywords.js";
import type { Reward } from "../rewards/types.js";
import { countWords } from "../rewards/words.js";
import { checkModel, describeIssues, fields, parseOptions } from "../util/options.js";
import { type Fluency, type FluencySummary, fluencyOf, summarizeFluency, tokenLogprobs } from "./fluency.js";
import { taskReward } from "./taskReward.js";
import { type EvalTask, evalTaskSchema } from "./tasks.js";

/** The figures of one strategy on one task. */
export interface EvalMetrics {
  /** Fraction of the task's keywords present (whole word, case-insensitive, inflections on); 1 with no keywords. */
  softCoverage: number;
  /** 1 when every keyword is present, else 0. */
  hardCoverage: number;
  present: string[];
  missing: string[];
  words: number;
  /** The task reward (what bon/deal steer by) of the finished text. */
  reward: number;
  /** Whether the word count is within [minWords, maxWords] (null for tasks without a window). */
  inLengthWindow: boolean | null;
  /** `logprob / tokens.length`, the fluency check; null when nothing was generated. */
  logprobPerToken: number | null;
  generatedTokens: number;
  promptTokens: number;
  evaluatedTokens: number;
  wallMs: number;
  stopReason: string;
  /** Worst token, word salad, repetition (src/eval/fluency.ts), rescored under the model. */
  fluency: Fluency;
  /** Present when an index was given. */
  regurgitation?: {
    /** Share of the output's token 8-grams found verbatim in the corpus. */
    share8: number;
    ngrams: number;
    found: number;
    /** Longest verbatim span of the output in the corpus, in tokens. */
    longestSpan: number;
  };
}

export interface EvalRow {
  strategy: string;
  taskId: string;
  prompt: string;
  text: string;
  metrics: EvalMetrics;
}

export interface StrategySummary {
  strategy: string;
  tasks: number;
  softCoverage: number;
  hardCoverage: number;
  meanWords: number;
  meanReward: number;
  /** Mean over tasks of each output's mean per-token logprob (tasks with no output skipped); null if none. */
  logprobPerToken: number | null;
  meanGeneratedTokens: number;
  meanEvaluatedTokens: number;
  meanWallMs: number;
  totalEvaluatedTokens: number;
  totalWallMs: number;
  /** Ratios to the first strategy (usually greedy): this / first. */
  wallMsRatio: number;
  evaluatedTokensRatio: number;
  /** Word-salad share, mean minimum token logprob, repetition (src/eval/fluency.ts). */
  fluency: FluencySummary;
  regurgitation?: {
    /** Mean over tasks of the 8-gram share. */
    share8: number;
    meanLongestSpan: number;
    maxLongestSpan: number;
  };
}

export interface EvalProgress {
  done: number;
  total: number;
  strategy: string;
  taskId: string;
  row?: EvalRow;
}

/** What runEval() accepts besides its model, tasks and strategies. */
export const runEvalOptionsSchema = z
  .object({
    onProgress: fields.callback<(progress: EvalProgress) => void>().optional(),
    index: fields.object<TraceIndex>("a TraceIndex").optional(),
    signal: fields.signal.optional(),
    cache: z.enum(["cold", "warm"]).optional(),
    sampling: fields.sampling.optional(),
    vetoes: z.array(fields.object<CandidateVeto>("a veto")).optional(),
    regurgitationN: z.number().int().min(1).optional(),
    completed: z.array(fields.object<EvalRow>("an eval row")).optional(),
  })
  .strict();

export interface RunEvalOptions {
  onProgress?: (progress: EvalProgress) => void;
  /** A corpus index (same tokenizer as the model) for the regurgitation metric. */
  index?: TraceIndex;
  signal?: AbortSignal;
  /**
   * "cold": flush the model's prefix cache before every run; "warm": keep it. Defaults to "cold"
   * where the model can clear its cache, else "warm".
   */
  cache?: "cold" | "warm";
  /** Sampling defaults for sampling strategies (a spec's own params win). */
  sampling?: SamplingOptions;
  vetoes?: readonly CandidateVeto[];
  /** n of the regurgitation n-gram share (default 8). */
  regurgitationN?: number;
  /**
   * Rows finished by an earlier, interrupted run (`eval --resume`): their (strategy, task) pairs
   * are not run again, and they take their place in the result.
   */
  completed?: readonly EvalRow[];
}

export interface EvalResult {
  model: string;
  order: "sequential-by-strategy";
  cache: "cold" | "warm";
  strategies: string[];
  taskIds: string[];
  rows: EvalRow[];
  summary: StrategySummary[];
}

export async function runEval(
  model: LanguageModel,
  tasks: readonly EvalTask[],
  strategySpecs: readonly (StrategySpec | string)[],
  options: RunEvalOptions = {},
): Promise<EvalResult> {
  checkModel("runEval", model);
  parseOptions("runEval", runEvalOptionsSchema, options);
  if (!Array.isArray(tasks)) throw new TillerError("runEval: tasks must be an array of tasks", "bad-options");
  if (tasks.length === 0) throw new TillerError("no tasks to evaluate", "no-tasks");
  tasks.forEach((task, i) => {
    const checked = evalTaskSchema.safeParse(task);
    if (!checked.success)
      throw new TillerError(`runEval: task ${i + 1}: ${describeIssues(checked.error)}`, "bad-task");
  });
  if (!Array.isArray(strategySpecs))
    throw new TillerError("runEval: strategies must be an array of specs", "bad-options");
  if (strategySpecs.length === 0) throw new TillerError("no strategies to evaluate", "no-strategies");
  const specs = strategySpecs.map((spec) => (typeof spec === "string" ? parseStrategySpec(spec) : spec));
  const labels = specs.map((spec) => spec.label);
  const duplicate = labels.find((label, i) => labels.indexOf(label) !== i);
  if (duplicate !== undefined)
    throw new TillerError(`strategy "${duplicate}" is listed twice`, "duplicate-strategy");
  // A remote backend cannot empty its server's prompt cache: there the default is "warm".
  const cache = options.cache ?? (model.capabilities.prefixCache && !model.clearCache ? "warm" : "cold");
  // A backend that caches prefixes but cannot forget them cannot give each run a cold cache.
  if (cache === "cold" && model.capabilities.prefixCache && !model.clearCache)
    throw new TillerError(
      `cache "cold" needs a model that can clear its prefix cache; ${model.id} cannot (use cache "warm")`,
      "cold-cache-unsupported",
    );
  const index = options.index;
  await index?.checkModel(model);
  const n = options.regurgitationN ?? 8;
  const deps = (task: EvalTask) => ({
    reward: taskReward(task),
    vetoes: options.vetoes,
    sampling: options.sampling,
  });

  // Fail fast, before any decoding: every spec must build, and every prompt must fit.
  const prompts = await Promise.all(
    tasks.map(async (task) => {
      try {
        return await promptTokens(model, task.prompt);
      } catch (error) {
        if (error instanceof TillerError)
          throw new TillerError(`task "${task.id}": ${error.message}`, error.code);
        throw error;
      }
    }),
  );
  for (const spec of specs) createStrategy(spec, deps(tasks[0]));

  const rows: EvalRow[] = [];
  const total = specs.length * tasks.length;
  const earlier = new Map((options.completed ?? []).map((row) => [rowKey(row.strategy, row.taskId), row]));
  for (const spec of specs) {
    for (let t = 0; t < tasks.length; t++) {
      const task = tasks[t];
      const done = earlier.get(rowKey(spec.label, task.id));
      if (done) {
        rows.push(done);
        continue;
      }
      throwIfAborted(options.signal);
      options.onProgress?.({ done: rows.length, total, strategy: spec.label, taskId: task.id });
      if (cache === "cold") await model.clearCache?.();
      const reward = taskReward(task);
      const strategy = createStrategy(spec, { ...deps(task), reward });
      const result = await runStrategy(strategy, {
        model,
        prompt: task.prompt,
        promptTokens: prompts[t],
        maxTokens: task.maxTokens,
        signal: options.signal,
      });
      if (result.stopReason === "aborted") throwIfAborted(options.signal);
      const metrics = await taskMetrics(model, task, prompts[t], result, reward);
      if (index) {
        // The index may be normalised (lowercased): re-tokenize the output the way it was built.
        // Leading whitespace is dropped: tokenized on its own, " She…" gains a lone "▁" token that
        // a corpus document (tokenized from its first word) never has.
        const queryTokens: Token[] = await index.tokenizeQuery(model, result.text.trimStart());
        const r = regurgitation(index, queryTokens, { n });
        metrics.regurgitation = {
          share8: r.share,
          ngrams: r.ngrams,
          found: r.found,
          longestSpan: r.longestSpan,
        };
      }
      const row: EvalRow = {
        strategy: spec.label,
        taskId: task.id,
        prompt: task.prompt,
        text: result.text,
        metrics,
      };
      rows.push(row);
      options.onProgress?.({ done: rows.length, total, strategy: spec.label, taskId: task.id, row });
    }
  }
  return {
    model: model.id,
    order: "sequential-by-strategy",
    cache,
    strategies: labels,
    taskIds: tasks.map((task) => task.id),
    rows,
    summary: summarize(rows, labels),
  };
}

/** Per-strategy means and totals of `rows`, in the order of `labels`; ratios are to the first. */
export function summarize(rows: readonly EvalRow[], labels: readonly string[]): StrategySummary[] {
  const summaries = labels.map((label) => {
    const mine = rows.filter((row) => row.strategy === label).map((row) => row.metrics);
    const sum = (f: (m: EvalMetrics) => number) => mine.reduce((acc, m) => acc + f(m), 0);
    const mean = (f: (m: EvalMetrics) => number) => (mine.length ? sum(f) / mine.length : 0);
    const lp = mine.map((m) => m.logprobPerToken).filter((v): v is number => v !== null);
    const summary: StrategySummary = {
      strategy: label,
      tasks: mine.length,
      softCoverage: mean((m) => m.softCoverage),
      hardCoverage: mean((m) => m.hardCoverage),
      meanWords: mean((m) => m.words),
      meanReward: mean((m) => m.reward),
      logprobPerToken: lp.length ? lp.reduce((a, b) => a + b, 0) / lp.length : null,
      meanGeneratedTokens: mean((m) => m.generatedTokens),
      meanEvaluatedTokens: mean((m) => m.evaluatedTokens),
      meanWallMs: mean((m) => m.wallMs),
      totalEvaluatedTokens: sum((m) => m.evaluatedTokens),
      totalWallMs: Math.round(sum((m) => m.wallMs) * 10) / 10,
      wallMsRatio: 1,
      evaluatedTokensRatio: 1,
      fluency: summarizeFluency(mine.map((m) => m.fluency)),
    };
    const reg = mine.map((m) => m.regurgitation).filter((r) => r !== undefined);
    if (reg.length > 0)
      summary.regurgitation = {
        share8: reg.reduce((a, r) => a + r.share8, 0) / reg.length,
        meanLongestSpan: reg.reduce((a, r) => a + r.longestSpan, 0) / reg.length,
        maxLongestSpan: Math.max(...reg.map((r) => r.longestSpan)),
      };
    return summary;
  });
  const base = summaries[0];
  for (const s of summaries) {
    s.wallMsRatio = base && base.totalWallMs > 0 ? s.totalWallMs / base.totalWallMs : Number.NaN;
    s.evaluatedTokensRatio =
      base && base.totalEvaluatedTokens > 0 ? s.totalEvaluatedTokens / base.totalEvaluatedTokens : Number.NaN;
  }
  return summaries;
}

/** Identifies a (strategy, task) run. */
export function rowKey(strategy: string, taskId: string): string {
  return JSON.stringify([strategy, taskId]);
}

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new TillerError("evaluation aborted", "aborted", 130);
}

/**
 * A run's metrics on its task (coverage, length, reward, fluency under the model, cost), scored
 * after the clock stopped; regurgitation is added by the caller when there is an index.
 */
export async function taskMetrics(
  model: LanguageModel,
  task: EvalTask,
  prompt: readonly Token[],
  result: GenerationResult,
  reward: Reward,
): Promise<EvalMetrics> {
  const coverage = keywordCoverage(result.text, task.keywords, { inflections: true });
  const words = countWords(result.text);
  return {
    softCoverage: coverage.soft,
    hardCoverage: coverage.hard,
    present: coverage.present,
    missing: coverage.missing,
    words,
    reward: await reward.score({
      prompt: task.prompt,
      text: result.text,
      tokens: result.tokens,
      finished: true,
    }),
    inLengthWindow:
      task.minWords === undefined && task.maxWords === undefined
        ? null
        : words >= (task.minWords ?? 0) && words <= (task.maxWords ?? Number.POSITIVE_INFINITY),
    logprobPerToken: result.tokens.length > 0 ? result.logprob / result.tokens.length : null,
    generatedTokens: result.stats.generatedTokens,
    promptTokens: result.stats.promptTokens,
    evaluatedTokens: result.stats.evaluatedTokens,
    wallMs: result.stats.wallMs,
    stopReason: result.stopReason,
    fluency: fluencyOf(
      model,
      prompt,
      result.tokens,
      await tokenLogprobs(model, prompt, result.tokens),
      result.text,
    ),
  };
}
