import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEAL_DEFAULTS, deal } from "../src/decoding/deal/index.js";
import { createStrategy, parseStrategySpec } from "../src/decoding/registry.js";
import { runStrategy } from "../src/decoding/run.js";
import type { Draft, Drafter, DraftRequest } from "../src/decoding/speculative/index.js";
import type { SearchDrafting } from "../src/decoding/speculative/searchDrafting.js";
import type { DecodeContext, GenerationResult } from "../src/decoding/types.js";
import { SALAD_LOGPROB, tokenLogprobs } from "../src/eval/fluency.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import type { LanguageModel, ScoreOptions, ScoreRequest } from "../src/lm/types.js";
import { keywordsReward } from "../src/rewards/index.js";
import { loadDraftTwin, loadTestModel } from "./helpers.js";

let small: LlamaCppModel;
let twin: LlamaCppModel;

beforeAll(async () => {
  small = await loadTestModel({ sequences: 8 });
  twin = await loadDraftTwin();
});
afterAll(async () => {
  await small?.dispose();
  await twin?.dispose();
});

const reward = keywordsReward(["elephant", "shop", "hug"]);
const PROMPT = "Tom had a red ball.";

/** The target's model calls, by kind: what one DeAL step asks of it. */
interface CallLog {
  rollouts: number;
  /** scoreContinuations calls shaped like a drafted lookahead's: argmax per position + the distribution after. */
  lookaheadScores: number[];
}

/** The target seen through a wrapper that logs its calls (the real model answers them). */
function logged(model: LlamaCppModel, log: CallLog): LanguageModel {
  return Object.create(model, {
    rollouts: {
      value: (...args: Parameters<LanguageModel["rollouts"]>) => {
        log.rollouts++;
        return model.rollouts(...args);
      },
    },
    scoreContinuations: {
      value: (requests: readonly ScoreRequest[], options?: ScoreOptions) => {
        if (options?.topK === 1 && (options.nextTopK ?? 0) > 1) log.lookaheadScores.push(requests.length);
        return model.scoreContinuations(requests, options);
      },
    },
  }) as LanguageModel;
}

/** A drafter that counts its calls and is right for one token, then wrong (the correction path runs). */
function countingDrafter(model: LlamaCppModel, calls: { n: number }): Drafter {
  return {
    name: "right-then-wrong",
    async propose(requests: readonly DraftRequest[]): Promise<Draft[]> {
      calls.n++;
      const rollouts = await model.rollouts(
        requests.map((r) => ({ prefix: r.context, maxTokens: r.n })),
        { maxTokens: Math.max(...requests.map((r) => r.n)) },
      );
      return rollouts.map(({ tokens }) => ({
        tokens: tokens.map((t, i) => (i === 1 ? (t + 1) % model.vocabularySize : t)),
      }));
    },
  };
}

async function decode(
  spec: string,
  drafting: SearchDrafting | undefined,
  log: CallLog = { rollouts: 0, lookaheadScores: [] },
): Promise<GenerationResult> {
  const strategy = createStrategy(parseStrategySpec(spec), { reward });
  const context: DecodeContext = {
    model: logged(small, log),
    draft: twin,
    prompt: PROMPT,
    promptTokens: await small.tokenize(PROMPT),
    maxTokens: 48,
    drafting,
  };
  return runStrategy(strategy, context);
}

/** The target's logprobs of the output: no token below the salad floor, and they match what DeAL reported. */
async function checkFluency(result: GenerationResult): Promise<void> {
  const prompt = await small.tokenize(PROMPT);
  const logprobs = await tokenLogprobs(small, prompt, result.tokens);
  expect(Math.min(...logprobs), result.text).toBeGreaterThan(SALAD_LOGPROB);
  const sum = logprobs.reduce((a, b) => a + b, 0);
  // The committed logprobs are the target's own (drafted tokens are scored before they are committed).
  expect(Math.abs(sum - result.logprob), result.text).toBeLessThan(1e-2 * result.tokens.length + 1e-3);
}

function stepsOf(result: GenerationResult): number {
  if (result.details?.strategy !== "deal") throw new Error(`no DeAL details: ${result.details?.strategy}`);
  return result.details.steps;
}

describe("deal:lookahead=draft — the drafter writes the lookaheads, the target scores them in one call", () => {
  it("uses the drafter, one target scoring call per step and no target rollout; fluent output", async () => {
    const calls = { n: 0 };
    const log: CallLog = { rollouts: 0, lookaheadScores: [] };
    const result = await decode(
      "deal:lookahead=draft,saturation=false,k=4,l=4",
      { drafter: countingDrafter(small, calls) },
      log,
    );
    const steps = stepsOf(result);
    expect(steps).toBeGreaterThan(3);
    expect(calls.n).toBeGreaterThanOrEqual(steps - 1);
    expect(log.rollouts).toBe(0);
    // One batched call per step (none in a step where no candidate could look ahead), for all candidates.
    expect(log.lookaheadScores.length).toBeLessThanOrEqual(steps);
    expect(log.lookaheadScores.length).toBeGreaterThanOrEqual(steps - 1);
    expect(Math.max(...log.lookaheadScores)).toBeGreaterThan(1);
    const stats = result.details?.strategy === "deal" ? result.details.drafting : undefined;
    expect(stats?.drafted).toBeGreaterThan(0);
    // The drafter is wrong at every second token: some of its tokens are not the target's.
    expect(stats?.accepted).toBeLessThan(stats?.drafted ?? 0);
    await checkFluency(result);
  });

  it("with a drafter of the target's own weights it writes the same text as target lookaheads", async () => {
    const plain = await decode("deal:k=4,l=4", undefined);
    const drafted = await decode("deal:lookahead=draft,k=4,l=4", { drafter: "model", draftTokens: 4 });
    expect(drafted.text).toBe(plain.text);
  });
});

describe("deal:lookahead=draft-only — the target checks only the kept candidates' lookaheads", () => {
  it("scores no loser's lookahead: each step's check holds the kept beams only; fluent output", async () => {
    const log: CallLog = { rollouts: 0, lookaheadScores: [] };
    const result = await decode(
      "deal:lookahead=draft-only,saturation=false,k=4,l=4,b=1",
      { drafter: "model" },
      log,
    );
    const steps = stepsOf(result);
    expect(steps).toBeGreaterThan(3);
    expect(log.rollouts).toBe(0);
    expect(log.lookaheadScores.length).toBeLessThanOrEqual(steps);
    expect(log.lookaheadScores.every((n) => n === 1)).toBe(true);
    await checkFluency(result);
  });
});

describe("drafted lookahead: bad input", () => {
  it("without a drafter it is a clear error", async () => {
    await expect(decode("deal:lookahead=draft", undefined)).rejects.toMatchObject({
      name: "TillerError",
      code: "no-drafter",
    });
  });

  it("an unknown source is a clear error", () => {
    expect(() => createStrategy(parseStrategySpec("deal:lookahead=oracle"), { reward })).toThrow(
      /lookahead must be one of target \| draft \| draft-only/,
    );
    // The library's option is checked the same way (it once fell through to draft-only).
    expect(() => deal({ ...DEAL_DEFAULTS, reward, lookaheadFrom: "drafts" as never })).toThrow(
      /deal: lookaheadFrom must be one of target \| draft \| draft-only, got "drafts"/,
    );
  });
});
