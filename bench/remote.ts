/**
 * bench:remote — the HTTP backend (llama-server, one and a fleet of two) against the in-process
 * backend, side by side in one run, on the stories model.
 *
 *   npm run bench:remote      (needs ../shared/bin/llama-server; TILLER_TEST_MODEL overrides the model)
 *
 * Every side runs one thread: the in-process model, and each llama-server (`-t 1`, 16 slots, its
 * default settings). The machine's cores are shared by all of them and by this process.
 *
 * 1. Greedy tokens/s through `rollouts` (3 prompts × 256 tokens, 3 runs), and whether the texts
 *    are identical.
 * 2. HTTP requests per `nextTokenDistributions` call (a batch of 16) and per `scoreContinuations`
 *    call (16 tokens scored: llama-server has no prompt logprobs, so one request per position).
 * 3. A DeAL-like access pattern (as bench:backend): 12 steps, each the top-16 candidates of the
 *    current prefix and a greedy 8-token rollout after each, then the prefix grows by the best
 *    branch — one search, then two independent searches at once (the fleet keeps each search on
 *    one endpoint and spreads the two). Wall time, requests per step, and the share of prompt
 *    tokens served from the prompt cache (llama-server's `timings.cache_n`; in-process: tokens
 *    reused from the sequence pool).
 */
import { RemoteModel } from "../src/lm/http/remoteModel.js";
import { loadModel } from "../src/lm/load.js";
import { type LanguageModel, type Token, usageSince } from "../src/lm/types.js";
import { testModelPath } from "../test/helpers.js";
import { startLlamaServer } from "../test/llamaServer.js";

const PROMPTS = ["Once upon a time", "Tom and Sue went to the park", "The little dog was"];
const GREEDY = { runs: 3, tokens: 256 };
const DEAL = { steps: 12, branches: 16, rolloutTokens: 8 };

interface DealRun {
  ms: number;
  requests: number;
  requested: number;
  cached: number;
}

/** `starts.length` DeAL-like searches at once on `model` (see the header). */
async function dealLike(model: LanguageModel, starts: readonly Token[][]): Promise<DealRun> {
  const usage = { ...model.usage };
  const requests = model instanceof RemoteModel ? model.stats.requests : 0;
  const started = performance.now();
  await Promise.all(
    starts.map(async (start) => {
      let prefix: Token[] = [...start];
      for (let step = 0; step < DEAL.steps; step++) {
        const [candidates] = await model.nextTokenDistributions([prefix], { topK: DEAL.branches });
        const branches = candidates.filter((c) => !model.isStopToken(c.token));
        const rollouts = await model.rollouts(
          branches.map((c) => ({ prefix: [...prefix, c.token] })),
          { maxTokens: DEAL.rolloutTokens },
        );
        let best = 0;
        for (let i = 1; i < branches.length; i++)
          if (branches[i].logprob + rollouts[i].logprob > branches[best].logprob + rollouts[best].logprob)
            best = i;
        prefix = [...prefix, branches[best].token];
      }
    }),
  );
  const used = usageSince(usage, model.usage);
  return {
    ms: performance.now() - started,
    requests: model instanceof RemoteModel ? model.stats.requests - requests : 0,
    requested: used.requestedPrefixTokens,
    cached: used.cachedPrefixTokens,
  };
}

const rows: string[][] = [];
const row = (...cells: (string | number)[]) => rows.push(cells.map(String));
const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

// Default server settings (flash attention, f16 KV), 16 slots: a DeAL step's 16 branches run at once.
const servers = await Promise.all([
  startLlamaServer({ exact: false, slots: 16 }),
  startLlamaServer({ exact: false, slots: 16 }),
]);
const local = await loadModel(testModelPath(), { gpu: false, threads: 1, progress: false });
const one = await RemoteModel.open([servers[0].url]);
const fleet = await RemoteModel.open(servers.map((s) => s.url));
const sides: [string, LanguageModel][] = [
  ["in-process", local],
  ["llama-server", one],
  ["fleet of 2", fleet],
];

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
  let before = one.stats;
  await one.nextTokenDistributions(batch, { topK: 8 });
  const perDistributions = one.stats.requests - before.requests;
  const [greedy] = await local.rollouts([{ prefix: prefixes[1] }], { maxTokens: 16 });
  before = one.stats;
  await one.scoreContinuations([{ prefix: prefixes[1], continuation: greedy.tokens }]);
  const perScore = one.stats.requests - before.requests;

  // --- 3. DeAL-like access pattern: one search, then two independent searches at once ---------
  const deal = new Map<string, DealRun>();
  for (const [name, model] of sides) deal.set(name, await dealLike(model, [prefixes[0]]));
  const pair = new Map<string, DealRun>();
  for (const [name, model] of sides) pair.set(name, await dealLike(model, [prefixes[0], prefixes[1]]));

  // --- Report ------------------------------------------------------------------------------------
  const base = rates.get("in-process") as number;
  row("measure", ...sides.map(([name]) => name));
  row("greedy tok/s (one stream)", ...sides.map(([name]) => fmt(rates.get(name) as number)));
  row("greedy ratio to in-process", ...sides.map(([name]) => fmt((rates.get(name) as number) / base, 2)));
  row(
    "greedy text identical to in-process",
    ...sides.map(([name]) => (texts.get(name) === texts.get("in-process") ? "yes" : "NO")),
  );
  row("requests per nextTokenDistributions (16 prefixes)", "—", String(perDistributions), "");
  row(`requests per scoreContinuations (${greedy.tokens.length} tokens)`, "—", String(perScore), "");
  const dealRows = (label: string, runs: Map<string, DealRun>, searches: number) => {
    const baseMs = runs.get("in-process")?.ms as number;
    row(`${label}: wall ms`, ...sides.map(([name]) => fmt(runs.get(name)?.ms as number)));
    row(
      `${label}: wall ratio to in-process`,
      ...sides.map(([name]) => fmt((runs.get(name)?.ms as number) / baseMs, 2)),
    );
    row(
      `${label}: requests per step`,
      "—",
      ...sides
        .slice(1)
        .map(([name]) => fmt((runs.get(name)?.requests as number) / (DEAL.steps * searches), 1)),
    );
    row(
      `${label}: prompt tokens from cache`,
      ...sides.map(([name]) => {
        const d = runs.get(name) as DealRun;
        return `${fmt((d.cached / d.requested) * 100, 1)}% of ${fmt(d.requested)}`;
      }),
    );
  };
  dealRows("DeAL-like, 1 search", deal, 1);
  dealRows("DeAL-like, 2 searches at once", pair, 2);
  const fleetSplit = fleet.stats.endpoints.map((e) => e.requests);
  row("fleet requests per endpoint (whole run)", "—", "—", fleetSplit.join(" / "));
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c])).join("  "));
} finally {
  await fleet.dispose();
  await one.dispose();
  await local.dispose();
  await Promise.all(servers.map((s) => s.stop()));
}
