import { readFileSync } from "node:fs";
import * as path from "node:path";
import { SingleBar } from "cli-progress";
import { type Command, Option } from "commander";
import {
  createStrategy,
  parseStrategyList,
  type StrategySpec,
  strategyHelp,
} from "../../decoding/registry.js";
import { TillerError } from "../../errors.js";
import { isIdentityTaskText } from "../../eval/identityTasks.js";
import { formatReport, writeQualityVsCost } from "../../eval/report.js";
import { type EvalRunManifest, finishedRuns, loadResumeState, RESULT_FILES } from "../../eval/resume.js";
import { type EvalResult, type EvalRow, rowKey, runEval } from "../../eval/runEval.js";
import { taskReward } from "../../eval/taskReward.js";
import { type EvalTask, readTasks } from "../../eval/tasks.js";
import { TraceIndex } from "../../provenance/trace-index.js";
import { AppendLog } from "../../util/appendLog.js";
import { writeFileAtomic } from "../../util/atomicWrite.js";
import { checkSearchWidth, confirmCost, strategyTokens, tokenCost } from "../limits.js";
import { prepareOutDir, removeResults } from "../outDir.js";
import {
  action,
  addModelOptions,
  isAbortError,
  loadModelFromOptions,
  type ModelCliOptions,
  positiveInt,
} from "../shared.js";
import { commandSignal, markFinished } from "../signals.js";
import { type IdentityEvalCliOptions, runIdentityEvalCommand } from "./evalIdentity.js";

interface EvalCliOptions extends ModelCliOptions {
  tasks: string;
  strategies: string;
  out: string;
  index?: string;
  limit?: number;
  json?: boolean;
  /** Absent: "cold" where the model can forget its prefix cache (in process), else "warm" (a server). */
  cache?: "cold" | "warm";
  verify: boolean;
  force?: boolean;
  resume?: boolean;
  yes?: boolean;
  verifier?: string;
  swaps?: string;
  constitution?: string;
  lexicon?: string;
}

/** Options that only identity task files use. */
const IDENTITY_ONLY = ["verifier", "swaps", "constitution", "lexicon"] as const;

/** Whether the task file holds identity tasks (its first task has a `kind`); unreadable: no. */
function isIdentityFile(file: string): boolean {
  try {
    return isIdentityTaskText(readFileSync(file, "utf8"));
  } catch {
    return false;
  }
}

