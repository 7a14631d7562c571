import { mkdirSync, readFileSync, statSync } from "node:fs";
import { availableParallelism } from "node:os";
import { basename, join } from "node:path";
import {
  getLlama,
  type Llama,
  type LlamaContext,
  LlamaLogLevel,
  type LlamaModel,
  readGgufFileInfo,
} from "node-llama-cpp";
import { z } from "zod";
import { checkThreads } from "../decoding/limits.js";
import { TillerError } from "../errors.js";
import { writeFileAtomic } from "../util/atomicWrite.js";
import { fields, parseOptions } from "../util/options.js";
import { interleavedSequences, LlamaCppModel } from "./llama/LlamaCppModel.js";
import { cacheDir, resolveModelPath } from "./resolve.js";

export interface LoadModelOptions {
  /** `true` requires a GPU, `false` forbids one, `"auto"` (default) uses one when present. */
  gpu?: boolean | "auto";
  /** CPU threads; `"auto"` (default) measures which count runs this model fastest here. */
  threads?: number | "auto";
  /** Tokens per sequence (prompt + generation). Default: min(model's training context, 4096). */
  contextSize?: number;
  /** Sequences in the pool; a batched call evaluates up to this many prefixes at once. Default 16. */
  sequences?: number;
  /**
   * llama.cpp contexts the pool's sequences are spread over (in turn). Each decodes its share of a
   * batch on its own worker thread, in parallel with the others: llama.cpp decodes a context's
   * sequences one micro-batch after another, so with one thread per context a second core
   * otherwise idles (AMBEDKAR's stated steps, a real and a counterfactual context a call: 5.96 →
   * 5.44 ms on stories260K, 2 cores). Defaults to 2 on the CPU when each context runs one thread,
   * waves are not contiguous (`contiguousWaves` batches a wave within one context instead) and
   * there are at least 2 cores, else 1.
   */
  contexts?: number;
  /**
   * Copy a cached prefix from one sequence into another (through a RAM-backed state file, 0.3–1.6 ms)
   * instead of evaluating it again: a search's candidates then evaluate a freshly committed prefix
   * once, not once each. The copy is bit for bit, but a prefix evaluated in a different batch can
   * differ in float rounding, so a near-tie may resolve the other way. Defaults to true when the
   * model runs on the CPU, false when layers are offloaded to a GPU (evaluation is cheap there).
   */
  copySequences?: boolean;
  /**
   * Never evaluate a lone token for a scored or next-token distribution: the cached token before it
   * is evaluated again with it, so the distribution after a prefix no longer depends on which
   * sequence and history compute it (llama.cpp's one-token path rounds the KV cache differently:
   * 3.4e-3 nats apart; paired, ~6e-6, the output layer's rounding). A search that reads one
   * distribution where it asked another before (AMBEDKAR's memo) then decides as if it had asked
   * again. Costs one more token per such evaluation. Defaults to false.
   */
  pairLoneTokens?: boolean;
  /**
   * Evaluate a batch's prefixes on consecutive sequences in order, copying caches in (needs
   * `copySequences`): llama.cpp then decodes the batch in one pass over the weights instead of one
   * per sequence (3 one-token sequences: 15 ms instead of 40 ms on stories-heavy-n25). Pays where a
   * pass over the weights costs more than a copy. Defaults to true when copying and the model file
   * is over 16 MB, else false.
   */
  contiguousWaves?: boolean;
  /** Show a progress bar when downloading (default true). */
  progress?: boolean;
  signal?: AbortSignal;
}

/**
 * What loadModel() accepts (contextSize and threads get their own, more specific messages below).
 * Not strict: openModel passes its remote-server options through.
 */
export const loadModelOptionsSchema = z.object({
  gpu: z.union([z.boolean(), z.literal("auto")]).optional(),
  threads: z.union([z.number(), z.literal("auto")]).optional(),
  contextSize: z.number().optional(),
  sequences: z.number().int().min(1).max(256).optional(),
  contexts: z.number().int().min(1).max(8).optional(),
  copySequences: z.boolean().optional(),
  pairLoneTokens: z.boolean().optional(),
  contiguousWaves: z.boolean().optional(),
  progress: z.boolean().optional(),
  signal: fields.signal.optional(),
});

