import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DecodeEvent } from "../src/decoding/events.js";
import { plainDecoding } from "../src/decoding/greedy.js";
import { createStrategy } from "../src/decoding/registry.js";
import { runStrategy } from "../src/decoding/run.js";
import {
  CorpusLookupDrafter,
  type Draft,
  type Drafter,
  DraftModelDrafter,
  type DraftRequest,
  FallbackDrafter,
  PromptLookupDrafter,
  rolloutFunction,
  SpeculationSession,
  speculative,
  speculativeRollouts,
} from "../src/decoding/speculative/index.js";
import type { DecodeContext, GenerationResult } from "../src/decoding/types.js";
import { isTillerError } from "../src/errors.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { loadModel } from "../src/lm/load.js";
import type { LanguageModel, Token } from "../src/lm/types.js";
import { buildIndex } from "../src/provenance/build-index.js";
import { skipResidualAcceptance } from "./brokenAcceptance.js";
import { loadTestModel, sharedPath } from "./helpers.js";
import { testModelsPath } from "./models.js";
import { speculativeSamplingCheck } from "./speculativeSamplingCheck.js";

const PROMPTS = ["Once upon a time", "Tom and Sue went to the park", "The little dog was"];

let small: LlamaCppModel;
let heavy: LlamaCppModel;
let tmp: string;
let lowerIndex: string;
let casedIndex: string;

async function expectTillerError(run: () => Promise<unknown>, code: string, message: RegExp): Promise<void> {
  try {
    await run();
  } catch (e) {
    expect(isTillerError(e), `expected a TillerError, got ${String(e)}`).toBe(true);
    expect((e as { code: string }).code).toBe(code);
    expect((e as Error).message).toMatch(message);
    expect((e as Error).message).not.toContain("\n");
    return;
  }
  expect.fail(`expected TillerError ${code}`);
}

async function context(
  model: LanguageModel,
  prompt: string,
  extra: Partial<DecodeContext> = {},
): Promise<DecodeContext> {
  return { model, prompt, promptTokens: await model.tokenize(prompt), maxTokens: 80, ...extra };
}

/** The speculative run's details, typed. */
function details(result: GenerationResult) {
  const d = result.details;
  if (d?.strategy !== "speculative") throw new Error("no speculative details");
  return d;
}

beforeAll(async () => {
  small = await loadTestModel({ sequences: 4 });
  heavy = await loadModel(testModelsPath("stories-heavy-n25.gguf"), { gpu: false, threads: 1, sequences: 2 });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tiller-spec-"));
  // The first ~300 KB of the shared (lowercased) corpus, indexed lowercased and as is.
  const corpus = fs.readFileSync(sharedPath("corpora/tinystories-4m.txt"), "utf8");
  fs.writeFileSync(path.join(tmp, "slice.txt"), corpus.slice(0, corpus.indexOf("\n\n", 300_000)));
  lowerIndex = path.join(tmp, "lower");
  casedIndex = path.join(tmp, "cased");
  await buildIndex(small, [path.join(tmp, "slice.txt")], lowerIndex, { lowercase: true });
  await buildIndex(small, [path.join(tmp, "slice.txt")], casedIndex);
});

