/**
 * `npm run bench:bon` — InfAlign figures with the stories model:
 * 1. N samples batched (one `rollouts` call) vs sequential (N calls): wall-time ratio, N = 8, 16.
 * 2. On ../shared/eval/keywords-dev.jsonl with each task's keywords reward (soft coverage):
 *    Best-of-N win rate against the reference for N = 4, 16, picking by the raw reward, by the
 *    calibrated reward C, and by exp:5 ∘ C. The win rate of an output is its calibrated value
 *    against a held-out reference (other seeds), so selection and evaluation do not share samples.
 */
import { resolve } from "node:path";
import { calibrated } from "../src/calibration/calibrated.js";
import { ReferencePolicy } from "../src/calibration/reference.js";
import { transformed } from "../src/calibration/transforms.js";
import { mean } from "../src/calibration/winrate.js";
import { bestOfN, pickIndex } from "../src/decoding/bestOfN.js";
import { streamSeeds } from "../src/decoding/seeds.js";
import { readTasks } from "../src/eval/tasks.js";
import { loadModel } from "../src/lm/load.js";
import { promptTokens } from "../src/lm/prompt.js";
import { keywordsReward } from "../src/rewards/keywords.js";
import { scoreAll } from "../src/rewards/types.js";

const modelPath = resolve(process.env.TILLER_TEST_MODEL ?? "../shared/models/stories260K.gguf");
const tasksPath = resolve("../shared/eval/keywords-dev.jsonl");
const model = await loadModel(modelPath, { gpu: false, threads: 1, sequences: 16 });

// 1. Batched vs sequential sampling.
console.log("## N samples: batched vs sequential (stories260K, CPU, 1 thread, 64 tokens each, median of 3)");
console.log("N   batched ms  sequential ms  sequential/batched");
const tokens = await promptTokens(model, "Once upon a time");
for (const n of [8, 16]) {
  const seeds = streamSeeds(7, "bench", n);
  const options = { temperature: 1, maxTokens: 64 };
  const batched: number[] = [];
  const sequential: number[] = [];
  for (let r = 0; r < 3; r++) {
    let t = performance.now();
    await model.rollouts(
      seeds.map((seed) => ({ prefix: tokens, seed })),
      options,
    );
    batched.push(performance.now() - t);
    t = performance.now();
    for (const seed of seeds) await model.rollouts([{ prefix: tokens, seed }], options);
    sequential.push(performance.now() - t);
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[1];
  console.log(
    `${String(n).padEnd(3)} ${med(batched).toFixed(0).padStart(10)}  ${med(sequential).toFixed(0).padStart(13)}  ${(med(sequential) / med(batched)).toFixed(2).padStart(18)}`,
  );
}

// 2. Best-of-N win rates: raw vs calibrated vs exp:t.
const tasks = readTasks(tasksPath);
const m = 32;
const trials = 2;
const t = 5;
const maxTokensOf = new Map(tasks.map((task) => [task.prompt, task.maxTokens]));
const refOptions = { m, modelPath, maxTokensFor: (p: string) => maxTokensOf.get(p) };
const reference = new ReferencePolicy(model, { ...refOptions, seed: 0 });
const heldOut = new ReferencePolicy(model, { ...refOptions, seed: 1 });
const started = performance.now();
await reference.prefetch(tasks.map((task) => task.prompt));
await heldOut.prefetch(tasks.map((task) => task.prompt));
const variants = ["raw", "calibrated", `exp:${t}(calibrated)`] as const;
const wins: Record<string, Record<number, number[]>> = Object.fromEntries(
  variants.map((v) => [v, { 4: [], 16: [] }]),
);
const ties: Record<number, number> = { 4: 0, 16: 0 };
for (const task of tasks) {
  const raw = keywordsReward(task.keywords, { mode: "soft" });
  const c = calibrated(raw, reference);
  const rewards = { raw, calibrated: c, [`exp:${t}(calibrated)`]: transformed(c, `exp:${t}`) };
  const judge = calibrated(raw, heldOut);
  const context = {
    model,
    prompt: task.prompt,
    promptTokens: await promptTokens(model, task.prompt),
    maxTokens: task.maxTokens,
  };
  for (let trial = 0; trial < trials; trial++) {
    // 16 candidates; the first 4 are exactly what Best-of-4 with the same seed draws.
    const all = await bestOfN({
      n: 16,
      reward: raw,
      sampling: { temperature: 1, seed: 100 + trial },
    }).candidates(context);
    for (const n of [4, 16]) {
      const candidates = all.slice(0, n);
      const inputs = candidates.map((x) => ({
        prompt: task.prompt,
        text: x.text,
        tokens: x.tokens,
        finished: true,
      }));
      const judged = await scoreAll(judge, inputs);
      const rawScores = candidates.map((x) => x.reward);
      if (rawScores.every((s) => s === rawScores[0])) ties[n]++;
      for (const variant of variants) {
        const scores = await scoreAll(rewards[variant], inputs);
        wins[variant][n].push(judged[pickIndex(scores, "best")]);
      }
    }
  }
}
const total = tasks.length * trials;
console.log(
  `\n## Best-of-N win rate vs the reference on keywords-dev (${tasks.length} tasks × ${trials} trials, keywords soft coverage, m = ${m}, held-out reference m = ${m}; ${((performance.now() - started) / 1000).toFixed(0)} s)`,
);
console.log(`N    ${variants.map((v) => v.padEnd(22)).join("")}analytic N/(N+1)  all-N-tied draws`);
for (const n of [4, 16]) {
  const cells = variants.map((v) => {
    const xs = wins[v][n];
    const mu = mean(xs);
    const se = Math.sqrt(mean(xs.map((x) => (x - mu) ** 2)) / xs.length);
    return `${mu.toFixed(3)} ± ${(1.96 * se).toFixed(3)}`.padEnd(22);
  });
  console.log(
    `${String(n).padEnd(5)}${cells.join("")}${(n / (n + 1)).toFixed(3).padEnd(18)}${ties[n]}/${total}`,
  );
}
console.log(
  "(± : 95% normal interval over draws. Win rate = calibrated value of the chosen output against a held-out reference, ties ½.)",
);
await model.dispose();
