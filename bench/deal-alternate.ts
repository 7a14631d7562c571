/**
 * `npx tsx bench/deal-alternate.ts MODEL N [SPEC…]` — greedy and each DeAL spec on the first N
 * keyword dev tasks, alternated task by task (so a change of machine load hits them alike), cold
 * cache each run; prints the strategies' own CPU time and wall time as ratios to greedy. On a
 * shared machine this is the steadier wall-time figure beside `bench:deal`'s sequential one.
 */
import { resolve } from "node:path";
import { createStrategy } from "../src/decoding/registry.js";
import { runStrategy } from "../src/decoding/run.js";
import { taskReward } from "../src/eval/taskReward.js";
import { readTasks } from "../src/eval/tasks.js";
import { loadModel } from "../src/lm/load.js";
import { promptTokens } from "../src/lm/prompt.js";

const [modelPath, n, ...specs] = process.argv.slice(2);
const model = await loadModel(resolve(modelPath), { gpu: false, threads: 1 });
const tasks = readTasks(resolve("../shared/eval/keywords-dev.jsonl")).slice(0, Number(n));
const all = ["greedy", ...specs];
const cpu = new Map<string, number>(all.map((s) => [s, 0]));
const wall = new Map<string, number>(all.map((s) => [s, 0]));
// Alternate the strategies task by task so load changes hit them alike.
for (const task of tasks) {
  const prompt = await promptTokens(model, task.prompt);
  for (const spec of all) {
    await model.clearCache();
    const strategy = createStrategy(spec, { reward: taskReward(task) });
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await runStrategy(strategy, {
      model,
      prompt: task.prompt,
      promptTokens: prompt,
      maxTokens: task.maxTokens,
    });
    const c = process.cpuUsage(c0);
    wall.set(spec, (wall.get(spec) ?? 0) + performance.now() - t0);
    cpu.set(spec, (cpu.get(spec) ?? 0) + (c.user + c.system) / 1000);
  }
}
for (const spec of all)
  console.log(
    spec.padEnd(50),
    "cpu×",
    ((cpu.get(spec) ?? 0) / (cpu.get("greedy") ?? 1)).toFixed(2),
    "wall×",
    ((wall.get(spec) ?? 0) / (wall.get("greedy") ?? 1)).toFixed(2),
  );
await model.dispose();
