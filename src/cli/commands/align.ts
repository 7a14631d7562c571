import { readFileSync } from "node:fs";
import { type Command, Option } from "commander";
import { align } from "../../align.js";
import { createStrategy, parseStrategySpec, strategyHelp } from "../../decoding/registry.js";
import type { CandidateVeto } from "../../decoding/veto.js";
import { TillerError } from "../../errors.js";
import type { LanguageModel } from "../../lm/types.js";
import { PROV_DECODE_RECOMMENDED, ProvDecodeVeto } from "../../provenance/prov-decode.js";
import { shielded } from "../../provenance/shield.js";
import type { TraceIndex } from "../../provenance/trace-index.js";
import { parseRewardSpecs, REWARD_SPEC_FORMS, REWARD_SPEC_HELP } from "../../rewards/spec.js";
import { writeFileAtomic } from "../../util/atomicWrite.js";
import { abortError } from "../../util/cooperative.js";
import { checkSearchWidth, confirmCost, strategyTokens, tokenCost } from "../limits.js";
import { checkOutputFile } from "../outputFile.js";
import {
  action,
  addAlias,
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
import { commandSignal, markFinished } from "../signals.js";
import { checkPrompt, mergeStrategyFlags } from "../specFlags.js";

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
  draft?: string;
  draftTokens?: string;
  verifier?: string;
  swaps?: string;
  constitution?: string;
  index?: string;
  verify: boolean;
  tau: number;
  veto: "hard" | "soft";
  gamma: number;
  window: number;
  minLen: number;
  maxCount?: number;
  normalize: boolean;
  shield?: boolean;
  regenerate: number;
  refusal?: string;
  trace?: string;
  json?: boolean;
  yes?: boolean;
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
    .option("-b, --beams <b>", "deal/beam: beams kept", positiveInt)
    .option("--n <N>", "bon/won: samples drawn", positiveInt)
    .option("-t, --temperature <T>", "sampling temperature (sample, bon, won)", finiteNumber)
    .option("--top-k <k>", "sampling: keep the k most likely tokens", nonNegativeInt)
    .option("--top-p <p>", "sampling: nucleus mass", finiteNumber)
    .option("--seed <s>", "sampler seed", anyInt)
    .option("--judge-model <path|hf:uri>", "model that answers judge:… rewards (default: the main model)")
    .option(
      "--draft <model|prompt|index:DIR>",
      "speculative drafting (strategy speculative; also DeAL's lookaheads and bon/won samples): a draft model's path, prompt lookup, or corpus lookup in an index",
    )
    .option("--draft-tokens <n|auto>", "draft tokens per round (default: auto)")
    .option("--verifier <path|hf:uri>", "the verifier model (strategy ambedkar; default: the main model)")
    .option("--swaps <gender|religion|caste|FILE>", "identity swap map for ambedkar (default: gender)")
    .option("--constitution <file>", "instruction text given to ambedkar's verifier")
    .option(
      "-i, --index <dir>",
      "a corpus index (tiller index build): veto continuations that copy rare corpus spans (Prov-Decode)",
    )
    .option("--no-verify", "skip checksum verification when opening the index")
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
      "--min-len <m>",
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
      "TraceShield over the --index: refuse an output whose max span BCI exceeds --tau; regenerate with a hard Prov-Decode veto first (with --shield, the index does not veto the first attempt)",
    )
    .option("--regenerate <n>", "--shield: attempts after a refused one", nonNegativeInt, 1)
    .option("--refusal <text>", "--shield: text returned when every attempt is refused")
    .option("--trace <file>", "write the search trace (steps, candidates, rollouts, scores) as JSON")
    .option("--json", "print one JSON object")
    .option("--yes", "run even when the run is estimated to take more than 30 minutes")
    .action(
      action(async (options: AlignCliOptions) => {
        // Validate everything that needs no model first, so bad input fails fast.
        checkPrompt(options.prompt);
        const spec = parseStrategySpec(options.strategy);
        // Flags are another way to write the spec's parameters; the same one given both ways is an error.
        const fullSpec = mergeStrategyFlags(spec, {
          k: ["--k", options.k],
          l: ["--lookahead", options.lookahead],
          lambda: ["--lambda", options.lambda],
          [spec.name === "beam" ? "width" : "b"]: ["--beams", options.beams],
          n: ["--n", options.n],
        });
        if (options.reward.length === 0)
          throw new TillerError(
            `give at least one --reward; valid forms: ${REWARD_SPEC_FORMS.join(" | ")} (see tiller align --help)`,
            "no-reward",
          );
        if (options.shield && !options.index)
          throw new TillerError(
            "--shield needs --index <dir> (the corpus index to check against)",
            "no-index",
          );
        if (options.trace) checkOutputFile(options.trace, "--trace");
        // The index reader is loaded only when an index is given.
        const index = options.index
          ? (await import("../../provenance/trace-index.js")).TraceIndex.open(options.index, {
              verify: options.verify,
            })
          : undefined;
        const signal = commandSignal();
        const model = await loadModelFromOptions(options, { signal });
        let judge: Awaited<ReturnType<typeof loadModelFromOptions>> | undefined;
        const extra: { draft?: LanguageModel; verifier?: LanguageModel } = {};
        try {
          checkSearchWidth(fullSpec, model);
          confirmCost(
            {
              what: `${fullSpec.label} with --max-tokens ${options.maxTokens}`,
              seconds: tokenCost(
                model,
                strategyTokens(fullSpec, options.maxTokens) * (options.shield ? 1 + options.regenerate : 1),
              ),
              lower: "the strategy's width or --max-tokens",
            },
            options.yes,
          );
          if (options.judgeModel && options.reward.some((r) => /(^|\*)judge/.test(r)))
            judge = await loadModelFromOptions({ ...options, model: options.judgeModel });
          const reward = parseRewardSpecs(options.reward, options.weight, { judgeModel: judge ?? model });
          const provDecode = (mode: "hard" | "soft") =>
            new ProvDecodeVeto(index as TraceIndex, {
              n: options.window,
              tau: options.tau,
              mode,
              gamma: options.gamma,
              minLength: options.minLen,
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
          const draftSpec = options.draft;
          const draftIsModel =
            draftSpec !== undefined &&
            draftSpec !== "prompt" &&
            !draftSpec.startsWith("index:") &&
            !draftSpec.includes("+");
          if (draftIsModel) extra.draft = await loadModelFromOptions({ ...options, model: draftSpec });
          if (options.verifier)
            extra.verifier = await loadModelFromOptions({ ...options, model: options.verifier });
          const { loadSwapMap } = await import("../../decoding/ambedkar/builtinSwaps.js");
          const swaps = options.swaps === undefined ? undefined : loadSwapMap(options.swaps);
          const constitution =
            options.constitution === undefined ? undefined : readConstitution(options.constitution);
          const result = await align(model, {
            models: extra,
            swaps,
            constitution,
            drafter: draftIsModel ? "model" : draftSpec,
            draftTokens:
              options.draftTokens === undefined
                ? undefined
                : options.draftTokens === "auto"
                  ? "auto"
                  : positiveInt(options.draftTokens),
            prompt: options.prompt,
            system: options.system,
            chat: options.chat,
            reward,
            strategy,
            maxTokens: options.maxTokens,
            sampling,
            vetoes,
            trace: Boolean(options.trace),
            signal,
          });
          // Strategies that stop early on an abort return their partial text: not a finished run.
          if (result.stopReason === "aborted" || signal.aborted) throw abortError(signal);
          markFinished();
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
          // The results first, then the side file: a write failure cannot hide what was computed.
          if (options.trace)
            writeFileAtomic(options.trace, `${JSON.stringify(result.trace ?? null, null, 2)}\n`);
        } finally {
          await judge?.dispose();
          await extra.draft?.dispose();
          await extra.verifier?.dispose();
          await model.dispose();
        }
      }),
    );
  // Earlier names, kept working: one name per concept across commands (eval, trace, index query).
  addAlias(command, "--provenance", "--index");
  addAlias(command, "--min-match", "--min-len");
}

/** The constitution file's text; a missing or unreadable file is one clear line. */
export function readConstitution(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    throw new TillerError(
      `cannot read --constitution ${file}: ${(error as Error).message}`,
      "bad-constitution",
    );
  }
}
