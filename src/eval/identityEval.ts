/**
 * `runIdentityEval`: every strategy on every identity task (masked and stated prompts), then the
 * Identity Inference Rate figures beside the fluency guards (see identityMetrics.ts). Strategies
 * take turns task by task (one run at a time), each run from a cold prefix cache (flushing is not
 * timed), so wall times compare; ratios are to the first strategy.
 */
import { z } from "zod";
import {
  createStrategy,
  parseStrategySpec,
  type StrategyDeps,
  type StrategySpec,
} from "../decoding/registry.js";
import { runStrategy } from "../decoding/run.js";
import { TillerError } from "../errors.js";
import { promptTokens } from "../lm/prompt.js";
import type { LanguageModel, Token } from "../lm/types.js";
import { countWords } from "../rewards/words.js";
import { checkModel, fields, parseOptions } from "../util/options.js";
import {
  agreesWithStated,
  type IdentityLexicon,
  namedGroups,
  repetitionRate,
  SALAD_NATS,
  textLogprobs,
} from "./identityMetrics.js";
import type { IdentityTask } from "./identityTasks.js";

export interface IdentityRow {
  strategy: string;
  taskId: string;
  kind: IdentityTask["kind"];
  text: string;
  /** Identity groups the output names. */
  named: string[];
  /** Stated tasks: whether the output keeps the stated identity. */
  agrees?: boolean;
  /** Mean token logprob under the writing model. */
  ownLogprob: number | null;
  /** Mean token logprob under the fluency model (the other model). */
  otherLogprob: number | null;
  /** Tokens (of the fluency model) below −8 nats, and all its tokens. */
  saladTokens: number;
  otherTokens: number;
  words: number;
  generatedTokens: number;
  repetition: number;
  wallMs: number;
  /** Process CPU time of the decode (every thread, node-llama-cpp's workers included). */
  cpuMs: number;
}

export interface IdentitySummary {
  strategy: string;
  /** Masked tasks whose output names an identity (lower is better). */
  maskedIIR: number;
  /** Masked tasks whose output names the group the prompt's stereotype cues. */
  cueFollowed: number;
  /** Stated tasks whose output keeps the stated identity (higher is better). */
  statedAgreement: number;
  ownLogprob: number | null;
  otherLogprob: number | null;
  /** Pooled share of the fluency model's tokens below −8 nats. */
  saladShare: number;
  meanWords: number;
  meanTokens: number;
  repetition: number;
  totalWallMs: number;
  /** totalWallMs over the first strategy's. */
  wallRatio: number;
}

export interface IdentityEvalOptions {
  /** The verifier AMBEDKAR judges with (others ignore it). Defaults to none (self-verification). */
  verifier?: LanguageModel;
  /** The model whose logprobs measure fluency. Defaults to the verifier, else the writing model. */
  fluencyModel?: LanguageModel;
  lexicon: IdentityLexicon;
  /** What strategies are built with (reward for DeAL, swap map, constitution, vetoes). Defaults to none. */
  deps?: StrategyDeps;
  onProgress?: (done: number, total: number, strategy: string) => void;
  signal?: AbortSignal;
}

const identityEvalOptionsSchema = z
  .object({
    verifier: fields.object<LanguageModel>("a model from loadModel() or openModel()").optional(),
    fluencyModel: fields.object<LanguageModel>("a model from loadModel() or openModel()").optional(),
    lexicon: fields.object<IdentityLexicon>(
      "an identity lexicon (readIdentityLexicon or lexiconFromSwapMap)",
    ),
    deps: fields.object<StrategyDeps>("strategy dependencies").optional(),
    onProgress: fields.callback<NonNullable<IdentityEvalOptions["onProgress"]>>().optional(),
    signal: fields.signal.optional(),
  })
  .strict();

export interface IdentityEvalResult {
  model: string;
  verifier?: string;
  fluencyModel: string;
  rows: IdentityRow[];
  summary: IdentitySummary[];
}

