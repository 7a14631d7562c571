/**
 * Issue 9, class 5: one library contract. Every public entry point checks its options with a zod
 * schema (a bad option is a TillerError naming it, never a bare TypeError); every strategy rejects
 * an abort the same way (a TillerError "aborted" carrying the partial result), also when a reward
 * never settles; the model-derived limits hold in the library, not only in the CLI.
 */
import * as fs from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { align, alignStream } from "../src/align.js";
import { ctrlReward } from "../src/calibration/ctrl.js";
import { estimateWinRates } from "../src/calibration/winrateRun.js";
import { DecodeAbortedError } from "../src/decoding/aborted.js";
import { loadSwapMap } from "../src/decoding/ambedkar/builtinSwaps.js";
import { beamSearch } from "../src/decoding/beam.js";
import { runStrategy } from "../src/decoding/run.js";
import { isTillerError, type TillerError } from "../src/errors.js";
import { runIdentityEval } from "../src/eval/identityEval.js";
import { lexiconFromSwapMap } from "../src/eval/identityMetrics.js";
import { runEval } from "../src/eval/runEval.js";
import { generate, generateStream } from "../src/generate.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { loadModel, rememberThreads } from "../src/lm/load.js";
import { openModel } from "../src/lm/open.js";
import { buildIndex } from "../src/provenance/build-index.js";
import { keywordsReward } from "../src/rewards/keywords.js";
import type { Reward } from "../src/rewards/types.js";
import { loadTestModel, testModelPath } from "./helpers.js";

let model: LlamaCppModel;
beforeAll(async () => {
  model = await loadTestModel();
});
afterAll(async () => {
  await model?.dispose();
});

const reward = keywordsReward(["dog"]);
const prompt = "Once upon a time";

/** The rejection of `run`, which must be a TillerError (a bare TypeError fails here). */
async function rejection(run: () => Promise<unknown>): Promise<TillerError> {
  let caught: unknown;
  try {
    await run();
  } catch (error) {
    caught = error;
  }
  if (!isTillerError(caught)) throw new Error(`expected a TillerError, got ${String(caught)}`);
  return caught;
}

