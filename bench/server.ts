/**
 * bench:server — `tiller serve` measured side by side in one run.
 *
 *   npm run bench:server [-- --threads N]
 *   (models: ../shared/models/stories260K.gguf, and the compute-bound twin stories-heavy.gguf from
 *   ../shared/tools/make-test-models.sh in $TILLER_HEAVY_MODEL or $TILLER_TEST_MODELS, see test/models.ts)
 *
 * 1. Continuous batching (stories-heavy, compute-bound): aggregate generated tokens/s of 8
 *    concurrent greedy SSE streams vs 1 stream, max_tokens 64, same threads; the 8 texts must equal
 *    the single stream's. Target ≥ 3×.
 * 2. Server overhead (stories260K): one non-streaming greedy request of 64 tokens over HTTP vs the
 *    library's `generate` on the same model, alternated, medians. Target ≤ 10 %.
 * 3. Latency p50/p99 at 1, 4 and 16 concurrent clients (stories260K, 64 greedy tokens each).
 * 4. Overload: a separate `tiller serve` process with --max-concurrent 4 --max-queue 4 and
 *    4 × (4 + 4) = 32 concurrent clients: every response must be 200 or 429, the server must
 *    survive (0 crashes), and its peak RSS (VmHWM) is reported.
 *
 * The prompts' stories do not end within 64 tokens (checked: every run must generate exactly 64
 * tokens), so stop tokens never cut a measurement short.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { generate } from "../src/generate.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { loadModel } from "../src/lm/load.js";
import { type RunningServer, startServer } from "../src/server/server.js";
import { testModelsDir } from "../test/models.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const threadsArg = process.argv.indexOf("--threads");
const THREADS = threadsArg > 0 ? Number(process.argv[threadsArg + 1]) : 1;
const TOKENS = 64;
/** Alternating rounds of the 1-stream and 8-stream measurements (medians reported). */
const ROUNDS = 3;
const PROMPT = "Once upon a time, there was a little girl";
const smallPath = resolve(root, process.env.TILLER_TEST_MODEL ?? "../shared/models/stories260K.gguf");
const heavyPath = resolve(
  root,
  process.env.TILLER_HEAVY_MODEL ?? join(testModelsDir(), "stories-heavy.gguf"),
);
for (const path of [smallPath, heavyPath])
  if (!existsSync(path)) {
    console.error(`bench:server: model not found at ${path} (see the header of bench/server.ts)`);
    process.exit(1);
  }

const results: { check: string; value: string; target: string; pass: boolean | null }[] = [];
const report = (check: string, value: string, target = "", pass: boolean | null = null) =>
  results.push({ check, value, target, pass });
const median = (xs: number[]) => percentile(xs, 50);
function percentile(xs: readonly number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

async function serveModel(model: LlamaCppModel, options: Partial<Parameters<typeof startServer>[0]> = {}) {
  return startServer({
    model,
    port: 0,
    batchCapacity: 8,
    maxConcurrent: 8,
    maxQueue: 64,
    logger: pino({ level: "silent" }),
    ...options,
  });
}

async function complete(url: string, body: Record<string, unknown>) {
  const response = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return {
    status: response.status,
    body: (await response.json()) as { choices: { text: string }[]; usage: { completion_tokens: number } },
  };
}

/** One SSE stream: its concatenated text and generated token count. */
async function stream(url: string, model: string): Promise<{ text: string; tokens: number }> {
  const response = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model,
      prompt: PROMPT,
      max_tokens: TOKENS,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  const raw = await response.text();
  let text = "";
  let tokens = 0;
  for (const block of raw.split("\n\n")) {
    const data = block.startsWith("data: ") ? block.slice(6) : "";
    if (!data || data === "[DONE]") continue;
    const chunk = JSON.parse(data) as { choices: { text: string }[]; usage?: { completion_tokens: number } };
    for (const choice of chunk.choices) text += choice.text;
    if (chunk.usage) tokens = chunk.usage.completion_tokens;
  }
  return { text, tokens };
}

// --- 1. Continuous batching on the compute-bound twin --------------------------------------------
{
  const heavy = await loadModel(heavyPath, { gpu: false, threads: THREADS, sequences: 8, progress: false });
  const server = await serveModel(heavy);
  await stream(server.url, "stories-heavy"); // warm-up
  // Rounds alternate 1 stream and 8 streams, and the medians are compared, so a change in the
  // machine's load during the run affects both sides alike.
  const singleRates: number[] = [];
  const eightRates: number[] = [];
  let identical = true;
  let full = true;
  for (let round = 0; round < ROUNDS; round++) {
    await heavy.clearCache();
    let start = performance.now();
    const single = await stream(server.url, "stories-heavy");
    singleRates.push(single.tokens / ((performance.now() - start) / 1000));
    await heavy.clearCache();
    start = performance.now();
    const eight = await Promise.all(Array.from({ length: 8 }, () => stream(server.url, "stories-heavy")));
    eightRates.push(eight.reduce((sum, s) => sum + s.tokens, 0) / ((performance.now() - start) / 1000));
    identical &&= eight.every((s) => s.text === single.text);
    full &&= [single, ...eight].every((s) => s.tokens === TOKENS);
  }
  const singleRate = median(singleRates);
  const eightRate = median(eightRates);
  report(`heavy: 1 stream, generated tokens/s (median of ${ROUNDS})`, singleRate.toFixed(1));
  report(`heavy: 8 concurrent streams, aggregate tokens/s (median of ${ROUNDS})`, eightRate.toFixed(1));
  report(
    "heavy: 8 streams vs 1 (aggregate)",
    `${(eightRate / singleRate).toFixed(2)}×`,
    "≥ 3×",
    eightRate / singleRate >= 3,
  );
  report("heavy: the 8 texts equal the single stream's (every round)", String(identical), "true", identical);
  report(`heavy: every stream generated ${TOKENS} tokens`, String(full), "true", full);
  const { steps, steppedItems } = server.context.scheduler.stats;
  report("heavy: mean prefixes per batched step", (steppedItems / Math.max(1, steps)).toFixed(2));
  await server.close();
  await heavy.dispose();
}

// --- 2 and 3. Overhead and latency on the stories model -------------------------------------------
const small = await loadModel(smallPath, { gpu: false, threads: THREADS, sequences: 16, progress: false });
const server: RunningServer = await serveModel(small);
{
  const body = { model: "stories260K", prompt: PROMPT, max_tokens: TOKENS, temperature: 0 };
  for (let i = 0; i < 5; i++) {
    await complete(server.url, body);
    await generate(small, { prompt: PROMPT, maxTokens: TOKENS });
  }
  const http: number[] = [];
  const library: number[] = [];
  let same = true;
  for (let i = 0; i < 40; i++) {
    let start = performance.now();
    const reply = await complete(server.url, body);
    http.push(performance.now() - start);
    start = performance.now();
    const direct = await generate(small, { prompt: PROMPT, maxTokens: TOKENS });
    library.push(performance.now() - start);
    same &&= reply.body.choices[0].text === direct.text && direct.tokens.length === TOKENS;
  }
  const overhead = median(http) / median(library) - 1;
  report("stories: library generate, 64 tokens (median ms)", median(library).toFixed(2));
  report("stories: HTTP request, 64 tokens (median ms)", median(http).toFixed(2));
  report(
    "stories: server overhead vs library",
    `${(overhead * 100).toFixed(1)} %`,
    "≤ 10 %",
    overhead <= 0.1,
  );
  report("stories: server text = library text (64 tokens)", String(same), "true", same);
}
for (const clients of [1, 4, 16]) {
  const latencies: number[] = [];
  const perClient = clients === 16 ? 4 : 8;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let i = 0; i < perClient; i++) {
        const start = performance.now();
        await complete(server.url, {
          model: "stories260K",
          prompt: PROMPT,
          max_tokens: TOKENS,
          temperature: 0,
        });
        latencies.push(performance.now() - start);
      }
    }),
  );
  report(
    `stories: latency at ${clients} concurrent client(s), p50 / p99 ms`,
    `${percentile(latencies, 50).toFixed(1)} / ${percentile(latencies, 99).toFixed(1)}`,
  );
}
await server.close();
await small.dispose();

