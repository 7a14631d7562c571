import { join } from "node:path";
import type { Command } from "commander";
import type { Interval } from "../../calibration/winrate.js";
import { estimateWinRates, type WinRateReport } from "../../calibration/winrateRun.js";
import { parseStrategySpec, type StrategySpec, strategyHelp } from "../../decoding/registry.js";
import { TillerError } from "../../errors.js";
import { taskReward } from "../../eval/taskReward.js";
import { type EvalTask, readTasks } from "../../eval/tasks.js";
import type { LanguageModel } from "../../lm/types.js";
import { parseRewardSpecs, REWARD_SPEC_HELP } from "../../rewards/spec.js";
import { writeFileAtomic } from "../../util/atomicWrite.js";
import {
  BYTES_PER_KEPT_TOKEN,
  type CostEstimate,
  checkMemory,
  checkSearchWidth,
  confirmCost,
  strategyTokens,
  tokenCost,
} from "../limits.js";
import { prepareOutDir, removeResults } from "../outDir.js";
import {
  action,
  addAlias,
  addModelOptions,
  anyInt,
  finiteNumber,
  loadModelFromOptions,
  type ModelCliOptions,
  nonNegativeInt,
  positiveInt,
} from "../shared.js";
import { commandSignal, markFinished } from "../signals.js";

interface WinRateCliOptions extends ModelCliOptions {
  tasks: string;
  reward?: string[];
  weight?: string[];
  strategy: string;
  n: number;
  m: number;
  samples: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  resamples: number;
  limit?: number;
  cacheDir?: string;
  cache: boolean;
  json?: boolean;
  out?: string;
  force?: boolean;
  yes?: boolean;
}

/** The files winrate writes in --out (what --force replaces). */
const RESULT_FILES = ["report.json", "winrate.svg", "winrate.png"];

/** Seconds per (resample × prompt × sample) of the bootstrap, measured on a laptop-class CPU. */
const BOOTSTRAP_SECONDS_PER_UNIT = 1.5e-6;

export function registerWinrate(program: Command): void {
  const command = program
    .command("winrate")
    .description(
      "estimate a policy's win rates against the reference policy (plain sampling): standard, Best-of-N and worst-of-N (InfAlign), with confidence intervals and KL",
    );
  addModelOptions(command)
    .requiredOption("--tasks <file.jsonl>", 'task file, one {"id","prompt","keywords","maxTokens"} per line')
    .option("-r, --reward <spec...>", "the reward r (default or 'task': each task's keywords/length reward)")
    .option("-w, --weight <w...>", "one weight per --reward, in order")
    .requiredOption("-s, --strategy <spec>", `the policy under test, a strategy spec: ${strategyHelp()}`)
    .option("--n <N>", "largest N for Best-/worst-of-N win rates (N = 1, 2, 4, … N)", positiveInt, 16)
    .option("--m <m>", "reference samples per prompt (≥ 2)", anyInt, 64)
    .option("--samples <k>", "policy samples per prompt", positiveInt, 16)
    .option("-t, --temperature <T>", "reference sampling temperature", finiteNumber, 1)
    .option("--top-k <k>", "reference top-k (0: all)", nonNegativeInt, 0)
    .option("--top-p <p>", "reference nucleus mass", finiteNumber, 1)
    .option("--seed <s>", "seed of reference, policy samples and bootstrap", anyInt, 0)
    .option("--resamples <B>", "bootstrap resamples", positiveInt, 1000)
    .option("--limit <k>", "use only the first k tasks", positiveInt)
    .option("--cache-dir <dir>", "reference sample cache (default: <tiller cache>/reference)")
    .option("--no-cache", "do not read or write the reference cache")
    .option("--json", "print the report as one JSON object")
    .option("-o, --out <dir>", "write report.json and the plot winrate.svg / winrate.png here")
    .option("--force", "replace the results of an earlier run in --out")
    .option("--yes", "run even when the run is estimated to take more than 30 minutes")
    .addHelpText("after", `\n${REWARD_SPEC_HELP}`)
    .action(
      action(async (options: WinRateCliOptions) => {
        if (!Number.isInteger(options.m) || options.m < 2)
          throw new TillerError(
            `--m must be an integer ≥ 2 (reference samples per prompt), got ${options.m}`,
            "bad-reference-m",
          );
        let tasks = readTasks(options.tasks);
        if (options.limit) tasks = tasks.slice(0, options.limit);
        const policy = parseStrategySpec(options.strategy);
        const specs = options.reward ?? [];
        const useTask = specs.length === 0 || (specs.length === 1 && specs[0].trim() === "task");
        const reward = useTask ? undefined : parseRewardSpecs(specs, options.weight);
        // Memory: every reference and policy sample is kept until the bootstrap.
        const keptTokens = tasks.reduce((sum, t) => sum + (options.m + options.samples) * t.maxTokens, 0);
        checkMemory(
          keptTokens * BYTES_PER_KEPT_TOKEN,
          `--m ${options.m} and --samples ${options.samples}`,
          "--m, --samples or --limit",
        );
        const out = options.out ? prepareOutDir(options.out, { force: options.force }).dir : undefined;
        const signal = commandSignal();
        const model = await loadModelFromOptions(options, { signal });
        const byId = new Map(tasks.map((t) => [t.id, t]));
        const tty = process.stderr.isTTY && !options.json;
        try {
          checkSearchWidth(policy, model);
          confirmCost(winrateCost(model, policy, tasks, options), options.yes);
          const report = await estimateWinRates(model, {
            tasks,
            reward: reward ?? ((task) => taskReward(byId.get(task.id) ?? tasks[0])),
            policy: options.strategy,
            n: options.n,
            samples: options.samples,
            seed: options.seed,
            resamples: options.resamples,
            signal,
            reference: {
              m: options.m,
              temperature: options.temperature,
              topK: options.topK,
              topP: options.topP,
              seed: options.seed,
              modelPath: model.source?.path,
              cacheDir: options.cache ? options.cacheDir : false,
            },
            onProgress: (done, total, phase) => {
              const line = `winrate: ${phase} ${done}/${total}`;
              if (tty) process.stderr.write(`\r${line}   `);
              else if (!options.json && (done === total || phase !== "policy"))
                process.stderr.write(`${line}\n`);
            },
          });
          markFinished();
          if (tty) process.stderr.write("\n");
          if (useTask) report.reward = "task (keywords soft coverage + length window)";
          // The report first, then the side files: a write failure cannot hide what was computed.
          process.stdout.write(options.json ? `${JSON.stringify(report)}\n` : formatReport(report));
          if (out) {
            if (options.force) removeResults(out, RESULT_FILES);
            writeFileAtomic(join(out, "report.json"), `${JSON.stringify(report, null, 2)}\n`);
            // The plotting stack (vega, resvg) is loaded only when a plot is written.
            const { writeWinRatePlot } = await import("../../calibration/plot.js");
            const plot = await writeWinRatePlot(report, out);
            if (!options.json)
              process.stderr.write(`wrote ${join(out, "report.json")}, ${plot.svg}, ${plot.png}\n`);
          }
        } finally {
          await model.dispose();
        }
      }),
    );
  // The earlier name; `--strategy` is what align and generate call a strategy spec.
  addAlias(command, "--policy", "--strategy");
}