const llamas = new Map<string, Promise<Llama>>();

function llamaFor(gpu: boolean | "auto"): Promise<Llama> {
  const key = String(gpu);
  let llama = llamas.get(key);
  if (!llama) {
    const starting = getLlama({
      gpu: gpu === false ? false : "auto",
      // Never compile llama.cpp at run time: use the prebuilt binaries shipped on npm.
      build: "never",
      logLevel: LlamaLogLevel.error,
      progressLogs: false,
    });
    llama = starting;
    llamas.set(key, starting);
    // A failed start is not cached: the next load tries again.
    starting.catch(() => {
      if (llamas.get(key) === starting) llamas.delete(key);
    });
  }
  return llama;
}

/**
 * Loads a model for tiller: a local path, an `hf:` URI (downloaded into the cache), $TILLER_MODEL,
 * or the default model. Every failure the user can fix is a one-line TillerError.
 */
export async function loadModel(spec?: string, options: LoadModelOptions = {}): Promise<LlamaCppModel> {
  if (spec !== undefined && (typeof spec !== "string" || spec === ""))
    throw new TillerError(
      `loadModel: the model must be a path or an hf: URI (a non-empty string), got ${typeof spec === "string" ? '""' : typeof spec}`,
      "bad-options",
    );
  parseOptions("loadModel", loadModelOptionsSchema, options);
  if (
    options.contextSize !== undefined &&
    !(Number.isInteger(options.contextSize) && options.contextSize >= 16)
  )
    throw new TillerError(
      `--context-size must be ≥ 16 (an integer), got ${options.contextSize}`,
      "bad-context-size",
    );
  if (typeof options.threads === "number") checkThreads(options.threads);
  const path = await resolveModelPath(spec, { progress: options.progress, signal: options.signal });
  const gpu = options.gpu ?? "auto";
  let llama: Llama;
  try {
    llama = await llamaFor(gpu);
  } catch (error) {
    throw new TillerError(`cannot start llama.cpp: ${firstLine(error)}`, "llama-unavailable");
  }
  if (gpu === true && llama.gpu === false)
    throw new TillerError(
      "--gpu was given but no GPU backend (CUDA, Vulkan, Metal) is usable here",
      "no-gpu",
    );

  let model: LlamaModel;
  try {
    model = await llama.loadModel({ modelPath: path, gpuLayers: llama.gpu === false ? 0 : "auto" });
  } catch (error) {
    let reason = firstLine(error);
    try {
      // A truncated header parses without its metadata, and node-llama-cpp then fails with a
      // TypeError ("reading 'architecture'"); say what is actually wrong with the file.
      const architecture = (await readGgufFileInfo(path)).metadata?.general?.architecture;
      reason = architecture
        ? `architecture "${architecture}": ${reason}`
        : "its GGUF header is truncated or corrupt (no model architecture in it)";
    } catch (headerError) {
      reason = `its GGUF header cannot be read: ${firstLine(headerError)}`;
    }
    throw new TillerError(`cannot load model ${path}: ${reason}`, "model-load-failed");
  }

  const trained = model.trainContextSize || 4096;
  const contextSize = Math.max(16, Math.min(options.contextSize ?? Math.min(trained, 4096), trained));
  const sequences = Math.max(1, options.sequences ?? 16);
  try {
    const threads =
      options.threads === undefined || options.threads === "auto"
        ? llama.gpu === false
          ? await measureThreads(model, path)
          : Math.min(4, availableParallelism())
        : options.threads;
    const copySequences = options.copySequences ?? model.gpuLayers === 0;
    const contiguousWaves =
      options.contiguousWaves ?? (copySequences && statSync(path).size > CONTIGUOUS_MIN_BYTES);
    // Contiguous waves batch a wave's sequences within one context; parallel contexts split it.
    const parallel =
      model.gpuLayers === 0 && threads === 1 && !contiguousWaves && availableParallelism() >= 2;
    const contextCount = Math.min(sequences, options.contexts ?? (parallel ? 2 : 1));
    const perContext = Math.ceil(sequences / contextCount);
    const createContext = () =>
      model.createContext({ contextSize, sequences: perContext, threads, ignoreMemorySafetyChecks: false });
    const contexts: LlamaContext[] = [];
    try {
      for (let i = 0; i < contextCount; i++) contexts.push(await createContext());
    } catch (error) {
      await Promise.all(contexts.map((each) => each.dispose()));
      throw error;
    }
    const pool = interleavedSequences(contexts, sequences);
    return new LlamaCppModel(
      basename(path),
      path,
      model,
      contexts,
      pool,
      threads,
      contextSize,
      createContext,
      {
        copySequences,
        pairLoneTokens: options.pairLoneTokens,
        contiguousWaves,
      },
    );
  } catch (error) {
    await model.dispose();
    throw new TillerError(`cannot create a context for ${path}: ${firstLine(error)}`, "context-failed");
  }
}

