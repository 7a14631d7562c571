/**
 * `npm run bench:copy -- [MODEL] [FROM:TO] [SPEC]` — a search with and without copying cached
 * prefixes between llama.cpp sequences (`copySequences`, sequenceFork.ts), side by side in one
 * run: the two model instances alternate task by task (the order rotating), so load hits both
 * alike. Prints wall and CPU time, evaluated positions and how many texts are identical.
 * Defaults: stories-heavy.gguf from $TILLER_TEST_MODELS (a model of real compute per token),
 * keyword dev tasks 0:10, `deal`.
 */
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { createStrategy } from "../src/decoding/registry.js";
import { runStrategy } from "../src/decoding/run.js";
import { taskReward } from "../src/eval/taskReward.js";
import { readTasks } from "../src/eval/tasks.js";
import { loadModel } from "../src/lm/load.js";
import { promptTokens } from "../src/lm/prompt.js";
import { testModelsPath } from "../test/models.js";

const [modelPath = testModelsPath("stories-heavy.gguf"), range = "0:10", spec = "deal"] =
  process.argv.slice(2);
const [from, to] = range.split(":").map(Number);
const tasks = readTasks(resolve("../shared/eval/keywords-dev.jsonl")).slice(from, to);
const variants = [false, true].map((copySequences) => ({
  copySequences,
  wall: 0,
  cpu: 0,
  positions: 0,
  texts: [] as string[],
}));
const models = await Promise.all(
  variants.map((v) =>
    loadModel(resolve(modelPath), { gpu: false, threads: 1, copySequences: v.copySequences }),
  ),
);
console.log(`${spec} on ${modelPath}, tasks ${range}, load ${loadavg()[0].toFixed(1)}`);
for (const [t, task] of tasks.entries()) {
  for (let j = 0; j < variants.length; j++) {
    const i = (j + t) % variants.length;
    const [model, v] = [models[i], variants[i]];
    const prompt = await promptTokens(model, task.prompt);
    await model.clearCache();
    const positions = model.usage.evaluatedTokens;
    const cpu = process.cpuUsage();
    const wall = performance.now();
    const result = await runStrategy(createStrategy(spec, { reward: taskReward(task) }), {
      model,
      prompt: task.prompt,
      promptTokens: prompt,
      maxTokens: task.maxTokens,
    });
    const used = process.cpuUsage(cpu);
    v.wall += performance.now() - wall;
    v.cpu += (used.user + used.system) / 1000;
    v.positions += model.usage.evaluatedTokens - positions;
    v.texts.push(result.text);
    process.stderr.write(".");
  }
}
process.stderr.write("\n");
const [off, on] = variants;
for (const v of variants)
  console.log(
    `copySequences=${String(v.copySequences).padEnd(5)}  wall ${(v.wall / 1000).toFixed(1)} s  CPU ${(v.cpu / 1000).toFixed(1)} s  evaluated positions ${v.positions}`,
  );
console.log(
  `copying: ${(off.wall / on.wall).toFixed(2)}× wall, ${(off.cpu / on.cpu).toFixed(2)}× CPU, ` +
    `${(off.positions / on.positions).toFixed(2)}× fewer positions; identical text ${on.texts.filter((x, k) => x === off.texts[k]).length}/${tasks.length}; load ${loadavg()[0].toFixed(1)}`,
);
for (const m of models) await m.dispose();