describe("options are validated by one schema per entry point", () => {
  const bad: [string, Record<string, unknown>, RegExp][] = [
    ["maxTokens NaN", { maxTokens: Number.NaN }, /maxTokens/],
    ["maxTokens -1", { maxTokens: -1 }, /maxTokens/],
    ["maxTokens 2.5", { maxTokens: 2.5 }, /maxTokens/],
    ['maxTokens "8"', { maxTokens: "8" }, /maxTokens/],
    ['stopStrings [""]', { stopStrings: [""] }, /stopStrings\.0/],
    ["stopStrings a string", { stopStrings: "." }, /stopStrings/],
    ["signal not a signal", { signal: {} }, /signal/],
    ["onEvent not a function", { onEvent: 1 }, /onEvent/],
    ["chat unknown", { chat: "maybe" }, /chat/],
    ["a misspelt option", { max_tokens: 8 }, /max_tokens/],
  ];

  it("align() rejects each bad option with a TillerError naming it, before decoding", async () => {
    for (const [what, extra, names] of bad) {
      const error = await rejection(() =>
        align(model, { prompt, reward, strategy: "greedy", ...extra } as never),
      );
      expect(error.code, what).toBe("bad-options");
      expect(error.message, what).toMatch(/^invalid align options: /);
      expect(error.message, what).toMatch(names);
    }
    for (const [what, extra, names] of [
      ["sampling.topP 0", { sampling: { topP: 0 } }, /sampling\.topP/],
      ["reward missing", { reward: undefined }, /reward/],
      ["reward without score", { reward: { name: "x" } }, /reward/],
      ["draftTokens 0", { draftTokens: 0 }, /draftTokens/],
    ] as const) {
      const error = await rejection(() =>
        align(model, { prompt, reward, strategy: "greedy", ...extra } as never),
      );
      expect(error.code, what).toBe("bad-options");
      expect(error.message, what).toMatch(names);
    }
  });

  it("generate() and the streams share the schema", async () => {
    for (const [what, extra, names] of bad) {
      const error = await rejection(() => generate(model, { prompt, ...extra } as never));
      expect(error.code, what).toBe("bad-options");
      expect(error.message, what).toMatch(names);
    }
    const streamed = await rejection(async () => {
      for await (const _ of generateStream(model, { prompt, maxTokens: Number.NaN })) {
        // never reached
      }
    });
    expect(streamed.message).toMatch(/maxTokens/);
    const aligned = await rejection(async () => {
      for await (const _ of alignStream(model, { prompt, reward, strategy: "greedy", stopStrings: [""] })) {
        // never reached
      }
    });
    expect(aligned.message).toMatch(/stopStrings/);
  });

  it("misuse is a TillerError with a code, not a bare TypeError", async () => {
    expect((await rejection(() => (align as (m: unknown) => Promise<unknown>)(model))).code).toBe(
      "bad-options",
    );
    expect(
      (await rejection(() => align(undefined as never, { prompt, reward, strategy: "greedy" }))).code,
    ).toBe("bad-model");
    expect((await rejection(() => generate({} as never, { prompt }))).code).toBe("bad-model");
    expect((await rejection(() => align(model, { prompt: "", reward, strategy: "greedy" }))).code).toBe(
      "empty-prompt",
    );
    expect((await rejection(() => loadModel(42 as never))).code).toBe("bad-options");
    expect((await rejection(() => loadModel(testModelPath(), { gpu: "yes" } as never))).message).toMatch(
      /gpu/,
    );
    expect((await rejection(() => openModel(42 as never))).code).toBe("bad-options");
    expect((await rejection(() => openModel(testModelPath(), { sequences: 0 }))).message).toMatch(
      /sequences/,
    );
    const task = { id: "a", prompt, keywords: ["dog"], maxTokens: 4 };
    expect(
      (await rejection(() => runEval(model, [task], ["greedy"], { cache: "hot" } as never))).message,
    ).toMatch(/cache/);
    expect((await rejection(() => runEval(model, [{ ...task, maxTokens: -1 }], ["greedy"]))).message).toMatch(
      /task 1: maxTokens/,
    );
    expect((await rejection(() => runEval(model, "tasks" as never, ["greedy"]))).code).toBe("bad-options");
    const winrate = { tasks: [task], reward, policy: "sample", reference: { m: 4 } };
    expect((await rejection(() => estimateWinRates(model, { ...winrate, n: Number.NaN }))).message).toMatch(
      /\bn\b/,
    );
    expect(
      (await rejection(() => estimateWinRates(model, { ...winrate, reference: { m: 0 } }))).message,
    ).toMatch(/reference\.m/);
  });

  it("buildIndex, ctrlReward and runIdentityEval check their arguments too", async () => {
    const out = path.join(fs.mkdtempSync(path.join(tmpdir(), "tiller-contract-")), "idx");
    expect((await rejection(() => buildIndex(model, "corpus.txt" as never, out))).message).toMatch(/files/);
    expect(
      (await rejection(() => buildIndex(model, [], out, { lowercase: "yes" } as never))).message,
    ).toMatch(/lowercase/);
    expect((await rejection(() => buildIndex(42 as never, [], out))).code).toBe("bad-model");
    expect(fs.existsSync(out)).toBe(false);
    expect((await rejection(async () => ctrlReward({ reward: 1, reference: {} } as never))).message).toMatch(
      /reward/,
    );
    expect((await rejection(async () => ctrlReward({ reward } as never))).message).toMatch(/reference/);
    const lexicon = lexiconFromSwapMap(loadSwapMap("gender"));
    const task = { id: "m1", kind: "masked" as const, prompt, maxTokens: 4 };
    expect((await rejection(() => runIdentityEval(model, [task], ["greedy"], {} as never))).message).toMatch(
      /lexicon/,
    );
    expect(
      (await rejection(() => runIdentityEval(model, [task], ["greedy"], { lexicon, verifier: 3 } as never)))
        .message,
    ).toMatch(/verifier/);
    expect((await rejection(() => runIdentityEval(model, [task], [], { lexicon }))).code).toBe("bad-options");
  });

  it("valid options still run (controls)", async () => {
    const result = await align(model, {
      prompt,
      reward,
      strategy: "greedy",
      maxTokens: 4,
      stopStrings: ["\n\n"],
    });
    expect(result.tokens.length).toBeGreaterThan(0);
    expect((await generate(model, { prompt, maxTokens: 4 })).tokens.length).toBeGreaterThan(0);
  });
});

/** Every strategy, with what it needs to run on the test model. */
const STRATEGIES = [
  "greedy",
  "sample",
  "beam:width=2",
  "deal:k=2,l=2",
  "bon:n=3",
  "won:n=3",
  "speculative:draft=prompt",
  "ambedkar",
];

function expectAborted(error: unknown, what: string): DecodeAbortedError {
  expect(error, what).toBeInstanceOf(DecodeAbortedError);
  const aborted = error as DecodeAbortedError;
  expect(aborted.code, what).toBe("aborted");
  expect(typeof aborted.partial.text, what).toBe("string");
  expect(Array.isArray(aborted.partial.tokens), what).toBe(true);
  return aborted;
}

