import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { type LoadModelOptions, loadModel } from "../src/lm/load.js";
import { testModelsPath } from "./models.js";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** The test model: $TILLER_TEST_MODEL, else ../shared/models/stories260K.gguf. Fails loudly if absent. */
export function testModelPath(): string {
  const path = resolve(repoRoot, process.env.TILLER_TEST_MODEL ?? "../shared/models/stories260K.gguf");
  if (!existsSync(path))
    throw new Error(
      `test model not found at ${path}; set TILLER_TEST_MODEL to a GGUF file (the stories260K model)`,
    );
  return path;
}

/** A shared-corpus path (../shared/...), failing with a clear message when it is missing. */
export function sharedPath(relative: string): string {
  const path = resolve(repoRoot, "../shared", relative);
  if (!existsSync(path))
    throw new Error(`shared file not found: ${path} (tests expect ../shared beside the checkout)`);
  return path;
}

/** Loads the real test model on the CPU, one thread (fastest for this tiny model). */
export function loadTestModel(
  options: Pick<
    LoadModelOptions,
    "sequences" | "contexts" | "contextSize" | "copySequences" | "pairLoneTokens" | "contiguousWaves"
  > = {},
): Promise<LlamaCppModel> {
  return loadModel(testModelPath(), { gpu: false, threads: 1, ...options });
}

/**
 * stories260K's weights in a second file (stories260K-chat.gguf), loaded as a draft model: it
 * drafts what the target would write, so drafting is accepted and its bookkeeping is exercised.
 */
export function loadDraftTwin(): Promise<LlamaCppModel> {
  return loadModel(testModelsPath("stories260K-chat.gguf"), { gpu: false, threads: 1, sequences: 8 });
}

/** Path of the built CLI (tests that spawn it need `npm run build` first; `npm test` does that). */
export const cliPath = resolve(repoRoot, "dist/cli/main.js");

export interface CliRun {
  /** Exit code; null when a signal ended the process (then `signal` names it). */
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** The child's environment (default: this process's); NO_COLOR is always set. */
  env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, which is then closed (default: nothing, stdin closed at once). */
  input?: string;
  /** Kills the child (SIGTERM) after this long (default 120 000 ms). */
  timeoutMs?: number;
}

/**
 * Runs the built CLI without blocking the event loop (vitest's worker must keep answering its
 * RPC while a child runs). Resolves with how it ended, a non-zero exit included; rejects only
 * when the process cannot be started. NO_COLOR keeps output plain: picocolors colours it
 * whenever CI is set, which would split the text tests match.
 */
export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliRun> {
  return runNode([cliPath, ...args], options);
}

/** Runs `node …args` like {@link runCli} (for scripts that import the built modules). */
export function runNode(args: readonly string[], options: CliOptions = {}): Promise<CliRun> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile(
      process.execPath,
      args,
      {
        encoding: "utf8",
        timeout: options.timeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024,
        env: { ...(options.env ?? process.env), NO_COLOR: "1" },
      },
      (error, stdout, stderr) => {
        // execFile reports a non-zero exit as an error with `code`; only a failed start has no exit.
        const failure = error as (NodeJS.ErrnoException & { signal?: NodeJS.Signals | null }) | null;
        if (failure && typeof failure.code === "string" && child.exitCode === null && !child.signalCode)
          return reject(failure);
        resolvePromise({ status: child.exitCode, signal: child.signalCode, stdout, stderr });
      },
    );
    child.stdin?.end(options.input ?? "");
  });
}