/** The estimate's cost: sampling (reference and policy) plus the bootstrap's resampling work. */
function winrateCost(
  model: LanguageModel,
  policy: StrategySpec,
  tasks: readonly EvalTask[],
  options: WinRateCliOptions,
): CostEstimate {
  const gridSize = Math.floor(Math.log2(options.n)) + 2;
  const bootstrapSeconds =
    options.resamples *
    tasks.length *
    (options.m + options.samples) *
    (1 + 3 * gridSize) *
    BOOTSTRAP_SECONDS_PER_UNIT;
  const tokens = tasks.reduce(
    (sum, t) => sum + options.m * t.maxTokens + options.samples * strategyTokens(policy, t.maxTokens),
    0,
  );
  return {
    what: `this win-rate estimate (${tasks.length} prompt(s), m = ${options.m}, ${options.samples} policy samples, ${options.resamples} resamples)`,
    seconds: tokenCost(model, tokens) + bootstrapSeconds,
    lower: "--m, --samples, --resamples or --limit",
  };
}

const fmt = (i: Interval) => `${i.estimate.toFixed(3)} [${i.lo.toFixed(3)}, ${i.hi.toFixed(3)}]`;

/** The report as a plain-text table. */
export function formatReport(report: WinRateReport): string {
  const lines = [
    `policy ${report.policy} vs reference (sampling T=${report.reference.sampling.temperature}, top-k ${report.reference.sampling.topK}, top-p ${report.reference.sampling.topP})`,
    `reward ${report.reward}; ${report.tasks} prompts; m = ${report.m} reference samples, ${report.samples} policy sample(s) per prompt${report.deterministic ? " (deterministic policy)" : ""}`,
    `mean reward: policy ${report.meanReward.policy.toFixed(4)}, reference ${report.meanReward.reference.toFixed(4)}`,
    `standard win rate: ${fmt(report.standard)}`,
    "",
    ["N", "BoN(policy) vs ref", "N/(N+1)", "BoN vs BoN", "WoN vs WoN"]
      .map((h, i) => h.padEnd(i === 0 ? 4 : i === 2 ? 9 : 24))
      .join(" "),
    ...report.rows.map((r) =>
      [
        String(r.n).padEnd(4),
        fmt(r.bonVsReference).padEnd(24),
        r.analyticBoN.toFixed(3).padEnd(9),
        fmt(r.bonVsBon).padEnd(24),
        fmt(r.wonVsWon).padEnd(24),
      ].join(" "),
    ),
    "",
    `KL(policy ‖ reference): ${report.kl.estimate === null ? "n/a" : `${report.kl.estimate.toFixed(4)} nats`}${report.kl.analyticBound !== undefined ? ` (analytic Best-of-N bound log N − (N−1)/N = ${report.kl.analyticBound.toFixed(4)})` : ""} — ${report.kl.method}`,
    `intervals: ${report.ci}`,
    `reference: ${report.reference.stats.sampledPrompts} prompt(s) sampled, ${report.reference.stats.diskHits} from cache${report.reference.stats.rejected ? `, ${report.reference.stats.rejected} rejected` : ""}; ${report.wallMs} ms`,
  ];
  return `${lines.join("\n")}\n`;
}