afterAll(async () => {
  await small?.dispose();
  await heavy?.dispose();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe("greedy speculative decoding writes exactly the target's greedy text", () => {
  it("drafted by a draft model (stories260K for stories-heavy-n25), several draft lengths", async () => {
    for (const prompt of PROMPTS.slice(0, 2)) {
      const ctx = await context(heavy, prompt, { draft: small, maxTokens: 48 });
      const greedy = await runStrategy(plainDecoding({ temperature: 0 }), ctx);
      for (const draftTokens of [1, 3, 6, "auto"] as const) {
        const result = await runStrategy(speculative({ draftTokens, payoff: false }), ctx);
        expect(result.tokens, `${prompt} / ${draftTokens}`).toEqual(greedy.tokens);
        expect(result.text).toBe(greedy.text);
        expect(result.stopReason).toBe(greedy.stopReason);
        const d = details(result);
        expect(d.drafter).toBe("model:stories260K.gguf");
        // The pair agrees on ~3 of 4 greedy tokens: drafts are accepted and rejected.
        expect(d.accepted).toBeGreaterThan(0);
        expect(d.accepted).toBeLessThan(d.drafted);
        expect(d.targetCalls).toBeLessThan(result.tokens.length);
      }
    }
  });

  it("drafted by prompt lookup, a corpus index (lowercased and not), and both in turn", async () => {
    const drafters: [string, () => Drafter][] = [
      ["prompt", () => new PromptLookupDrafter()],
      ["prompt n=1..3", () => new PromptLookupDrafter({ minNgram: 1, maxNgram: 3 })],
      ["lowercased index", () => CorpusLookupDrafter.open(lowerIndex)],
      ["cased index", () => CorpusLookupDrafter.open(casedIndex)],
      [
        "prompt+index",
        () => new FallbackDrafter([new PromptLookupDrafter(), CorpusLookupDrafter.open(lowerIndex)]),
      ],
    ];
    for (const prompt of PROMPTS) {
      const ctx = await context(small, prompt, { maxTokens: 100 });
      const greedy = await runStrategy(plainDecoding({ temperature: 0 }), ctx);
      for (const [name, make] of drafters)
        for (const draftTokens of [1, 4, "auto"] as const) {
          const result = await runStrategy(speculative({ drafter: make(), draftTokens, payoff: false }), ctx);
          expect(result.tokens, `${name} / ${prompt} / ${draftTokens}`).toEqual(greedy.tokens);
          expect(result.text).toBe(greedy.text);
        }
    }
  });

  it("the corpus drafter proposes, and the target accepts, most of a story opening", async () => {
    const result = await runStrategy(
      speculative({ drafter: CorpusLookupDrafter.open(lowerIndex), draftTokens: 6, payoff: false }),
      await context(small, "Once upon a time", { maxTokens: 60 }),
    );
    const d = details(result);
    expect(d.drafter).toBe(`index:${lowerIndex}`);
    expect(d.accepted).toBeGreaterThan(10);
    expect(d.targetCalls).toBeLessThan(result.tokens.length * 0.75);
  });

  it("speculativeRollouts: batched requests end where model.rollouts ends them (stop strings, budgets)", async () => {
    const requests = await Promise.all(
      PROMPTS.map(async (prompt, i) => ({ prefix: await small.tokenize(prompt), maxTokens: 20 + 15 * i })),
    );
    for (const stopStrings of [undefined, ["."], ["park"]]) {
      // From a fresh cache each time: which prefixes are cached changes float rounding, and a
      // near-tie can then flip a token (a flake seen once in a full run).
      await small.clearCache();
      const plain = await small.rollouts(requests, { maxTokens: 40, stopStrings });
      await small.clearCache();
      const drafted = await speculativeRollouts(small, new PromptLookupDrafter({ minNgram: 1 }), requests, {
        maxTokens: 40,
        stopStrings,
        draftTokens: 5,
        payoff: false,
      });
      drafted.forEach((rollout, i) => {
        expect(rollout.tokens, `request ${i} / ${stopStrings}`).toEqual(plain[i].tokens);
        expect(rollout.stopReason).toBe(plain[i].stopReason);
        rollout.logprobs.forEach((logprob, k) => {
          expect(logprob).toBeCloseTo(plain[i].logprobs[k], 2);
        });
      });
    }
  });
});

describe("rollouts for searches", () => {
  it("rolloutFunction: DeAL-style lookaheads (many short greedy rollouts per step) through one session", async () => {
    const prompt = await small.tokenize(PROMPTS[0]);
    const [opening] = await heavy.rollouts([{ prefix: prompt }], { maxTokens: 12 });
    const { rollouts, session } = rolloutFunction(heavy, new DraftModelDrafter(small), { payoff: false });
    let prefix = [...prompt, ...opening.tokens];
    for (let step = 0; step < 3; step++) {
      // Five candidates, an 8-token lookahead after each, as DeAL's step makes them.
      const [top] = await heavy.nextTokenDistributions([prefix], { topK: 5 });
      const requests = top.map((c) => ({ prefix: [...prefix, c.token], maxTokens: 8 }));
      const plain = await heavy.rollouts(requests, { maxTokens: 8 });
      const drafted = await rollouts(requests, { maxTokens: 8 });
      expect(drafted.map((r) => r.tokens)).toEqual(plain.map((r) => r.tokens));
      prefix = [...prefix, top[0].token];
    }
    expect(session?.stats.drafted).toBeGreaterThan(0);
    expect(session?.stats.accepted).toBeGreaterThan(0);
    // Each call takes several rounds; each round verifies the 5 requests in one target call.
    expect(session?.stats.targetCalls).toBeLessThan(3 * 8);
  });
});

describe("rounds and stats", () => {
  it("counts drafted, accepted and target calls; streams the text and one step per round", async () => {
    const events: DecodeEvent[] = [];
    const result = await runStrategy(
      speculative({ draftTokens: 4, payoff: false }),
      await context(heavy, PROMPTS[0], {
        draft: small,
        maxTokens: 40,
        emit: (e) => events.push(e),
        trace: true,
      }),
    );
    const d = details(result);
    const steps = events.filter((e) => e.type === "step");
    expect(steps.length).toBe(d.targetCalls);
    expect(result.trace?.steps.length).toBe(d.targetCalls);
    const text = events.map((e) => (e.type === "text" ? e.text : "")).join("");
    expect(text).toBe(result.text);
    expect(d.acceptanceRate).toBeCloseTo(d.accepted / d.drafted, 10);
    // Each round adds its accepted draft tokens and one of the target's.
    expect(d.accepted + d.targetCalls).toBeGreaterThanOrEqual(result.tokens.length);
    // The rejection path: some round kept part of its draft and replaced the rest.
    const notes = result.trace?.steps.map((s) => s.note ?? "") ?? [];
    const partial = notes.filter((note) => {
      const [, drafted, accepted] = /drafted (\d+), accepted (\d+)/.exec(note) ?? [];
      return Number(drafted) > 0 && Number(accepted) < Number(drafted);
    });
    expect(partial.length).toBeGreaterThan(0);
    const rejected = result.trace?.steps.flatMap((s) => s.candidates.filter((c) => !c.kept)) ?? [];
    expect(rejected.length).toBe(partial.length);
  });

  it("one strategy over several prompts: the session carries over, details count each decode's own rounds", async () => {
    const strategy = speculative({ drafter: "prompt", draftTokens: 3 });
    for (const prompt of PROMPTS) {
      let steps = 0;
      const result = await runStrategy(
        strategy,
        await context(small, prompt, { maxTokens: 50, emit: (e) => void (e.type === "step" && steps++) }),
      );
      const d = details(result);
      expect(d.targetCalls).toBe(steps);
      expect(d.accepted + d.targetCalls).toBeGreaterThanOrEqual(result.tokens.length);
    }
  });

  it("auto grows the draft on full acceptance and shrinks it on rejection", async () => {
    // An oracle drafter that knows the greedy text is always accepted: auto grows to its ceiling.
    const prompt = await small.tokenize(PROMPTS[0]);
    const [greedy] = await small.rollouts([{ prefix: prompt }], { maxTokens: 80 });
    const session = new SpeculationSession(oracle(prompt, greedy.tokens), {
      maxDraftTokens: 10,
      payoff: false,
    });
    const lengths: number[] = [];
    await speculativeRollouts(small, session.drafter, [{ prefix: prompt }], {
      maxTokens: 80,
      session,
      onRound: (_i, draft) => lengths.push(draft.tokens.length),
    });
    expect(lengths.slice(0, 5)).toEqual([4, 6, 8, 10, 10]);
    // A drafter that is always wrong shrinks to 1.
    const wrong = new SpeculationSession(constant(small), { payoff: false });
    const wrongLengths: number[] = [];
    await speculativeRollouts(small, wrong.drafter, [{ prefix: prompt }], {
      maxTokens: 20,
      session: wrong,
      onRound: (_i, draft) => wrongLengths.push(draft.tokens.length),
    });
    expect(wrongLengths.slice(0, 5)).toEqual([4, 3, 2, 1, 1]);
    expect(wrong.stats.accepted).toBe(0);
  });

  it("a draft model asks for another token only while its probability of the whole draft is at least minProbability", async () => {
    const contexts = await Promise.all(PROMPTS.map((p) => small.tokenize(p)));
    const requests = contexts.map((context) => ({ context, n: 16, random: Math.random }));
    const sampling = { sampling: { temperature: 0 } };
    const whole = await new DraftModelDrafter(small, { minProbability: 0 }).propose(requests, sampling);
    const callsBefore = small.usage.calls;
    const cut = await new DraftModelDrafter(small, { minProbability: 0.1 }).propose(requests, sampling);
    // One batched call per drafted position, none whose answer is dropped.
    expect(small.usage.calls - callsBefore).toBe(Math.max(...cut.map((d) => d.tokens.length)));
    let shortened = 0;
    for (const [i, context] of contexts.entries()) {
      const full = whole[i].tokens;
      expect(full).toHaveLength(16);
      // The draft model's probability of each prefix of its own greedy draft.
      const steps = await small.nextTokenDistributions(
        full.map((_, k) => [...context, ...full.slice(0, k)]),
        { topK: 1 },
      );
      // Kept: every token asked for, i.e. up to and including the first token that takes the
      // draft's probability (a running product) below 0.1; no token the draft returned is dropped.
      let expected = 0;
      let sure = 0;
      while (expected < full.length && sure >= Math.log(0.1)) sure += steps[expected++][0].logprob;
      expect(cut[i].tokens, PROMPTS[i]).toEqual(full.slice(0, expected));
      if (expected < full.length) shortened++;
    }
    // The cut is exercised, not vacuous: some drafts end early.
    expect(shortened).toBeGreaterThan(0);
  });
});

describe("a drafter that does not pay for itself switches off", () => {
  it("one whose drafts are always rejected", async () => {
    const ctx = await context(small, PROMPTS[0], { maxTokens: 120 });
    const greedy = await runStrategy(plainDecoding({ temperature: 0 }), ctx);
    const result = await runStrategy(speculative({ drafter: constant(small) }), ctx);
    expect(result.tokens).toEqual(greedy.tokens);
    const d = details(result);
    expect(d.accepted).toBe(0);
    expect(d.switchOffs, JSON.stringify(d)).toBeGreaterThanOrEqual(1);
    // Judged on 6 plain/drafted pairs, then off for 32 rounds, judged again, off for 64: most rounds draft nothing.
    expect(d.drafted).toBeLessThan(d.targetCalls * 0.5);
  });

  it("one that is right but slow; the same drafter at full speed stays on", async () => {
    // On the heavy target, where a call costs enough that verifying 5 tokens in one pays.
    const ctx = await context(heavy, PROMPTS[1], { maxTokens: 100 });
    const [greedy] = await heavy.rollouts([{ prefix: ctx.promptTokens }], { maxTokens: 100 });
    // A second per draft of one token: 2 tokens per round, where a plain round takes ~25 ms.
    const slow = await runStrategy(
      speculative({ drafter: oracle(ctx.promptTokens, greedy.tokens, 1000), draftTokens: 1 }),
      ctx,
    );
    expect(slow.tokens).toEqual(greedy.tokens);
    expect(details(slow).switchOffs, JSON.stringify(details(slow))).toBeGreaterThanOrEqual(1);
    const fast = await runStrategy(
      speculative({ drafter: oracle(ctx.promptTokens, greedy.tokens), draftTokens: 4 }),
      ctx,
    );
    expect(fast.tokens).toEqual(greedy.tokens);
    expect(details(fast).switchOffs).toBe(0);
    expect(details(fast).acceptanceRate).toBe(1);
  });
});

describe("speculative sampling is lossless", () => {
  it("draws the first two tokens as the target does (chi-square), and the check catches a sampler that skips the residual", async () => {
    const prefix = await small.tokenize("Once upon a time, there was a");
    // The same model drafting at temperature 0.5 for a target at 1: q differs from p.
    const drafter = new DraftModelDrafter(small, { temperature: 0.5 });
    const sampling = { temperature: 1 };
    const lossless = await speculativeSamplingCheck(small, drafter, { prefix, samples: 1000, sampling });
    expect(lossless.acceptanceRate).toBeLessThan(0.9);
    expect(lossless.acceptanceRate).toBeGreaterThan(0.3);
    expect(lossless.pValue, JSON.stringify(lossless)).toBeGreaterThan(0.001);
    const broken = await speculativeSamplingCheck(small, drafter, {
      prefix,
      samples: 1000,
      sampling,
      acceptance: skipResidualAcceptance,
    });
    expect(broken.pValue, JSON.stringify(broken)).toBeLessThan(1e-6);
  });

  it("with a deterministic drafter (q a point mass) too, with top-k and top-p", async () => {
    const prefix = await small.tokenize("Once upon a time, there was a");
    const [greedy] = await small.rollouts([{ prefix }], { maxTokens: 4 });
    const check = await speculativeSamplingCheck(small, oracle(prefix, greedy.tokens), {
      prefix,
      samples: 800,
      sampling: { temperature: 0.8, topK: 20, topP: 0.95 },
    });
    expect(check.pValue, JSON.stringify(check)).toBeGreaterThan(0.001);
  });

  it("seeded: the same seeds give the same samples", async () => {
    const requests = [1, 2, 3].map((seed) => ({ prefix: [small.bosToken ?? 1], seed }));
    const drafter = new DraftModelDrafter(small, { temperature: 0.7 });
    const options = { temperature: 1, maxTokens: 24, draftTokens: 3, payoff: false as const };
    const a = await speculativeRollouts(small, drafter, requests, options);
    const b = await speculativeRollouts(small, drafter, requests, options);
    expect(a.map((r) => r.tokens)).toEqual(b.map((r) => r.tokens));
    expect(new Set(a.map((r) => r.tokens.join())).size).toBe(3);
  });
});

describe("bad input is a clear TillerError", () => {
  it("a draft model with another tokenizer", async () => {
    const permuted = await loadModel(testModelsPath("stories260K-permuted.gguf"), {
      gpu: false,
      threads: 1,
      sequences: 1,
    });
    try {
      await expectTillerError(
        async () => runStrategy(speculative(), await context(small, PROMPTS[0], { draft: permuted })),
        "draft-tokenizer-mismatch",
        /draft model stories260K-permuted\.gguf tokenizes differently from target stories260K\.gguf/,
      );
      // An index built with the permuted tokenizer cannot draft for stories260K either.
      const dir = path.join(tmp, "permuted");
      await buildIndex(permuted, [path.join(tmp, "slice.txt")], dir, { lowercase: true });
      await expectTillerError(
        async () => runStrategy(speculative({ drafter: `index:${dir}` }), await context(small, PROMPTS[0])),
        "index-model-mismatch",
        /tokenizes differently/,
      );
    } finally {
      await permuted.dispose();
    }
  });

  it("a missing draft index, an unknown drafter, a bad draft length, no draft model", async () => {
    const ctx = await context(small, PROMPTS[0]);
    await expectTillerError(
      () => runStrategy(speculative({ drafter: `index:${path.join(tmp, "nope")}` }), ctx),
      "index-not-found",
      /^draft index: no trace index at .*nope/,
    );
    await expectTillerError(
      async () => createStrategy("speculative:draft=ngram"),
      "bad-drafter",
      /unknown drafter "ngram"; use model .*, prompt .* or index:DIR/,
    );
    await expectTillerError(
      async () => createStrategy("speculative:tokens=0"),
      "bad-draft-tokens",
      /must be an integer ≥ 1 or "auto", got "0"/,
    );
    await expectTillerError(
      () => runStrategy(createStrategy("speculative:draft=model"), ctx),
      "no-draft-model",
      /needs a draft model/,
    );
  });

  it("the registered strategy decodes (prompt drafter, N tokens) like greedy", async () => {
    const ctx = await context(small, PROMPTS[2], { maxTokens: 60 });
    const greedy = await runStrategy(plainDecoding({ temperature: 0 }), ctx);
    const result = await runStrategy(createStrategy("speculative:draft=prompt,tokens=3"), ctx);
    expect(result.text).toBe(greedy.text);
    expect(details(result).drafter).toBe("prompt");
  });
});

/**
 * A drafter that knows the target's greedy continuation of `prompt` and proposes it — always
 * accepted — optionally taking `delayMs` per call (right but too slow to pay).
 */
function oracle(prompt: readonly Token[], continuation: readonly Token[], delayMs = 0): Drafter {
  return {
    name: "oracle",
    async propose(requests: readonly DraftRequest[]): Promise<Draft[]> {
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      return requests.map((r) => {
        const done = r.context.length - prompt.length;
        return { tokens: continuation.slice(done, done + r.n) };
      });
    },
  };
}

/** A drafter that always proposes a token the target never writes. */
function constant(model: LanguageModel): Drafter {
  // Token 3 is a byte token (<0x00>) that a story model never writes.
  const token = 3;
  expect(model.isStopToken(token)).toBe(false);
  return {
    name: "constant",
    async propose(requests: readonly DraftRequest[]): Promise<Draft[]> {
      return requests.map((r) => ({ tokens: new Array(r.n).fill(token) }));
    },
  };
}
