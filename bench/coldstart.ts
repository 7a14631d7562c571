/**
 * bench:coldstart — how long `tiller generate` takes from a cold process, against the least any
 * llama.cpp program must spend: importing node-llama-cpp, `getLlama` and `loadModel`.
 *
 *   npm run build && npm run bench:coldstart     (TILLER_TEST_MODEL overrides the stories model)
 *
 * Both run as fresh `node` processes, timed from spawn to exit, alternating (bare, CLI, bare, …)
 * so a busy machine slows both alike. The CLI runs with default options (no --threads: it picks
 * its thread count itself) and a private cache folder: the warm-up run measures the thread count
 * and caches it, the timed runs read the cache, as a user's second run does. Target: the CLI's
 * median ≤ 1.2× the bare median.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const RUNS = 5;
const TARGET_RATIO = 1.2;

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const modelPath = resolve(root, process.env.TILLER_TEST_MODEL ?? "../shared/models/stories260K.gguf");
const cliPath = join(root, "dist/cli/main.js");
for (const [what, path] of [
  ["model", modelPath],
  ["built CLI (run `npm run build`)", cliPath],
])
  if (!existsSync(path)) {
    console.error(`bench:coldstart: ${what} not found at ${path}`);
    process.exit(1);
  }

const work = mkdtempSync(join(tmpdir(), "tiller-coldstart-"));
// The bare program: what tiller's own load does at the least (same getLlama options as src/lm/load.ts).
const barePath = join(work, "bare.mjs");
writeFileSync(
  barePath,
  `const { getLlama, LlamaLogLevel } = await import(${JSON.stringify(import.meta.resolve("node-llama-cpp"))});
const llama = await getLlama({ gpu: "auto", build: "never", logLevel: LlamaLogLevel.error, progressLogs: false });
await llama.loadModel({ modelPath: ${JSON.stringify(modelPath)}, gpuLayers: llama.gpu === false ? 0 : "auto" });
`,
);
const cliArgs = [
  cliPath,
  "generate",
  "--model",
  modelPath,
  "--prompt",
  "Once upon a time",
  "--max-tokens",
  "4",
];
const env = { ...process.env, TILLER_CACHE_DIR: join(work, "cache"), NO_COLOR: "1" };

/** Wall milliseconds of one `node …args` from spawn to exit; fails on a non-zero exit. */
function timeNode(args: string[]): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, args, { env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => {
      const ms = performance.now() - started;
      if (code === 0) resolvePromise(ms);
      else reject(new Error(`node ${args.join(" ")} exited ${code}: ${stderr.trim()}`));
    });
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

try {
  const warmBare = await timeNode([barePath]);
  const warmCli = await timeNode(cliArgs); // measures the thread count and caches it
  const bare: number[] = [];
  const cli: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    bare.push(await timeNode([barePath]));
    cli.push(await timeNode(cliArgs));
  }
  const ms = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(", ");
  const ratio = median(cli) / median(bare);
  console.log(`bench:coldstart — ${modelPath}, median of ${RUNS} after one warm-up each`);
  console.log(
    `  warm-up: bare ${warmBare.toFixed(0)} ms, tiller ${warmCli.toFixed(0)} ms (thread measurement)`,
  );
  console.log(
    `  bare load (import + getLlama + loadModel)  median ${median(bare).toFixed(0)} ms  [${ms(bare)}]`,
  );
  console.log(
    `  tiller generate --max-tokens 4            median ${median(cli).toFixed(0)} ms  [${ms(cli)}]`,
  );
  console.log(
    `  ratio ${ratio.toFixed(2)}× (target ≤ ${TARGET_RATIO}×): ${ratio <= TARGET_RATIO ? "ok" : "OVER"}`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