describe("one abort behaviour for every strategy", () => {
  it("a pre-aborted signal rejects with TillerError 'aborted' and an empty partial result", async () => {
    for (const strategy of STRATEGIES) {
      const controller = new AbortController();
      controller.abort();
      const error = await align(model, { prompt, reward, strategy, signal: controller.signal }).catch(
        (e) => e,
      );
      const aborted = expectAborted(error, strategy);
      expect(aborted.partial).toEqual({ text: "", tokens: [] });
    }
    const controller = new AbortController();
    controller.abort();
    expectAborted(await generate(model, { prompt, signal: controller.signal }).catch((e) => e), "generate");
  });

  it("an abort during the decode rejects the same way, carrying the text decoded so far", async () => {
    for (const strategy of STRATEGIES) {
      const controller = new AbortController();
      let streamed = "";
      // Abort on the first event (committed text or a search step), or soon after the start.
      const timer = setTimeout(() => controller.abort(), 50);
      const error = await align(model, {
        prompt,
        reward,
        strategy,
        maxTokens: 400,
        signal: controller.signal,
        onEvent: (event) => {
          if (event.type === "text") streamed += event.text;
          if (event.type === "text" || event.type === "step") controller.abort();
        },
      }).catch((e) => e);
      clearTimeout(timer);
      const aborted = expectAborted(error, strategy);
      // The partial text extends what was streamed before the abort.
      expect(aborted.partial.text.startsWith(streamed), strategy).toBe(true);
      if (aborted.partial.text !== "") expect(aborted.partial.tokens.length, strategy).toBeGreaterThan(0);
    }
  }, 60_000);

  it("greedy's partial result holds the tokens it generated", async () => {
    const controller = new AbortController();
    let texts = 0;
    const error = await generate(model, {
      prompt,
      maxTokens: 400,
      signal: controller.signal,
      onEvent: (event) => {
        if (event.type === "text" && ++texts === 5) controller.abort();
      },
    }).catch((e) => e);
    const aborted = expectAborted(error, "greedy");
    expect(aborted.partial.tokens.length).toBeGreaterThanOrEqual(4);
    expect(model.detokenize(aborted.partial.tokens)).toContain(aborted.partial.text.trim().slice(0, 10));
  });

  it("a reward whose promise never settles cannot hang align(): abort is honoured within a second", async () => {
    const never: Reward = {
      name: "never",
      description: "never settles",
      score: () => new Promise<number>(() => {}),
    };
    for (const strategy of ["deal:k=2,l=2", "bon:n=2", "greedy"]) {
      const controller = new AbortController();
      const running = align(model, {
        prompt,
        reward: never,
        strategy,
        maxTokens: 8,
        signal: controller.signal,
      });
      await new Promise((r) => setTimeout(r, 200));
      const abortedAt = performance.now();
      controller.abort();
      const error = await running.catch((e) => e);
      expect(performance.now() - abortedAt, strategy).toBeLessThan(1000);
      expectAborted(error, strategy);
    }
  });
});

describe("limits derived from the model and machine hold in the library", () => {
  it("beam width and DeAL's k above the vocabulary are refused", async () => {
    const V = model.vocabularySize;
    const over = [
      () => generate(model, { prompt, strategy: "beam", beamWidth: V + 1 }),
      () => align(model, { prompt, reward, strategy: `deal:k=${V + 1}` }),
      () => align(model, { prompt, reward, strategy: `beam:width=${V + 1}` }),
      () =>
        runStrategy(beamSearch({ width: V + 1 }), {
          model,
          prompt,
          promptTokens: [1],
          maxTokens: 4,
        }),
    ];
    for (const run of over) {
      const error = await rejection(run);
      expect(error.code).toBe("over-limit");
      expect(error.message).toMatch(new RegExp(`exceeds the vocabulary .*use at most ${V}`));
    }
  });

  it("loadModel refuses more threads than cores, naming the limit", async () => {
    const cores = availableParallelism();
    const error = await rejection(() => loadModel(testModelPath(), { gpu: false, threads: cores + 1 }));
    expect(error.code).toBe("over-limit");
    expect(error.message).toMatch(new RegExp(`use at most ${cores}`));
    expect((await rejection(() => loadModel(testModelPath(), { threads: 0 }))).code).toBe("bad-options");
  });
});

describe("the threads cache", () => {
  it("is replaced by rename (atomically), never rewritten in place", async () => {
    const cache = fs.mkdtempSync(path.join(tmpdir(), "tiller-threads-"));
    const before = process.env.TILLER_CACHE_DIR;
    process.env.TILLER_CACHE_DIR = cache;
    // A second name for the old file: an in-place write would change it too, a rename does not.
    const old = path.join(cache, "old.json");
    fs.writeFileSync(old, "{}");
    fs.linkSync(old, path.join(cache, "threads.json"));
    try {
      rememberThreads("model.gguf:1:2:3", 1);
      rememberThreads("other.gguf:1:2:3", 2);
      const file = path.join(cache, "threads.json");
      const entries = JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, number>;
      expect(Object.values(entries).every((n) => Number.isInteger(n) && n >= 1)).toBe(true);
      expect(entries).toEqual({ "model.gguf:1:2:3": 1, "other.gguf:1:2:3": 2 });
      expect(fs.readFileSync(old, "utf8")).toBe("{}");
      expect(fs.readdirSync(cache).sort()).toEqual(["old.json", "threads.json"]);
    } finally {
      if (before === undefined) delete process.env.TILLER_CACHE_DIR;
      else process.env.TILLER_CACHE_DIR = before;
      fs.rmSync(cache, { recursive: true, force: true });
    }
  });
});
