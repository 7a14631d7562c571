/**
 * bench:remote — the HTTP backend (one llama-server, and a fleet of two) against the in-process
 * backend, side by side in one run, on the stories model.
 *
 *   npm run bench:remote      (needs ../shared/bin/llama-server; TILLER_TEST_MODEL overrides the model)
 *
 * Every side runs one thread: the in-process model, and each llama-server (`-t 1`, 16 slots, its
 * default settings). Four servers run: one for the single-server side, two for the fleet, and one
 * for "1 req/position" — a single server scored the way the dialect did before its run reader
 * (`scoreRuns: false`: one request per scored position), for a before/after in the same run — so no
 * side finds another's searches in a prompt cache. They listen on free loopback ports and are
 * stopped when the bench ends, fails or is interrupted (Ctrl-C).
 *
 * 1. Greedy tokens/s through `rollouts` (3 prompts × 256 tokens, 3 runs), and whether the texts
 *    are identical.
 * 2. HTTP requests per `nextTokenDistributions` call (a batch of 16) and per `scoreContinuations`
 *    call (16 tokens scored: llama-server has no prompt logprobs; a run of plain-text tokens is read
 *    in one grammar-constrained request, else one request per position).
 * 3. `tiller eval`'s DeAL on the first 10 keyword dev tasks — `runEval` with the `deal` strategy
 *    (metered: bench/meteredDeal.ts), cache "warm" on every side (a server's prompt cache cannot be
 *    emptied). The sides alternate task by task (the order rotating), so load drift hits them
 *    alike. Coverage (must match in-process within 0.05), identical texts, wall time (the search,
 *    and the whole eval with its fluency re-scoring), HTTP requests per DeAL step, and the share of
 *    prompt tokens served from the prompt cache (llama-server's `timings.cache_n` against the
 *    prompt tokens sent; in process: tokens reused from the sequence pool).
 */
import { loadavg } from "node:os";
import { type EvalRow, runEval } from "../src/eval/runEval.js";
import { readTasks } from "../src/eval/tasks.js";
import { RemoteModel } from "../src/lm/http/remoteModel.js";
import { loadModel } from "../src/lm/load.js";
import type { LanguageModel } from "../src/lm/types.js";
import { sharedPath, testModelPath } from "../test/helpers.js";
import { type RunningServer, startLlamaServer } from "../test/llamaServer.js";
import { meterOf, registerMeteredDeal } from "./meteredDeal.js";

const PROMPTS = ["Once upon a time", "Tom and Sue went to the park", "The little dog was"];
const GREEDY = { runs: 3, tokens: 256 };
const EVAL_TASKS = 10;

// Ctrl-C: exit through process.exit, so the harness's exit hook kills the servers.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130));

const rows: string[][] = [];
const row = (...cells: (string | number)[]) => rows.push(cells.map(String));
const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

// Default server settings (flash attention, f16 KV), 16 slots: a DeAL step's branches run at once.
const starting = await Promise.allSettled(
  [0, 1, 2, 3].map(() => startLlamaServer({ exact: false, slots: 16 })),
);
const servers = starting.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
const failed = starting.find((s): s is PromiseRejectedResult => s.status === "rejected");
if (failed) {
  await Promise.all(servers.map((s: RunningServer) => s.stop()));
  throw failed.reason;
}
const local = await loadModel(testModelPath(), { gpu: false, threads: 1, progress: false });
const one = await RemoteModel.open([servers[0].url]);
const fleet = await RemoteModel.open([servers[1].url, servers[2].url]);
// Before the run reader: every scored position its own request (`scoreRuns: false`).
const perPosition = await RemoteModel.open([servers[3].url], { scoreRuns: false });
const sides: [string, LanguageModel][] = [
  ["in-process", local],
  ["llama-server", one],
  ["fleet of 2", fleet],
  ["llama-server, 1 req/position", perPosition],
];
const remotes = sides.slice(1).map(([, model]) => model as RemoteModel);

