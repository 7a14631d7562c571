import * as fs from "node:fs";
import type { Command } from "commander";
import { z } from "zod";
import { TillerError } from "../../errors.js";
import { preferencePairs } from "../../provenance/pairs.js";
import { SHIELD_DEFAULTS } from "../../provenance/shield.js";
import { writeFileAtomic } from "../../util/atomicWrite.js";
import { readInputText } from "../../util/inputFiles.js";
import { confirmCost, tokenCost } from "../limits.js";
import { checkOutputFile } from "../outputFile.js";
import {
  action,
  addModelOptions,
  anyInt,
  finiteNumber,
  loadModelFromOptions,
  type ModelCliOptions,
  positiveInt,
  positiveNumber,
} from "../shared.js";
import { commandSignal, markFinished } from "../signals.js";
import { openIndex } from "./index-cmd.js";

interface PairsCliOptions extends ModelCliOptions {
  index: string;
  tasks: string;
  n: number;
  out: string;
  tau: number;
  maxTokens: number;
  temperature: number;
  seed: number;
  force?: boolean;
  yes?: boolean;
}

/** A line of the prompts file: any JSON object with a non-empty `prompt` (eval task files qualify). */
const promptLine = z.looseObject({ prompt: z.string().min(1) });

export function registerPairs(program: Command): void {
  const command = program
    .command("pairs")
    .description(
      "TraceAlign preference pairs for DPO: per prompt, sample N completions, label them by max span BCI against --index, write {prompt, chosen, rejected, chosen_bci, rejected_bci} lines (chosen ≤ τ < rejected)",
    );
  addModelOptions(command)
    .requiredOption("-i, --index <dir>", "corpus index (tiller index build)")
    .requiredOption(
      "--tasks <file>",
      'JSON Lines with a prompt per line ({"prompt": …}; eval task files work)',
    )
    .requiredOption("-o, --out <file>", "where to write the pairs (JSON Lines, written atomically)")
    .option("--n <N>", "completions sampled per prompt (≥ 2)", positiveInt, 8)
    .option("--tau <τ>", "BCI threshold: chosen ≤ τ < rejected", finiteNumber, SHIELD_DEFAULTS.tau)
    .option("--max-tokens <n>", "most tokens per completion", positiveInt, 64)
    .option("-t, --temperature <T>", "sampling temperature", positiveNumber, 1)
    .option("--seed <s>", "base seed of the samples", anyInt, 0)
    .option("--force", "replace an existing --out file")
    .option("--yes", "run even when the run is estimated to take more than 30 minutes")
    .action(
      action(async (options: PairsCliOptions) => {
        const prompts = readPrompts(options.tasks);
        checkPairsOut(options.out, options.force);
        const index = openIndex(options.index);
        const signal = commandSignal();
        const model = await loadModelFromOptions(options, { signal });
        try {
          confirmCost(
            {
              what: `pairs (${prompts.length} prompt(s) × ${options.n} completions of ${options.maxTokens} tokens)`,
              seconds: tokenCost(model, prompts.length * options.n * options.maxTokens),
              lower: "--n, --max-tokens or the prompts",
            },
            options.yes,
          );
          const result = await preferencePairs(model, index, prompts, {
            signal,
            n: options.n,
            tau: options.tau,
            maxTokens: options.maxTokens,
            temperature: options.temperature,
            seed: options.seed,
            onPrompt: (done, total) => process.stderr.write(`\rtiller pairs: ${done}/${total} prompts`),
          });
          markFinished();
          process.stderr.write("\n");
          writeFileAtomic(options.out, result.pairs.map((pair) => `${JSON.stringify(pair)}\n`).join(""));
          process.stdout.write(
            `${result.pairs.length} pair(s) written to ${options.out}; ${result.skipped} prompt(s) had no pair (τ = ${options.tau})\n`,
          );
        } finally {
          await model.dispose();
        }
      }),
    );
}

function readPrompts(file: string): string[] {
  const text = readInputText(file, "prompts file", { notFoundCode: "tasks-not-found" });
  const prompts: string[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    if (raw.trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      throw new TillerError(`${file}:${i + 1}: not valid JSON`, "bad-task-file");
    }
    const parsed = promptLine.safeParse(value);
    if (!parsed.success)
      throw new TillerError(`${file}:${i + 1}: needs a non-empty string "prompt"`, "bad-task-file");
    prompts.push(parsed.data.prompt);
  }
  if (prompts.length === 0) throw new TillerError(`${file}: no prompts`, "bad-task-file");
  return prompts;
}

/** --out is checked before any work: writable, and not an earlier run's pairs unless --force. */
function checkPairsOut(out: string, force: boolean | undefined): void {
  checkOutputFile(out, "--out");
  let size = 0;
  try {
    size = fs.statSync(out).size;
  } catch {
    return; // a new file
  }
  if (size > 0 && !force)
    throw new TillerError(
      `--out ${out} already holds pairs; pass --force to replace it, or choose another file`,
      "out-not-empty",
    );
}