/** One task decoded by one strategy, from a fresh cache, with its metrics (fluency is scored later). */
async function identityRow(
  model: LanguageModel,
  task: IdentityTask,
  tokens: readonly Token[],
  spec: StrategySpec,
  options: IdentityEvalOptions,
): Promise<IdentityRow> {
  await model.clearCache?.();
  if (options.verifier !== model) await options.verifier?.clearCache?.();
  const cpuBefore = process.cpuUsage();
  const result = await runStrategy(createStrategy(spec, options.deps), {
    model,
    verifier: options.verifier,
    prompt: task.prompt,
    promptTokens: tokens,
    maxTokens: task.maxTokens,
    signal: options.signal,
  });
  const cpu = process.cpuUsage(cpuBefore);
  if (result.stopReason === "aborted") throw new TillerError("evaluation aborted", "aborted", 130);
  return {
    strategy: spec.label,
    taskId: task.id,
    kind: task.kind,
    text: result.text,
    named: namedGroups(result.text, options.lexicon),
    agrees:
      task.kind === "stated" ? agreesWithStated(task.prompt, result.text, task.gender as string) : undefined,
    ownLogprob: result.tokens.length > 0 ? result.logprob / result.tokens.length : null,
    otherLogprob: null,
    saladTokens: 0,
    otherTokens: 0,
    words: countWords(result.text),
    generatedTokens: result.tokens.length,
    repetition: repetitionRate(result.text),
    wallMs: result.stats.wallMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

export async function runIdentityEval(
  model: LanguageModel,
  tasks: readonly IdentityTask[],
  strategySpecs: readonly (StrategySpec | string)[],
  options: IdentityEvalOptions,
): Promise<IdentityEvalResult> {
  checkModel("runIdentityEval", model);
  parseOptions("runIdentityEval", identityEvalOptionsSchema, options);
  if (!Array.isArray(tasks))
    throw new TillerError("runIdentityEval: tasks must be an array of identity tasks", "bad-options");
  if (!Array.isArray(strategySpecs) || strategySpecs.length === 0)
    throw new TillerError("runIdentityEval: strategies must be a non-empty array of specs", "bad-options");
  if (tasks.length === 0) throw new TillerError("no tasks to evaluate", "no-tasks");
  const specs = strategySpecs.map((spec) => (typeof spec === "string" ? parseStrategySpec(spec) : spec));
  for (const spec of specs) createStrategy(spec, options.deps);
  const prompts = await Promise.all(tasks.map((task) => promptTokens(model, task.prompt)));
  const fluency = options.fluencyModel ?? options.verifier ?? model;
  // Strategies take turns task by task (each from a fresh cache), so a change in the machine's load
  // lands on all of them alike and their wall times compare like with like.
  const perSpec: IdentityRow[][] = specs.map(() => []);
  let done = 0;
  for (let t = 0; t < tasks.length; t++) {
    for (const [s, spec] of specs.entries()) {
      options.onProgress?.(done, specs.length * tasks.length, spec.label);
      perSpec[s].push(await identityRow(model, tasks[t], prompts[t], spec, options));
      done++;
    }
  }
  const rows: IdentityRow[] = [];
  for (const mine of perSpec) {
    await scoreFluency(fluency, tasks, mine, options.signal);
    rows.push(...mine);
  }
  return {
    model: model.id,
    verifier: options.verifier?.id,
    fluencyModel: fluency.id,
    rows,
    summary: summarizeIdentity(
      rows,
      tasks,
      specs.map((s) => s.label),
    ),
  };
}

/** Fills the fluency-model figures of a strategy's rows (one batched call). */
async function scoreFluency(
  fluency: LanguageModel,
  tasks: readonly IdentityTask[],
  rows: IdentityRow[],
  signal?: AbortSignal,
): Promise<void> {
  const scored = rows
    .map((row, i) => ({ row, prompt: tasks[i].prompt }))
    .filter(({ row }) => row.text !== "");
  const logprobs = await textLogprobs(
    fluency,
    scored.map(({ row, prompt }) => ({ prompt, text: row.text })),
    signal,
  );
  scored.forEach(({ row }, i) => {
    const lp = logprobs[i];
    row.otherTokens = lp.length;
    row.saladTokens = lp.filter((v) => v < SALAD_NATS).length;
    row.otherLogprob = lp.length > 0 ? lp.reduce((a, b) => a + b, 0) / lp.length : null;
  });
}

export function summarizeIdentity(
  rows: readonly IdentityRow[],
  tasks: readonly IdentityTask[],
  labels: readonly string[],
): IdentitySummary[] {
  const cue = new Map(tasks.map((task) => [task.id, task.cue]));
  const share = (values: boolean[]) =>
    values.length ? values.filter(Boolean).length / values.length : Number.NaN;
  const mean = (values: number[]) =>
    values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
  const summaries = labels.map((label) => {
    const mine = rows.filter((row) => row.strategy === label);
    const masked = mine.filter((row) => row.kind === "masked");
    const stated = mine.filter((row) => row.kind === "stated");
    const otherTokens = mine.reduce((a, row) => a + row.otherTokens, 0);
    return {
      strategy: label,
      maskedIIR: share(masked.map((row) => row.named.length > 0)),
      cueFollowed: share(masked.map((row) => row.named.includes(cue.get(row.taskId) ?? ""))),
      statedAgreement: share(stated.map((row) => row.agrees === true)),
      ownLogprob: mean(mine.flatMap((row) => (row.ownLogprob === null ? [] : [row.ownLogprob]))),
      otherLogprob: mean(mine.flatMap((row) => (row.otherLogprob === null ? [] : [row.otherLogprob]))),
      saladShare: otherTokens > 0 ? mine.reduce((a, row) => a + row.saladTokens, 0) / otherTokens : 0,
      meanWords: mean(mine.map((row) => row.words)) ?? 0,
      meanTokens: mean(mine.map((row) => row.generatedTokens)) ?? 0,
      repetition: mean(mine.map((row) => row.repetition)) ?? 0,
      totalWallMs: Math.round(mine.reduce((a, row) => a + row.wallMs, 0)),
      wallRatio: 1,
    };
  });
  const base = summaries[0]?.totalWallMs ?? 0;
  for (const s of summaries) s.wallRatio = base > 0 ? s.totalWallMs / base : Number.NaN;
  return summaries;
}
