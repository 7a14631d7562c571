import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { Presets, SingleBar } from "cli-progress";
import { resolveModelFile } from "node-llama-cpp";
import { TillerError } from "../errors.js";

/**
 * The model tiller uses when none is given: Qwen2.5-0.5B-Instruct (Apache-2.0), the smallest
 * widely used instruct GGUF from its publisher, Q4_K_M (~400 MB).
 */
export const DEFAULT_MODEL_URI = "hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf";

/** Where downloaded models live: $TILLER_CACHE_DIR, else $XDG_CACHE_HOME/tiller, else ~/.cache/tiller. */
export function cacheDir(): string {
  if (process.env.TILLER_CACHE_DIR) return resolve(process.env.TILLER_CACHE_DIR);
  const base = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(base, "tiller");
}

export function isHubUri(spec: string): boolean {
  return spec.startsWith("hf:") || spec.startsWith("huggingface:") || /^https?:\/\//.test(spec);
}

export interface ResolveOptions {
  /** Show a download progress bar on stderr (default true). */
  progress?: boolean;
  signal?: AbortSignal;
}

/**
 * Turns a model spec into a local GGUF path: an explicit spec (path or `hf:` URI), else
 * $TILLER_MODEL, else the default model. Hub URIs are downloaded into the cache once.
 */
export async function resolveModelPath(
  spec: string | undefined,
  options: ResolveOptions = {},
): Promise<string> {
  const chosen = spec?.trim() || process.env.TILLER_MODEL?.trim() || DEFAULT_MODEL_URI;
  const path = isHubUri(chosen)
    ? await download(chosen, chosen === DEFAULT_MODEL_URI && !spec, options)
    : resolve(chosen);
  checkGguf(path);
  return path;
}

async function download(uri: string, isDefault: boolean, options: ResolveOptions): Promise<string> {
  const directory = join(cacheDir(), "models");
  // Until the first byte arrives, give up quickly: on a machine without access to the hub the
  // metadata request can hang for minutes. Once downloading, only the caller's signal applies.
  const connect = new AbortController();
  const timer = setTimeout(
    () => connect.abort(new Error(`no answer from the hub within ${connectTimeoutMs()} ms`)),
    connectTimeoutMs(),
  );
  const signal = options.signal ? AbortSignal.any([options.signal, connect.signal]) : connect.signal;
  let bar: SingleBar | undefined;
  let barStarted = false;
  // node-llama-cpp does not always honour the signal while it gathers file metadata, so the
  // deadline also races the call.
  const deadline = new Promise<never>((_, reject) =>
    connect.signal.addEventListener("abort", () => reject(connect.signal.reason), { once: true }),
  );
  try {
    return await Promise.race([
      resolveModelFile(uri, {
        directory,
        // Our own bar: node-llama-cpp's spinner swallows what is written to stderr after it.
        cli: false,
        signal,
        onProgress: ({ totalSize, downloadedSize }) => {
          clearTimeout(timer);
          if (options.progress === false) return;
          bar ??= new SingleBar(
            { format: `downloading ${uri} [{bar}] {percentage}% {value}/{total} MB`, stream: process.stderr },
            Presets.shades_classic,
          );
          if (!barStarted) {
            bar.start(Math.max(1, Math.round(totalSize / 1e6)), 0);
            barStarted = true;
          }
          bar.update(Math.round(downloadedSize / 1e6));
        },
      }),
      deadline,
    ]);
  } catch (error) {
    const reason = connect.signal.aborted
      ? String((connect.signal.reason as Error)?.message ?? "timed out")
      : error instanceof Error
        ? error.message.split("\n")[0]
        : String(error);
    const hint = isDefault
      ? "no --model was given, so tiller tried its default model; pass --model <path.gguf|hf:owner/repo/file.gguf> or set TILLER_MODEL"
      : "check the URI and your network, or pass a local file with --model";
    throw new TillerError(`cannot download model ${uri}: ${reason} (${hint})`, "model-download-failed");
  } finally {
    clearTimeout(timer);
    bar?.stop();
  }
}

/** $TILLER_CONNECT_TIMEOUT_MS, default 15 s. */
function connectTimeoutMs(): number {
  const value = Number(process.env.TILLER_CONNECT_TIMEOUT_MS);
  return Number.isFinite(value) && value > 0 ? value : 15_000;
}

/** Fails with a one-line error unless `path` is a readable GGUF file. */
export function checkGguf(path: string): void {
  if (!existsSync(path)) throw new TillerError(`model file not found: ${path}`, "model-not-found");
  if (!statSync(path).isFile())
    throw new TillerError(`model path is not a file: ${path}`, "model-not-a-file");
  const magic = Buffer.alloc(4);
  const fd = openSync(path, "r");
  try {
    readSync(fd, magic, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  if (magic.toString("latin1") !== "GGUF")
    throw new TillerError(`not a GGUF model file (bad magic bytes): ${path}`, "model-not-gguf");
}
