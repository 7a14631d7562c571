import { type Command, Option } from "commander";
import type { StrategySpec } from "../../decoding/registry.js";
import { generate } from "../../generate.js";
import { abortError } from "../../util/cooperative.js";
import { checkSearchWidth, confirmCost, strategyTokens, tokenCost } from "../limits.js";
import {
  action,
  addAlias,
  addChatOptions,
  addModelOptions,
  anyInt,
  type ChatCliOptions,
  finiteNumber,
  isAbortError,
  loadModelFromOptions,
  type ModelCliOptions,
  nonNegativeInt,
  positiveInt,
} from "../shared.js";
import { commandSignal, markFinished } from "../signals.js";
import { checkPrompt } from "../specFlags.js";

interface GenerateCliOptions extends ModelCliOptions, ChatCliOptions {
  prompt: string;
  maxTokens: number;
  strategy: "greedy" | "sample" | "beam";
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  beams: number;
  stop?: string[];
  json?: boolean;
  yes?: boolean;
}

export function registerGenerate(program: Command): void {
  const command = program
    .command("generate")
    .description("continue a prompt with greedy decoding, sampling or beam search");
  addChatOptions(addModelOptions(command))
    .requiredOption("-p, --prompt <text>", "the prompt to continue")
    .option("-n, --max-tokens <n>", "most tokens to generate", positiveInt, 128)
    .addOption(
      new Option("-s, --strategy <name>", "decoding strategy")
        .choices(["greedy", "sample", "beam"])
        .default("greedy"),
    )
    .option("-t, --temperature <T>", "sampling temperature (sample strategy; default 1)", finiteNumber)
    .option("--top-k <k>", "sample only among the k most likely tokens", nonNegativeInt)
    .option("--top-p <p>", "nucleus sampling mass (0 < p ≤ 1)", finiteNumber)
    .option("--seed <s>", "sampler seed (same seed, same output)", anyInt)
    .option("-b, --beams <b>", "beams kept by beam search", positiveInt, 4)
    .option("--stop <text...>", "stop when the output contains this text")
    .option("--json", "print one JSON object instead of streaming text")
    .option("--yes", "run even when the run is estimated to take more than 30 minutes")
    .action(
      action(async (options: GenerateCliOptions) => {
        checkPrompt(options.prompt);
        const signal = commandSignal();
        const model = await loadModelFromOptions(options, { signal });
        try {
          const search: StrategySpec = {
            name: options.strategy,
            params: options.strategy === "beam" ? { width: options.beams } : {},
            label: options.strategy,
          };
          checkSearchWidth(search, model);
          confirmCost(
            {
              what: `${options.strategy === "beam" ? `beam width ${options.beams}` : options.strategy} with --max-tokens ${options.maxTokens}`,
              seconds: tokenCost(model, strategyTokens(search, options.maxTokens)),
              lower: "--beams or --max-tokens",
            },
            options.yes,
          );
          const streaming = !options.json;
          // An abort rejects after the partial text was streamed: end its line before reporting.
          const endLine = (error: unknown) => {
            if (!options.json && isAbortError(error)) process.stdout.write("\n");
            throw error;
          };
          const result = await generate(model, {
            prompt: options.prompt,
            system: options.system,
            chat: options.chat,
            maxTokens: options.maxTokens,
            strategy: options.strategy,
            temperature: options.temperature,
            topK: options.topK,
            topP: options.topP,
            seed: options.seed,
            beamWidth: options.beams,
            stopStrings: options.stop,
            signal,
            onEvent:
              streaming && options.strategy !== "beam"
                ? (event) => {
                    if (event.type === "text") process.stdout.write(event.text);
                  }
                : undefined,
          }).catch(endLine);
          if (result.stopReason === "aborted" || signal.aborted) {
            if (!options.json) process.stdout.write("\n");
            throw abortError(signal);
          }
          markFinished();
          if (options.json) {
            const { text, tokens, logprob, stopReason, stats } = result;
            const { usage: _usage, ...publicStats } = stats;
            process.stdout.write(
              `${JSON.stringify({ text, tokens, logprob, stopReason, stats: publicStats })}\n`,
            );
          } else {
            // Beam search only knows its answer at the end; the others have streamed it already.
            if (options.strategy === "beam") process.stdout.write(result.text);
            process.stdout.write("\n");
          }
        } finally {
          await model.dispose();
        }
      }),
    );
  // The earlier name; `--beams` is the name align uses too.
  addAlias(command, "--beam-width", "--beams");
}
