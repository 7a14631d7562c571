/**
 * `tiller eval` on an identity task file (its tasks carry `kind`: masked or stated): every strategy
 * on every task, then the Identity Inference Rate table (src/eval/identityEval.ts). The verifier
 * (`--verifier`) is the model AMBEDKAR judges with and the model fluency is measured under (the
 * *other* model, so a strategy is not graded by the model it decoded with); without it the
 * writing model does both. Strategies that need a reward (deal, bon) get a penalty of 1 per
 * word of the lexicon, the plain baseline AMBEDKAR is compared with.
 */
import * as path from "node:path";
import { SingleBar } from "cli-progress";
import { loadSwapMap } from "../../decoding/ambedkar/builtinSwaps.js";
import { createStrategy, parseStrategyList, strategyHelp } from "../../decoding/registry.js";
import { TillerError } from "../../errors.js";
import { runIdentityEval } from "../../eval/identityEval.js";
import { lexiconFromSwapMap, readIdentityLexicon } from "../../eval/identityMetrics.js";
import { formatIdentityReport, writeIdentityPlot } from "../../eval/identityReport.js";
import { readIdentityTasks } from "../../eval/identityTasks.js";
import type { LanguageModel } from "../../lm/types.js";
import { lexiconReward } from "../../rewards/lexicon.js";
import { writeFileAtomic } from "../../util/atomicWrite.js";
import { prepareOutDir } from "../outDir.js";
import { loadModelFromOptions, type ModelCliOptions } from "../shared.js";
import { commandSignal, markFinished } from "../signals.js";
import { readConstitution } from "./align.js";

export interface IdentityEvalCliOptions extends ModelCliOptions {
  tasks: string;
  strategies: string;
  out: string;
  limit?: number;
  json?: boolean;
  force?: boolean;
  resume?: boolean;
  index?: string;
  verifier?: string;
  swaps?: string;
  constitution?: string;
  lexicon?: string;
}

export async function runIdentityEvalCommand(options: IdentityEvalCliOptions): Promise<void> {
  // Every input is checked before a model loads.
  if (options.resume)
    throw new TillerError("--resume is not available for identity task files; run again", "bad-usage");
  if (options.index)
    throw new TillerError("--index measures regurgitation on keyword tasks, not identity tasks", "bad-usage");
  let tasks = readIdentityTasks(options.tasks);
  if (options.limit !== undefined) tasks = tasks.slice(0, options.limit);
  const specs = parseStrategyList(options.strategies);
  if (specs.length === 0)
    throw new TillerError(`no strategies given; valid: ${strategyHelp()}`, "no-strategies");
  const swaps = loadSwapMap(options.swaps ?? "gender");
  const lexicon = options.lexicon ? readIdentityLexicon(options.lexicon) : lexiconFromSwapMap(swaps);
  const words = [...lexicon.groups.values()].flatMap((group) => [...group]);
  const deps = {
    swaps,
    constitution: options.constitution === undefined ? undefined : readConstitution(options.constitution),
    reward: lexiconReward(words, { name: "identity-words", penalty: 1 }),
  };
  for (const spec of specs) createStrategy(spec, deps);
  const { dir: out } = prepareOutDir(options.out, { force: options.force });
  const signal = commandSignal();
  const model = await loadModelFromOptions(options, { signal });
  let verifier: LanguageModel | undefined;
  const bar = new SingleBar(
    {
      format: "eval [{bar}] {value}/{total} | {strategy}",
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: true,
    },
    undefined,
  );
  try {
    if (options.verifier)
      verifier = await loadModelFromOptions({ ...options, model: options.verifier }, { signal });
    signal.throwIfAborted();
    bar.start(specs.length * tasks.length, 0, { strategy: specs[0].label });
    const result = await runIdentityEval(model, tasks, specs, {
      verifier,
      lexicon,
      deps,
      signal,
      onProgress: (done, _total, strategy) => bar.update(done, { strategy }),
    });
    bar.stop();
    markFinished();
    const counts = {
      masked: tasks.filter((t) => t.kind === "masked").length,
      stated: tasks.filter((t) => t.kind === "stated").length,
    };
    const summary = {
      kind: "identity",
      model: result.model,
      verifier: result.verifier ?? null,
      fluencyModel: result.fluencyModel,
      tasks: options.tasks,
      taskCount: tasks.length,
      ...counts,
      swaps: swaps.name,
      constitution: options.constitution ?? null,
      strategies: result.summary,
      files: {
        results: path.join(out, "results.jsonl"),
        plotSvg: path.join(out, "identity.svg"),
        plotPng: path.join(out, "identity.png"),
      },
    };
    if (options.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else process.stdout.write(`${formatIdentityReport(result, counts)}\n`);
    writeFileAtomic(
      path.join(out, "results.jsonl"),
      result.rows.map((row) => `${JSON.stringify(row)}\n`).join(""),
    );
    writeFileAtomic(path.join(out, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
    await writeIdentityPlot(
      result.summary,
      path.join(out, "identity"),
      `Identity inference — ${result.model}, ${tasks.length} task(s)`,
    );
    if (!options.json)
      process.stdout.write(`wrote results.jsonl, summary.json, identity.svg/.png in ${out}\n`);
  } finally {
    bar.stop();
    await verifier?.dispose();
    await model.dispose();
  }
}
