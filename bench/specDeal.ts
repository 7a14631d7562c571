/**
 * bench:spec's DeAL rows: DeAL (`deal`, natural placement by default) over keyword tasks, without and with drafting of
 * its lookaheads and saturation finish (lossless: verified lookaheads by default, `deal+draft:rounds`
 * the speculative rollouts round by round), and with drafted lookaheads (`lookahead=draft`:
 * scored by the target in one call; `lookahead=draft-only`: only the winner checked — CDSL's
 * idea, not lossless), each timed against plain greedy on the same task. The runs of a task
 * follow each other, every one from a cold cache, so a burst of load on a shared machine hits
 * all of them alike.
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
  /** Σ over outputs of each output's least token logprob, and of its mean token logprob (target's). */
  minLogprob: number;
  meanLogprob: number;
  /** Target model calls (a rollout call counts once, whatever its length). */
  calls: number;
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
    minLogprob: 0,
    meanLogprob: 0,
    calls: 0,
    tasks: 0,
    drafted: 0,
    accepted: 0,
    targetCalls: 0,
    switchOffs: 0,
    sameAsUndrafted: 0,
  };
}

/**
 * The DeAL variants measured: DeAL, DeAL with lossless drafting, and the two drafted-lookahead
 * modes (which need the drafter too).
 */
export const DEAL_VARIANTS = [
  { label: "deal", spec: DEAL_SPEC, drafts: false },
  { label: "deal+draft", spec: DEAL_SPEC, drafts: true },
  // Drafting round by round through the speculative rollouts (before verified lookaheads).
  { label: "deal+draft:rounds", spec: `${DEAL_SPEC}:verifyAhead=false`, drafts: true },
  { label: "lookahead=draft", spec: `${DEAL_SPEC}:lookahead=draft`, drafts: true },
  { label: "lookahead=draft-only", spec: `${DEAL_SPEC}:lookahead=draft-only`, drafts: true },
] as const;

/**
 * Greedy and every DEAL_VARIANTS entry (or those `labels` names) on every task; tallies keyed by
 * label, greedy first.
 */
export async function dealSideBySide(
  target: LlamaCppModel,
  draft: LlamaCppModel | undefined,
  drafting: SearchDrafting,
  tasks: readonly EvalTask[],
  labels?: readonly string[],
): Promise<DealTally[]> {
  const variants = [
    { tally: empty("greedy"), spec: "greedy", drafting: undefined as SearchDrafting | undefined },
    ...DEAL_VARIANTS.filter((v) => !labels || labels.includes(v.label)).map((v) => ({
      tally: empty(v.label),
      spec: v.spec,
      drafting: v.drafts ? drafting : undefined,
    })),
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
      t.calls += result.stats.usage.calls;
      const logprobs = await tokenLogprobs(target, prompt, result.tokens);
      const fluency = fluencyOf(target, prompt, result.tokens, logprobs, result.text);
      if (fluency.salad) t.salad++;
      t.minLogprob += fluency.minToken?.logprob ?? 0;
      t.meanLogprob += fluency.meanLogprob ?? 0;
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
