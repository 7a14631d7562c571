import * as fs from "node:fs";
import * as path from "node:path";
import { SingleBar } from "cli-progress";
import { type Command, Option } from "commander";
import { createStrategy, parseStrategyList, strategyHelp } from "../../decoding/registry.js";
import { TillerError } from "../../errors.js";
import { runEval } from "../../eval/runEval.js";
import { taskReward } from "../../eval/taskReward.js";
import { readTasks } from "../../eval/tasks.js";
import {
  action,
  addModelOptions,
  loadModelFromOptions,
  type ModelCliOptions,
  positiveInt,
} from "../shared.js";

interface EvalCliOptions extends ModelCliOptions {
  tasks: string;
  strategies: string;
  out: string;
  index?: string;
  limit?: number;
  json?: boolean;
  cache: "cold" | "warm";
  verify: boolean;
}

export function registerEval(program: Command): void {
  const command = program
    .command("eval")
    .description("run decoding strategies over a task file and compare quality, fluency and cost");
  addModelOptions(command)
    .requiredOption(
      "--tasks <file.jsonl>",
      'task file: one {"id","prompt","keywords":[…],"maxTokens"} per line',
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
        "cold: flush the model's prefix cache before every run (fair); warm: keep it",
      )
        .choices(["cold", "warm"])
        .default("cold"),
    )
    .option("--no-verify", "skip checksum verification when opening the index")
    .option("--json", "print summary.json's content instead of the table")
    .action(
      action(async (options: EvalCliOptions) => {
        // Validate every input before loading the model.
        let tasks = readTasks(options.tasks);
        if (options.limit !== undefined) tasks = tasks.slice(0, options.limit);
        const specs = parseStrategyList(options.strategies);
        if (specs.length === 0)
          throw new TillerError(`no strategies given; valid: ${strategyHelp()}`, "no-strategies");
        // Builds each strategy once so a bad parameter value fails here, not after the model loads.
        for (const spec of specs) createStrategy(spec, { reward: taskReward(tasks[0]) });
        const out = path.resolve(options.out);
        try {
          fs.mkdirSync(out, { recursive: true });
        } catch (error) {
          throw new TillerError(
            `cannot create output folder ${out}: ${(error as Error).message}`,
            "bad-out-dir",
          );
        }
        // The index reader is loaded only when an index is given.
        const index = options.index
          ? (await import("../../provenance/trace-index.js")).TraceIndex.open(options.index, {
              verify: options.verify,
            })
          : undefined;

        // Ctrl-C aborts the run (reported as "tiller: aborted", exit 130); a second one kills it.
        const abort = new AbortController();
        const onSigint = () => abort.abort();
        process.once("SIGINT", onSigint);
        let model: Awaited<ReturnType<typeof loadModelFromOptions>>;
        try {
          model = await loadModelFromOptions(options, { signal: abort.signal });
        } catch (error) {
          process.off("SIGINT", onSigint);
          throw error;
        }
        const bar = new SingleBar(
          {
            format: "eval [{bar}] {value}/{total} | {strategy} · {task}",
            stream: process.stderr,
            hideCursor: true,
            clearOnComplete: true,
          },
          undefined,
        );
        try {
          abort.signal.throwIfAborted(); // Ctrl-C while the model loaded
          bar.start(specs.length * tasks.length, 0, { strategy: specs[0].label, task: tasks[0].id });
          const result = await runEval(model, tasks, specs, {
            index,
            cache: options.cache,
            signal: abort.signal,
            onProgress: (p) => bar.update(p.done, { strategy: p.strategy, task: p.taskId }),
          });
          bar.stop();

          // The report and its plotting stack (vega, resvg) are loaded once there is a result.
          const { formatReport, writeQualityVsCost } = await import("../../eval/report.js");
          const resultsPath = path.join(out, "results.jsonl");
          fs.writeFileSync(resultsPath, `${result.rows.map((row) => JSON.stringify(row)).join("\n")}\n`);
          const plot = await writeQualityVsCost(
            result.summary,
            path.join(out, "quality-vs-cost"),
            `Quality vs cost — ${result.model}, ${tasks.length} task(s)`,
          );
          const summary = {
            model: result.model,
            tasks: options.tasks,
            taskCount: tasks.length,
            order: result.order,
            cache: result.cache,
            index: options.index ?? null,
            strategies: result.summary,
            files: { results: resultsPath, plotSvg: plot.svg, plotPng: plot.png },
          };
          fs.writeFileSync(path.join(out, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);

          if (options.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
          else
            process.stdout.write(
              `${formatReport(result)}\nwrote ${resultsPath}, summary.json, quality-vs-cost.svg/.png in ${out}\n`,
            );
        } finally {
          bar.stop();
          process.off("SIGINT", onSigint);
          await model.dispose();
        }
      }),
    );
}