// --- 4. Overload: a separate server process under 4 × (max-concurrent + max-queue) clients -------
{
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      resolve(root, "src/cli/main.ts"),
      "serve",
      "--model",
      smallPath,
      "--no-gpu",
      "--threads",
      String(THREADS),
      "--port",
      "0",
      "--max-concurrent",
      "4",
      "--max-queue",
      "4",
      "--log-level",
      "silent",
    ],
    { cwd: root, stdio: ["ignore", "ignore", "pipe"] },
  );
  const url = await serverUrl(child);
  const statuses = new Map<number | string, number>();
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      for (let i = 0; i < 4; i++) {
        const status = await fetch(`${url}/v1/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: "stories260K", prompt: PROMPT, max_tokens: TOKENS, temperature: 0 }),
        }).then(
          async (r) => {
            await r.arrayBuffer();
            return r.status;
          },
          () => "connection error",
        );
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      }
    }),
  );
  const alive =
    (await fetch(`${url}/health`).then(
      (r) => r.status,
      () => 0,
    )) === 200 && child.exitCode === null;
  const peakKb = Number(
    /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1] ?? Number.NaN,
  );
  child.kill("SIGTERM");
  const exit = await new Promise<number | null>((done) => child.on("close", done));
  const only200or429 = [...statuses.keys()].every((s) => s === 200 || s === 429);
  report(
    "overload: 32 clients × 4 requests, statuses",
    [...statuses].map(([s, n]) => `${s}: ${n}`).join(", "),
  );
  report("overload: every response 200 or 429", String(only200or429), "true", only200or429);
  report(
    "overload: crashes (server alive after, exit 0 on SIGTERM)",
    alive && exit === 0 ? "0" : "1",
    "0",
    alive && exit === 0,
  );
  report("overload: server peak RSS (VmHWM)", `${(peakKb / 1024).toFixed(0)} MiB`);
}

function serverUrl(child: ChildProcess): Promise<string> {
  return new Promise((resolveUrl, reject) => {
    let stderr = "";
    child.stderr?.on("data", (chunk) => {
      stderr += chunk;
      const match = /serving .* on (http:\/\/[^\s]+)\/v1/.exec(stderr);
      if (match) resolveUrl(match[1]);
    });
    child.on("close", (code) => reject(new Error(`tiller serve exited with ${code}: ${stderr}`)));
  });
}

// --- Report --------------------------------------------------------------------------------------
console.log(`bench:server — threads ${THREADS}, max_tokens ${TOKENS}, greedy\n`);
const width = Math.max(...results.map((r) => r.check.length));
for (const r of results)
  console.log(
    `${r.check.padEnd(width)}  ${r.value.padStart(22)}${r.target ? `  target ${r.target.padEnd(7)} ${r.pass ? "PASS" : "FAIL"}` : ""}`,
  );
process.exit(results.some((r) => r.pass === false) ? 1 : 0);