/**
 * Model files above this size get `contiguousWaves` by default: a pass over their weights (~12 ms
 * for stories-heavy's 100 MB, 1 thread) outweighs the copies that placing a wave in order needs
 * (0.3–1.6 ms each); stories260K (1.2 MB) evaluates a token in less than a copy takes.
 */
const CONTIGUOUS_MIN_BYTES = 16 * 1024 * 1024;

/**
 * Picks the thread count that evaluates this model fastest on this machine. Small models are
 * dominated by thread synchronisation (2 threads ran the 260K test model ~25× slower than 1),
 * so the answer is measured, not taken from the core count. Cached per model file and machine.
 */
async function measureThreads(model: LlamaModel, path: string): Promise<number> {
  const cores = availableParallelism();
  const stat = statSync(path);
  const key = `${path}:${stat.size}:${stat.mtimeMs}:${cores}`;
  const cached = readThreadsCache()[key];
  if (typeof cached === "number") return cached;
  const candidates = [...new Set([1, 2, 4, 8, cores].filter((n) => n <= cores))].sort((a, b) => a - b);
  let best = { threads: 1, ms: Number.POSITIVE_INFINITY };
  for (const threads of candidates) {
    const ms = await timeEvaluation(model, threads);
    if (ms < best.ms) best = { threads, ms };
    else break; // slower than fewer threads: more will not help
  }
  rememberThreads(key, best.threads);
  return best.threads;
}

const threadsCacheFile = () => join(cacheDir(), "threads.json");

function readThreadsCache(): Record<string, number> {
  try {
    const cache = JSON.parse(readFileSync(threadsCacheFile(), "utf8"));
    return typeof cache === "object" && cache !== null ? cache : {};
  } catch {
    return {};
  }
}

/**
 * Adds a measured thread count to the cache (threads.json), written atomically: two loads
 * measuring at once, or a crash mid-write, never leave a torn file.
 */
export function rememberThreads(key: string, threads: number): void {
  try {
    mkdirSync(cacheDir(), { recursive: true });
    writeFileAtomic(threadsCacheFile(), JSON.stringify({ ...readThreadsCache(), [key]: threads }, null, 2));
  } catch {
    // A read-only cache only costs a re-measurement next time.
  }
}

async function timeEvaluation(model: LlamaModel, threads: number): Promise<number> {
  const context = await model.createContext({ contextSize: 256, sequences: 1, threads });
  try {
    const sequence = context.getSequence();
    const prompt = model.tokenize("Once upon a time there was a small model that ran on a small machine.");
    const start = performance.now();
    let count = 0;
    for await (const _token of sequence.evaluate(prompt, { temperature: 0 })) if (++count >= 24) break;
    return performance.now() - start;
  } finally {
    await context.dispose();
  }
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0];
}
