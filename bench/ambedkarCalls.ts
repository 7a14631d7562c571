/**
 * `npm run bench:ambedkar-calls` — where AMBEDKAR's time goes: model calls (sequential round trips)
 * and verifier requests per step, masked and stated prompts apart, with its shortcuts off (every
 * contender judged, as before them) and on, beside greedy; tasks alternate between the variants so
 * load lands on all of them. Also checks that both give the same text.
 *
 *   npm run bench:ambedkar-calls -- [--per-kind N] [--spec "divergence=logratio,alpha=30"] [--heavy]
 *
 * `--paired` loads the models with `pairLoneTokens` (distributions independent of cache history, for exact A/B of call patterns; off by default, as `tiller` loads models).
 * `--heavy` verifies with stories-heavy-n25.gguf (in $TILLER_TEST_MODELS, see test/models.ts)
 * instead of the proposer itself.
 */
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { loadSwapMap } from "../src/decoding/ambedkar/builtinSwaps.js";
import { createStrategy } from "../src/decoding/registry.js";
import { runStrategy } from "../src/decoding/run.js";
import { readIdentityTasks } from "../src/eval/identityTasks.js";
import { loadModel } from "../src/lm/load.js";
import { promptTokens } from "../src/lm/prompt.js";
import { testModelsPath } from "../test/models.js";

const { values } = parseArgs({
  options: {
    tasks: { type: "string", default: "../shared/eval/identity-dev.jsonl" },
    model: { type: "string", default: "../shared/models/stories260K.gguf" },
    "per-kind": { type: "string", default: "8" },
    spec: { type: "string", default: "divergence=logratio,alpha=30" },
    heavy: { type: "boolean", default: false },
    paired: { type: "boolean", default: false },
  },
});
// Paired evaluation (load.ts) makes a distribution independent of which call computed it, so
// AMBEDKAR's reuse of one step's distributions at the next decides exactly as asking again would.
const load = (path: string) => loadModel(path, { gpu: false, threads: 1, pairLoneTokens: values.paired });
const model = await load(resolve(values.model));
const verifier = values.heavy ? await load(testModelsPath("stories-heavy-n25.gguf")) : undefined;
const perKind = Number(values["per-kind"]);
const all = readIdentityTasks(resolve(values.tasks));
const deps = { swaps: loadSwapMap("gender") };
const variants = {
  greedy: "greedy",
  "shortcuts off": `ambedkar:${values.spec},shortcuts=false`,
  "shortcuts on": `ambedkar:${values.spec}`,
};
const load1 = () =>
  loadavg()
    .map((v) => v.toFixed(1))
    .join(" ");
console.log(`load average (1/5/15 min) at start: ${load1()}; verifier: ${verifier?.id ?? "self"}`);
console.log(
  "kind | variant | steps | model calls / step | verifier requests / step | free-leader steps | wall ms / step | cpu ms / step",
);
console.log("---|---|---|---|---|---|---|---");
let differing = 0;
for (const kind of ["masked", "stated"] as const) {
  const tasks = all.filter((t) => t.kind === kind).slice(0, perKind);
  const totals = Object.fromEntries(
    Object.keys(variants).map((name) => [
      name,
      { steps: 0, calls: 0, requests: 0, free: 0, wall: 0, cpu: 0 },
    ]),
  );
  for (const task of tasks) {
    const texts: string[] = [];
    for (const [name, spec] of Object.entries(variants)) {
      await Promise.all([model.clearCache(), verifier?.clearCache()]);
      const calls = model.usage.calls + (verifier?.usage.calls ?? 0);
      const cpu = process.cpuUsage();
      const result = await runStrategy(createStrategy(spec, deps), {
        model,
        verifier,
        prompt: task.prompt,
        promptTokens: await promptTokens(model, task.prompt),
        maxTokens: task.maxTokens,
      });
      const used = process.cpuUsage(cpu);
      const t = totals[name];
      t.steps += result.tokens.length;
      t.calls += model.usage.calls + (verifier?.usage.calls ?? 0) - calls;
      t.wall += result.stats.wallMs;
      t.cpu += (used.user + used.system) / 1000;
      if (result.details?.strategy === "ambedkar") {
        t.requests += result.details.verifierRequests;
        t.free += result.details.freeLeaderSteps;
        texts.push(result.text);
      }
    }
    if (texts[0] !== texts[1]) differing++;
  }
  for (const [name, t] of Object.entries(totals))
    console.log(
      [
        kind,
        name,
        t.steps,
        (t.calls / t.steps).toFixed(2),
        (t.requests / t.steps).toFixed(2),
        t.free,
        (t.wall / t.steps).toFixed(2),
        (t.cpu / t.steps).toFixed(2),
      ].join(" | "),
    );
}
console.log(`tasks whose text differs between shortcuts off and on: ${differing}`);
console.log(`load average (1/5/15 min) at end: ${load1()}`);
await Promise.all([model.dispose(), verifier?.dispose()]);