try {
  // --- 1. Greedy throughput (sides interleaved run by run, so load drift hits them alike) --------
  const prefixes = await Promise.all(PROMPTS.map((p) => local.tokenize(p)));
  const texts = new Map<string, string>(sides.map(([name]) => [name, ""]));
  const tokens = new Map<string, number>(sides.map(([name]) => [name, 0]));
  const ms = new Map<string, number>(sides.map(([name]) => [name, 0]));
  for (const [, model] of sides) await model.rollouts([{ prefix: prefixes[0] }], { maxTokens: 32 }); // warm-up
  for (let run = 0; run < GREEDY.runs; run++)
    for (const [name, model] of sides)
      for (const prefix of prefixes) {
        // One rollout at a time: the rate of a single stream, as `tiller generate` sees it.
        const started = performance.now();
        const [rollout] = await model.rollouts([{ prefix }], { maxTokens: GREEDY.tokens });
        ms.set(name, (ms.get(name) as number) + performance.now() - started);
        tokens.set(name, (tokens.get(name) as number) + rollout.tokens.length);
        if (run === 0)
          texts.set(name, texts.get(name) + model.detokenize(rollout.tokens, { context: prefix }));
      }
  const rates = new Map(
    sides.map(([name]) => [name, ((tokens.get(name) as number) / (ms.get(name) as number)) * 1000]),
  );

  // --- 2. Requests per call ----------------------------------------------------------------------
  const batch = Array.from({ length: 16 }, (_, i) => [...prefixes[i % 3], 300 + i]);
  const [greedy] = await local.rollouts([{ prefix: prefixes[1] }], { maxTokens: 16 });
  const perDistributions: number[] = [];
  const perScore: number[] = [];
  for (const model of remotes) {
    let before = model.stats.requests;
    await model.nextTokenDistributions(batch, { topK: 8 });
    perDistributions.push(model.stats.requests - before);
    before = model.stats.requests;
    await model.scoreContinuations([{ prefix: prefixes[1], continuation: greedy.tokens }]);
    perScore.push(model.stats.requests - before);
  }

  // --- 3. tiller eval's DeAL on dev tasks, the sides alternating task by task ---------------------
  registerMeteredDeal();
  const tasks = readTasks(sharedPath("eval/keywords-dev.jsonl")).slice(0, EVAL_TASKS);
  const evalRows = new Map<string, EvalRow[]>(sides.map(([name]) => [name, []]));
  const evalMs = new Map<string, number>(sides.map(([name]) => [name, 0]));
  const evalRequests = new Map<string, number>(sides.map(([name]) => [name, 0]));
  const evalCache = new Map<string, { requested: number; cached: number }>(
    sides.map(([name]) => [name, { requested: 0, cached: 0 }]),
  );
  for (const [t, task] of tasks.entries())
    for (let i = 0; i < sides.length; i++) {
      const [name, model] = sides[(t + i) % sides.length];
      const usage = { ...model.usage };
      const requests = model instanceof RemoteModel ? model.stats.requests : 0;
      const began = performance.now();
      const result = await runEval(model, [task], ["deal-metered"], { cache: "warm" });
      evalMs.set(name, (evalMs.get(name) as number) + performance.now() - began);
      evalRows.get(name)?.push(...result.rows);
      if (model instanceof RemoteModel)
        evalRequests.set(name, (evalRequests.get(name) as number) + model.stats.requests - requests);
      const cache = evalCache.get(name) as { requested: number; cached: number };
      cache.requested += model.usage.requestedPrefixTokens - usage.requestedPrefixTokens;
      cache.cached += model.usage.cachedPrefixTokens - usage.cachedPrefixTokens;
    }

  // --- Report ------------------------------------------------------------------------------------
  const base = rates.get("in-process") as number;
  row("measure", ...sides.map(([name]) => name));
  row("greedy tok/s (one stream)", ...sides.map(([name]) => fmt(rates.get(name) as number)));
  row("greedy ratio to in-process", ...sides.map(([name]) => fmt((rates.get(name) as number) / base, 2)));
  row(
    "greedy text identical to in-process",
    ...sides.map(([name]) => (texts.get(name) === texts.get("in-process") ? "yes" : "NO")),
  );
  row("requests per nextTokenDistributions (16 prefixes)", "—", ...perDistributions.map(String));
  row(`requests per scoreContinuations (${greedy.tokens.length} tokens)`, "—", ...perScore.map(String));
  const mean = (rows: EvalRow[], f: (row: EvalRow) => number) =>
    rows.reduce((acc, row) => acc + f(row), 0) / rows.length;
  const rowsOf = (name: string) => evalRows.get(name) as EvalRow[];
  const soft = (name: string) => mean(rowsOf(name), (r) => r.metrics.softCoverage);
  const baseRows = rowsOf("in-process");
  const label = `DeAL eval, ${tasks.length} dev tasks`;
  row(`${label}: soft coverage`, ...sides.map(([name]) => fmt(soft(name), 3)));
  row(
    `${label}: hard coverage`,
    ...sides.map(([name]) =>
      fmt(
        mean(rowsOf(name), (r) => r.metrics.hardCoverage),
        3,
      ),
    ),
  );
  row(
    `${label}: soft coverage within 0.05 of in-process`,
    ...sides.map(([name]) => (Math.abs(soft(name) - soft("in-process")) <= 0.05 ? "yes" : "NO")),
  );
  row(
    `${label}: texts identical to in-process`,
    ...sides.map(([name]) => {
      const same = rowsOf(name).filter((r, i) => r.text === baseRows[i].text).length;
      return `${same}/${tasks.length}`;
    }),
  );
  const searchMs = (name: string) => rowsOf(name).reduce((acc, r) => acc + r.metrics.wallMs, 0);
  row(`${label}: search wall ms`, ...sides.map(([name]) => fmt(searchMs(name))));
  row(
    `${label}: search wall ratio to in-process`,
    ...sides.map(([name]) => fmt(searchMs(name) / searchMs("in-process"), 2)),
  );
  row(`${label}: eval wall ms (+ re-scoring)`, ...sides.map(([name]) => fmt(evalMs.get(name) as number)));
  row(
    `${label}: eval wall ratio to in-process`,
    ...sides.map(([name]) => fmt((evalMs.get(name) as number) / (evalMs.get("in-process") as number), 2)),
  );
  row(`${label}: DeAL steps`, ...sides.map(([, model]) => String(meterOf(model).steps)));
  row(
    `${label}: requests per DeAL step`,
    "—",
    ...sides.slice(1).map(([, model]) => fmt(meterOf(model).requests / meterOf(model).steps, 1)),
  );
  row(
    `${label}: requests, whole eval (+ re-scoring)`,
    "—",
    ...sides.slice(1).map(([name]) => fmt(evalRequests.get(name) as number)),
  );
  const share = (cached: number, requested: number) =>
    `${fmt((cached / requested) * 100, 1)}% of ${fmt(requested)}`;
  row(
    `${label}: prompt tokens from cache, search`,
    ...sides.map(([, model]) => share(meterOf(model).cachedTokens, meterOf(model).requestedTokens)),
  );
  row(
    `${label}: prompt tokens from cache, whole eval`,
    ...sides.map(([name]) => {
      const c = evalCache.get(name) as { requested: number; cached: number };
      return share(c.cached, c.requested);
    }),
  );
  const fleetSplit = fleet.stats.endpoints.map((e) => e.requests);
  row("fleet requests per endpoint (whole run)", "—", "—", fleetSplit.join(" / "), "—");
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c])).join("  "));
} finally {
  await Promise.all(remotes.map((model) => model.dispose()));
  await local.dispose();
  await Promise.all(servers.map((s) => s.stop()));
}
console.log(
  `load: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")} (1/5/15 min)`,
);