export function registerEval(program: Command): void {
  const command = program
    .command("eval")
    .description("run decoding strategies over a task file and compare quality, fluency and cost");
  addModelOptions(command)
    .requiredOption(
      "--tasks <file.jsonl>",
      'task file: one {"id","prompt","keywords":[…],"maxTokens"} per line, or identity tasks {"id","kind":"masked"|"stated",…}',
    )
    .requiredOption(
      "-s, --strategies <list>",
      `comma-separated strategy specs, e.g. greedy,sample,deal:k=5,l=8 (${strategyHelp()})`,
    )
    .requiredOption("-o, --out <dir>", "folder for results.jsonl, summary.json, quality-vs-cost.svg/.png")
    .option("-i, --index <dir>", "trace index (tiller index build): adds the regurgitation metric")
    .option("--limit <n>", "only the first n tasks", positiveInt)
    .addOption(
      new Option(
        "--cache <mode>",
        "cold: flush the model's prefix cache before every run (fair); warm: keep it (default: cold in process, warm for a server, whose prompt cache cannot be flushed)",
      ).choices(["cold", "warm"]),
    )
    .option("--no-verify", "skip checksum verification when opening the index")
    .option("--json", "print summary.json's content instead of the table")
    .option("--resume", "continue an interrupted run in --out: finished (strategy, task) runs are kept")
    .option("--force", "replace the results of an earlier run in --out")
    .option("--yes", "run even when the run is estimated to take more than 30 minutes")
    .option(
      "--verifier <path|hf:uri>",
      "identity tasks: the model ambedkar judges with and fluency is measured under (default: the main model)",
    )
    .option("--swaps <gender|religion|caste|FILE>", "identity tasks: swap map for ambedkar (default: gender)")
    .option(
      "--constitution <file>",
      "identity tasks: instruction text given to ambedkar's verifier (default: none)",
    )
    .option(
      "--lexicon <file>",
      "identity tasks: the identity words the metric counts (default: the swap map's terms)",
    )
    .action(
      action(async (options: EvalCliOptions) => {
        if (isIdentityFile(options.tasks)) return runIdentityEvalCommand(options as IdentityEvalCliOptions);
        const identityOnly = IDENTITY_ONLY.find((key) => options[key] !== undefined);
        if (identityOnly)
          throw new TillerError(
            `--${identityOnly} applies to identity task files (tasks with "kind"), not to ${options.tasks}`,
            "bad-usage",
          );
        // Validate every input before loading the model.
        let tasks = readTasks(options.tasks);
        if (options.limit !== undefined) tasks = tasks.slice(0, options.limit);
        const specs = parseStrategyList(options.strategies);
        if (specs.length === 0)
          throw new TillerError(`no strategies given; valid: ${strategyHelp()}`, "no-strategies");
        // Builds each strategy once so a bad parameter value fails here, not after the model loads.
        for (const spec of specs) createStrategy(spec, { reward: taskReward(tasks[0]) });
        const { dir: out } = prepareOutDir(options.out, {
          force: options.force,
          resume: options.resume,
          resumable: true,
        });
        const index = options.index ? TraceIndex.open(options.index, { verify: options.verify }) : undefined;
        const signal = commandSignal();
        const model = await loadModelFromOptions(options, { signal });
        const bar = new SingleBar(
          {
            format: "eval [{bar}] {value}/{total} | {strategy} · {task}",
            stream: process.stderr,
            hideCursor: true,
            clearOnComplete: true,
          },
          undefined,
        );
        let log: AppendLog | undefined;
        let saved = 0;
        const total = specs.length * tasks.length;
        try {
          signal.throwIfAborted(); // Ctrl-C while the model loaded
          for (const spec of specs) checkSearchWidth(spec, model);
          // A server's prompt cache cannot be flushed: there "warm" is the only mode, and the default.
          const cache =
            options.cache ?? (model.capabilities.prefixCache && !model.clearCache ? "warm" : "cold");
          const manifest: EvalRunManifest = {
            format: "tiller-eval-run/1",
            model: model.id,
            modelPath: model.source?.path ?? model.id,
            strategies: specs.map((spec) => spec.label),
            cache,
            index: options.index ? path.resolve(options.index) : null,
          };
          const completed = options.resume
            ? finishedRuns(loadResumeState(out, manifest).rows, specs, tasks)
            : [];
          if (options.force) removeResults(out, RESULT_FILES);
          confirmCost(
            {
              what: `this eval (${total - completed.length} run(s) left)`,
              seconds: tokenCost(model, remainingTokens(specs, tasks, completed)),
              lower: "--limit, the strategies' widths, or the tasks' maxTokens",
            },
            options.yes,
          );
          writeFileAtomic(path.join(out, "run.json"), `${JSON.stringify(manifest, null, 2)}\n`);
          const resultsPath = path.join(out, "results.jsonl");
          // One fsync'd line per finished run: an interrupted eval keeps every finished run.
          log = AppendLog.open(resultsPath);
          saved = completed.length;
          bar.start(total, completed.length, { strategy: specs[0].label, task: tasks[0].id });
          const result = await runEval(model, tasks, specs, {
            index,
            cache,
            signal,
            completed,
            onProgress: (p) => {
              if (p.row) {
                log?.append(p.row);
                saved++;
              }
              bar.update(p.done, { strategy: p.strategy, task: p.taskId });
            },
          });
          bar.stop();
          markFinished();

          const summary = summaryOf(result, options, out);
          // The results first, then the side files: a write failure cannot hide what was computed.
          if (options.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
          else process.stdout.write(`${formatReport(result)}\n`);
          writeFileAtomic(path.join(out, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
          await writeQualityVsCost(
            result.summary,
            path.join(out, "quality-vs-cost"),
            `Quality vs cost — ${result.model}, ${tasks.length} task(s)`,
          );
          if (!options.json)
            process.stdout.write(`wrote results.jsonl, summary.json, quality-vs-cost.svg/.png in ${out}\n`);
        } catch (error) {
          if (isAbortError(error) && log)
            throw new TillerError(
              `aborted; ${saved} of ${total} runs saved in ${log.file} (continue with --resume)`,
              "aborted",
              130,
            );
          throw error;
        } finally {
          bar.stop();
          log?.close();
          await model.dispose();
        }
      }),
    );
}

/** Upper estimate of the tokens the runs not yet finished will evaluate. */
function remainingTokens(
  specs: readonly StrategySpec[],
  tasks: readonly EvalTask[],
  completed: readonly EvalRow[],
): number {
  const finished = new Set(completed.map((row) => rowKey(row.strategy, row.taskId)));
  let tokens = 0;
  for (const spec of specs)
    for (const task of tasks)
      if (!finished.has(rowKey(spec.label, task.id))) tokens += strategyTokens(spec, task.maxTokens);
  return tokens;
}

/** What summary.json holds (and `--json` prints). */
function summaryOf(result: EvalResult, options: EvalCliOptions, out: string) {
  return {
    model: result.model,
    tasks: options.tasks,
    taskCount: result.taskIds.length,
    order: result.order,
    cache: result.cache,
    index: options.index ?? null,
    strategies: result.summary,
    files: {
      results: path.join(out, "results.jsonl"),
      plotSvg: path.join(out, "quality-vs-cost.svg"),
      plotPng: path.join(out, "quality-vs-cost.png"),
    },
  };
}
