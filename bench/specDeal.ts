/**
 * bench:spec's DeAL rows: DeAL (`deal`, natural placement by default) over keyword tasks, without and with drafting of
 * its lookaheads and saturation finish, each timed against plain greedy on the same task. The
 * three runs of a task follow each other (greedy, DeAL, drafted DeAL), every one from a cold
 * cache, so a burst of load on a shared machine hits all three alike.
 */

import { createStrategy } from "../src/decoding/registry.js";
import { runStrategy } from "../src/decoding/run.js";
import type { SearchDrafting } from "../src/decoding/speculative/searchDrafting.js";
import type { GenerationResult } from "../src/decoding/types.js";
import { fluencyOf, tokenLogprobs } from "../src/eval/fluency.js";
import { taskReward } from "../src/eval/taskReward.js";
import type { EvalTask } from "../src/eval/tasks.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { promptTokens } from "../src/lm/prompt.js";
import { keywordCoverage } from "../src/rewards/keywords.js";

/** DeAL with its defaults: the natural-placement settings (floor, bridging; `deal:raw` is the old search). */
export const DEAL_SPEC = "deal";

export interface DealTally {
  label: string;
  wallMs: number;
  cpuMs: number;
  evaluatedTokens: number;
  softCoverage: number;
  hardCoverage: number;
  /** Outputs with a token below e^-8 (src/eval/fluency.ts). */
  salad: number;
  tasks: number;
  drafted: number;
  accepted: number;
  targetCalls: number;
  switchOffs: number;
  /** Tasks whose text equals undrafted DeAL's. */
  sameAsUndrafted: number;
}

const cpuMs = () => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};

function empty(label: string): DealTally {
  return {
    label,
    wallMs: 0,
    cpuMs: 0,
    evaluatedTokens: 0,
    softCoverage: 0,
    hardCoverage: 0,
    salad: 0,
    tasks: 0,
    drafted: 0,
    accepted: 0,
    targetCalls: 0,
    switchOffs: 0,
    sameAsUndrafted: 0,
  };
}

/** Greedy, DeAL and drafted DeAL on every task; tallies keyed "greedy", "deal", "deal+draft". */
export async function dealSideBySide(
  target: LlamaCppModel,
  draft: LlamaCppModel | undefined,
  drafting: SearchDrafting,
  tasks: readonly EvalTask[],
): Promise<DealTally[]> {
  const variants = [
    { tally: empty("greedy"), spec: "greedy", drafting: undefined },
    { tally: empty("deal"), spec: DEAL_SPEC, drafting: undefined },
    { tally: empty("deal+draft"), spec: DEAL_SPEC, drafting },
  ];
  for (const task of tasks) {
    const prompt = await promptTokens(target, task.prompt);
    let undrafted: GenerationResult | undefined;
    for (const v of variants) {
      await target.clearCache();
      await draft?.clearCache();
      const strategy = createStrategy(v.spec, { reward: taskReward(task) });
      const started = cpuMs();
      const result = await runStrategy(strategy, {
        model: target,
        draft,
        prompt: task.prompt,
        promptTokens: prompt,
        maxTokens: task.maxTokens,
        drafting: v.drafting,
      });
      const t = v.tally;
      t.cpuMs += cpuMs() - started;
      t.wallMs += result.stats.wallMs;
      t.evaluatedTokens += result.stats.evaluatedTokens;
      t.tasks++;
      const coverage = keywordCoverage(result.text, task.keywords, { inflections: true });
      t.softCoverage += coverage.soft;
      t.hardCoverage += coverage.hard;
      const logprobs = await tokenLogprobs(target, prompt, result.tokens);
      if (fluencyOf(target, prompt, result.tokens, logprobs, result.text).salad) t.salad++;
      if (v.spec === DEAL_SPEC && !v.drafting) undrafted = result;
      if (v.drafting && result.text === undrafted?.text) t.sameAsUndrafted++;
      console.error(
        `  ${task.id} ${t.label}: ${result.stats.wallMs} ms wall, ${result.stats.evaluatedTokens} evaluated, coverage ${coverage.soft.toFixed(2)}`,
      );
      const d = result.details;
      if (d?.strategy === "deal" && d.drafting) {
        t.drafted += d.drafting.drafted;
        t.accepted += d.drafting.accepted;
        t.targetCalls += d.drafting.targetCalls;
        t.switchOffs += d.drafting.switchOffs;
      }
    }
  }
  return variants.map((v) => v.tally);
}
