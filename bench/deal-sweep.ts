/**
 * `npx tsx bench/deal-sweep.ts [--model GGUF] [--tasks FILE] [--n N] [--rounds R] SPEC…` — greedy
 * and each DeAL spec on the first N keyword dev tasks, R rounds. Each round shuffles the task
 * order (seeded by the round, from `--seed`, default 1) and rotates the order of the strategies, and runs them alternated
 * task by task with a cold cache (a change of machine load hits them alike). Prints, per
 * strategy, the quality figures of `tiller eval` (hard coverage, salad share, mean min token
 * logprob, logprob/token, rep4) and the evaluated-token, wall and process-CPU ratios to greedy,
 * as the median over rounds with the range [min–max] beside it: the spread a default needs
 * margin against. Used to choose `DEAL_DEFAULTS` (session 9). `--rows FILE` also writes every
 * run's row (text, coverage, worst token) as JSON lines, to see which tasks set a figure.
 */
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { createStrategy } from "../src/decoding/registry.js";
import { runStrategy } from "../src/decoding/run.js";
import { type EvalRow, type StrategySummary, summarize, taskMetrics } from "../src/eval/runEval.js";
import { taskReward } from "../src/eval/taskReward.js";
import { type EvalTask, readTasks } from "../src/eval/tasks.js";
import { loadModel } from "../src/lm/load.js";
import { promptTokens } from "../src/lm/prompt.js";
import { writeFileAtomic } from "../src/util/atomicWrite.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: "string", default: process.env.TILLER_TEST_MODEL ?? "../shared/models/stories260K.gguf" },
    tasks: { type: "string", default: "../shared/eval/keywords-dev.jsonl" },
    n: { type: "string", default: "40" },
    rounds: { type: "string", default: "3" },
    rows: { type: "string" },
    seed: { type: "string", default: "1" },
    threads: { type: "string", default: "1" },
  },
});
const specs = ["greedy", ...positionals];
// Another thread count sums in another order: float near-ties fall the other way, which shows
// how far the quality figures move on such noise (they do not move with the task order).
const model = await loadModel(resolve(values.model), { gpu: false, threads: Number(values.threads) });
const tasks = readTasks(resolve(values.tasks)).slice(0, Number(values.n));
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(", ");
console.log(
  `model ${model.id}, ${model.threads} thread(s); ${tasks.length} tasks × ${values.rounds} rounds; load at start ${load()}`,
);

/** Fisher–Yates with a small seeded generator: round r's task order is the same on every rerun. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let s = (seed * 2654435761 + 1) % 2147483648;
  // A linear congruential step in 32-bit integer arithmetic (exact, unlike doubles past 2^53).
  const next = () => {
    s = ((Math.imul(s, 1103515245) + 12345) >>> 0) % 2147483648;
    return s / 2147483648;
  };
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

async function runOne(
  spec: string,
  task: EvalTask,
  prompt: number[],
): Promise<{ row: EvalRow; cpuMs: number }> {
  await model.clearCache();
  const reward = taskReward(task);
  const strategy = createStrategy(spec, { reward });
  const c0 = process.cpuUsage();
  const result = await runStrategy(strategy, {
    model,
    prompt: task.prompt,
    promptTokens: prompt,
    maxTokens: task.maxTokens,
  });
  const c = process.cpuUsage(c0);
  // Scored after the clock stops, as `tiller eval` does.
  const row: EvalRow = {
    strategy: spec,
    taskId: task.id,
    prompt: task.prompt,
    text: result.text,
    metrics: await taskMetrics(model, task, prompt, result, reward),
  };
  return { row, cpuMs: (c.user + c.system) / 1000 };
}

interface RoundFigures {
  summary: StrategySummary[];
  cpuRatio: number[];
}
const rounds: RoundFigures[] = [];
const allRows: (EvalRow & { round: number })[] = [];
const prompts = new Map<string, number[]>();
for (const task of tasks) prompts.set(task.id, await promptTokens(model, task.prompt));
for (let r = 0; r < Number(values.rounds); r++) {
  const order = shuffled(tasks, r + Number(values.seed));
  const rows: EvalRow[] = [];
  const cpu = new Map<string, number>(specs.map((s) => [s, 0]));
  for (const [t, task] of order.entries()) {
    // Rotate which strategy goes first, task by task and round by round.
    const rotated = specs.map((_, i) => specs[(i + t + r) % specs.length]);
    for (const spec of rotated) {
      const { row, cpuMs } = await runOne(spec, task, prompts.get(task.id) as number[]);
      rows.push(row);
      allRows.push({ ...row, round: r + 1 });
      cpu.set(spec, (cpu.get(spec) ?? 0) + cpuMs);
    }
    process.stderr.write(`\rround ${r + 1}: ${t + 1}/${order.length}   `);
  }
  const summary = summarize(rows, specs);
  const cpuRatio = specs.map((s) => (cpu.get(s) ?? 0) / (cpu.get("greedy") ?? 1));
  rounds.push({ summary, cpuRatio });
  process.stderr.write("\n");
  console.log(`round ${r + 1} (load ${load()}):`);
  for (const [i, s] of specs.entries()) console.log(`  ${line(s, [summary[i]], [cpuRatio[i]])}`);
}

function line(spec: string, ss: StrategySummary[], cpus: number[]): string {
  const fig = (values: number[], digits: number) => {
    const sorted = [...values].sort((a, b) => a - b);
    const median = sorted[Math.floor((sorted.length - 1) / 2)];
    return sorted.length === 1 || sorted[0] === sorted[sorted.length - 1]
      ? median.toFixed(digits)
      : `${median.toFixed(digits)} [${sorted[0].toFixed(digits)}–${sorted[sorted.length - 1].toFixed(digits)}]`;
  };
  return [
    spec.padEnd(44),
    `hard ${fig(
      ss.map((s) => s.hardCoverage),
      3,
    )}`,
    `salad ${fig(
      ss.map((s) => s.fluency.saladShare),
      3,
    )}`,
    `minlp ${fig(
      ss.map((s) => s.fluency.meanMinLogprob ?? Number.NaN),
      2,
    )}`,
    `lp/tok ${fig(
      ss.map((s) => s.logprobPerToken ?? Number.NaN),
      3,
    )}`,
    `rep4 ${fig(
      ss.map((s) => s.fluency.repetition),
      3,
    )}`,
    `tok× ${fig(
      ss.map((s) => s.evaluatedTokensRatio),
      2,
    )}`,
    `wall× ${fig(
      ss.map((s) => s.wallMsRatio),
      2,
    )}`,
    `cpu× ${fig(cpus, 2)}`,
  ].join("  ");
}

console.log(`\nmedian [min–max] over ${rounds.length} rounds (load at end ${load()}):`);
for (const [i, s] of specs.entries())
  console.log(
    line(
      s,
      rounds.map((r) => r.summary[i]),
      rounds.map((r) => r.cpuRatio[i]),
    ),
  );
if (values.rows)
  writeFileAtomic(resolve(values.rows), `${allRows.map((row) => JSON.stringify(row)).join("\n")}\n`);
await model.dispose();
