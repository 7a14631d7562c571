import { writeFileSync } from "node:fs";
import { type Command, Option } from "commander";
import { align } from "../../align.js";
import { createStrategy, parseStrategySpec, strategyHelp } from "../../decoding/registry.js";
import type { CandidateVeto } from "../../decoding/veto.js";
import { TillerError } from "../../errors.js";
import { PROV_DECODE_RECOMMENDED, ProvDecodeVeto } from "../../provenance/prov-decode.js";
import { shielded } from "../../provenance/shield.js";
import { TraceIndex } from "../../provenance/trace-index.js";
import { parseRewardSpecs, REWARD_SPEC_FORMS, REWARD_SPEC_HELP } from "../../rewards/spec.js";
import {
  action,
  addChatOptions,
  addModelOptions,
  anyInt,
  type ChatCliOptions,
  finiteNumber,
  loadModelFromOptions,
  type ModelCliOptions,
  nonNegativeInt,
  positiveInt,
  positiveNumber,
} from "../shared.js";

interface AlignCliOptions extends ModelCliOptions, ChatCliOptions {
  prompt: string;
  reward: string[];
  weight?: string[];
  strategy: string;
  maxTokens: number;
  k?: number;
  lookahead?: number;
  lambda?: number;
  beams?: number;
  n?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  judgeModel?: string;
  provenance?: string;
  tau: number;
  veto: "hard" | "soft";
  gamma: number;
  window: number;
  minMatch: number;
  maxCount?: number;
  normalize: boolean;
  shield?: boolean;
  regenerate: number;
  refusal?: string;
  trace?: string;
  json?: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerAlign(program: Command): void {
  const command = program
    .command("align")
    .description(
      "decode toward weighted rewards (DeAL search, Best-of-N, or plain decoding scored by the rewards)",
    )
    .addHelpText("after", `\nReward specs:\n${REWARD_SPEC_HELP}\n\nStrategies: ${strategyHelp()}`);
  addChatOptions(addModelOptions(command))
    .requiredOption("-p, --prompt <text>", "the prompt to continue")
    .option("-r, --reward <spec>", "a reward to steer by (repeatable); see below", collect, [])
    .option("-w, --weight <w>", "weight of each --reward, in order (repeatable)", collect)
    .option(
      "-s, --strategy <spec>",
      "greedy | sample | beam | bon | won | deal, optionally with :key=value params",
      "deal",
    )
    .option("-n, --max-tokens <n>", "most tokens to generate", positiveInt, 128)
    .option("--k <k>", "deal: candidates expanded per beam", positiveInt)
    .option("--lookahead <l>", "deal: greedy lookahead tokens per candidate", nonNegativeInt)
    .option("--lambda <λ>", "deal: reward weight against log-probability", finiteNumber)
    .option("--beams <b>", "deal/beam: beams kept", positiveInt)
    .option("--n <N>", "bon/won: samples drawn", positiveInt)
    .option("-t, --temperature <T>", "sampling temperature (sample, bon, won)", finiteNumber)
    .option("--top-k <k>", "sampling: keep the k most likely tokens", nonNegativeInt)
    .option("--top-p <p>", "sampling: nucleus mass", finiteNumber)
    .option("--seed <s>", "sampler seed", anyInt)
    .option("--judge-model <path|hf:uri>", "model that answers judge:… rewards (default: the main model)")
    .option(
      "--provenance <dir>",
      "a corpus index: veto continuations that copy rare corpus spans (Prov-Decode)",
    )
    .option(
      "--tau <τ>",
      "Prov-Decode: veto when the matched span's BCI exceeds τ",
      finiteNumber,
      PROV_DECODE_RECOMMENDED.tau,
    )
    .addOption(
      new Option("--veto <mode>", "Prov-Decode: drop (hard) or demote (soft) vetoed tokens")
        .choices(["hard", "soft"])
        .default("hard"),
    )
    .option(
      "--gamma <γ>",
      "Prov-Decode soft veto penalty (> 0)",
      positiveNumber,
      PROV_DECODE_RECOMMENDED.gamma,
    )
    .option(
      "--window <n>",
      "Prov-Decode: context tokens looked up before each candidate",
      positiveInt,
      PROV_DECODE_RECOMMENDED.n,
    )
    .option(
      "--min-match <m>",
      "Prov-Decode: veto only when the candidate completes a corpus match of ≥ m tokens",
      positiveInt,
      PROV_DECODE_RECOMMENDED.minLength,
    )
    .option(
      "--max-count <c>",
      "Prov-Decode: veto only matches found at most c times in the corpus",
      positiveInt,
    )
    .option(
      "--no-normalize",
      "Prov-Decode: look raw model tokens up in the index (default: re-tokenize as the index was built, e.g. lowercased)",
    )
    .option(
      "--shield",
      "TraceShield over the --provenance index: refuse an output whose max span BCI exceeds --tau; regenerate with a hard Prov-Decode veto first (with --shield, --provenance does not veto the first attempt)",
    )
    .option("--regenerate <n>", "--shield: attempts after a refused one", nonNegativeInt, 1)
    .option("--refusal <text>", "--shield: text returned when every attempt is refused")
    .option("--trace <file>", "write the search trace (steps, candidates, rollouts, scores) as JSON")
    .option("--json", "print one JSON object")
    .action(
      action(async (options: AlignCliOptions) => {
        // Validate everything that needs no model first, so bad input fails fast.
        const spec = parseStrategySpec(options.strategy);
        const overrides: Record<string, number | undefined> = {
          k: options.k,
          l: options.lookahead,
          lambda: options.lambda,
          b: spec.name === "beam" ? undefined : options.beams,
          width: spec.name === "beam" ? options.beams : undefined,
          n: options.n,
        };
        for (const [key, value] of Object.entries(overrides))
          if (value !== undefined) spec.params[key] = value;
        const params = Object.entries(spec.params).map(([k, v]) => `${k}=${v}`);
        // Re-parse so flag values are checked against the strategy's parameters like spec values.
        const fullSpec = parseStrategySpec(params.length ? `${spec.name}:${params.join(",")}` : spec.name);
        if (options.reward.length === 0)
          throw new TillerError(
            `give at least one --reward; valid forms: ${REWARD_SPEC_FORMS.join(" | ")} (see tiller align --help)`,
            "no-reward",
          );
        if (options.shield && !options.provenance)
          throw new TillerError(
            "--shield needs --provenance <dir> (the corpus index to check against)",
            "no-index",
          );
        const index = options.provenance ? TraceIndex.open(options.provenance) : undefined;
        const model = await loadModelFromOptions(options);
        let judge: Awaited<ReturnType<typeof loadModelFromOptions>> | undefined;
        try {
          if (options.judgeModel && options.reward.some((r) => /(^|\*)judge/.test(r)))
            judge = await loadModelFromOptions({ ...options, model: options.judgeModel });
          const reward = parseRewardSpecs(options.reward, options.weight, { judgeModel: judge ?? model });
          const provDecode = (mode: "hard" | "soft") =>
            new ProvDecodeVeto(index as TraceIndex, {
              n: options.window,
              tau: options.tau,
              mode,
              gamma: options.gamma,
              minLength: options.minMatch,
              maxCount: options.maxCount,
              normalize: options.normalize ? { model } : undefined,
            });
          const vetoes: CandidateVeto[] = [];
          if (index) {
            await index.checkModel(model);
            // Built now so a bad option fails before decoding; with --shield it vetoes retries only.
            const veto = provDecode(options.veto);
            if (!options.shield) vetoes.push(veto);
          }
          const sampling = {
            temperature: options.temperature,
            topK: options.topK,
            topP: options.topP,
            seed: options.seed,
          };
          const strategy =
            options.shield && index
              ? shielded(
                  (attempt) =>
                    createStrategy(fullSpec, {
                      reward,
                      // Retries: a new seed, and a hard Prov-Decode veto against the copy.
                      vetoes: attempt === 0 ? vetoes : [...vetoes, provDecode("hard")],
                      sampling:
                        attempt === 0 ? sampling : { ...sampling, seed: (options.seed ?? 0) + attempt },
                    }),
                  index,
                  { tau: options.tau, regenerate: options.regenerate, refusal: options.refusal },
                )
              : fullSpec;
          const result = await align(model, {
            prompt: options.prompt,
            system: options.system,
            chat: options.chat,
            reward,
            strategy,
            maxTokens: options.maxTokens,
            sampling,
            vetoes,
            trace: Boolean(options.trace),
          });
          if (options.trace)
            writeFileSync(options.trace, `${JSON.stringify(result.trace ?? null, null, 2)}\n`);
          const stats = {
            generatedTokens: result.stats.generatedTokens,
            evaluatedTokens: result.stats.evaluatedTokens,
            wallMs: result.stats.wallMs,
          };
          const details = result.details?.strategy === "shield" ? result.details : undefined;
          const shield = details && {
            refused: details.refused,
            tau: details.tau,
            attempts: details.verdicts.map((a) => ({
              verdict: a.verdict,
              maxBci: a.maxBci,
              spans: a.spans.length,
            })),
          };
          if (options.json) {
            process.stdout.write(
              `${JSON.stringify({ text: result.text, rewards: result.rewards, score: result.score, minToken: result.minToken, stats, ...(shield ? { shield } : {}) })}\n`,
            );
          } else {
            process.stdout.write(`${result.text}\n\n`);
            for (const [name, value] of Object.entries(result.rewards))
              process.stdout.write(`  ${name.padEnd(24)} ${value.toFixed(4)}\n`);
            process.stdout.write(`  ${"score (mix)".padEnd(24)} ${result.score.toFixed(4)}\n`);
            if (result.minToken)
              process.stdout.write(
                `  ${"least likely token".padEnd(24)} ${JSON.stringify(result.minToken.text)} at ${result.minToken.index}: logprob ${result.minToken.logprob.toFixed(2)}\n`,
              );
            process.stdout.write(
              `  ${fullSpec.label}: ${stats.generatedTokens} tokens generated, ${stats.evaluatedTokens} evaluated, ${stats.wallMs} ms\n`,
            );
            if (shield)
              process.stdout.write(
                `  TraceShield (τ = ${shield.tau}): ${shield.refused ? "refused" : "passed"} after ${shield.attempts.length} attempt(s); max BCI ${shield.attempts.map((a) => a.maxBci.toFixed(1)).join(", ")}\n`,
              );
          }
        } finally {
          await judge?.dispose();
          await model.dispose();
        }
      }),
    );
}
