import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { loadModel } from "../src/lm/load.js";

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
  options: { sequences?: number; contextSize?: number } = {},
): Promise<LlamaCppModel> {
  return loadModel(testModelPath(), { gpu: false, threads: 1, ...options });
}

/** Path of the built CLI (tests that spawn it need `npm run build` first; `npm test` does that). */
export const cliPath = resolve(repoRoot, "dist/cli/main.js");

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the built CLI and waits for it. NO_COLOR keeps output plain: picocolors colours it
 * whenever CI is set, which would split the text tests match.
 */
export function runCli(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): CliRun {
  const r = spawnSync(process.execPath, [cliPath, ...args], {
    encoding: "utf8",
    input: options.input,
    timeout: options.timeoutMs ?? 120_000,
    env: { ...(options.env ?? process.env), NO_COLOR: "1" },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
