/**
 * The one event stream every strategy produces: text events that add up to the final text
 * exactly, step events that are the trace's steps, warnings when a request is degraded, the
 * streaming library calls, and typed strategy details — with the real stories model.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { align, alignStream } from "../src/align.js";
import { createStrategy } from "../src/decoding/registry.js";
import { runStrategy } from "../src/decoding/run.js";
import { generate, generateStream } from "../src/generate.js";
import type { DecodeEvent, GenerationResult, Strategy } from "../src/index.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { promptTokens } from "../src/lm/prompt.js";
import type { LanguageModel, ModelCallOptions, ModelWarning } from "../src/lm/types.js";
import { keywordsReward } from "../src/rewards/index.js";
import { loadTestModel } from "./helpers.js";

let model: LlamaCppModel;
beforeAll(async () => {
  model = await loadTestModel();
});
afterAll(async () => {
  await model?.dispose();
});

const PROMPTS = ["Once upon a time", "One day, a boy", "Lily and Tom"];
const noVeto = {
  name: "none",
  assess: (_c: readonly number[], cands: readonly number[]) => cands.map(() => 0),
};

/** Runs a strategy with a listener and returns its events and result. */
async function streamed(
  strategy: Strategy,
  prompt: string,
  options: { maxTokens?: number; stopStrings?: string[]; trace?: boolean; model?: LanguageModel } = {},
): Promise<{ events: DecodeEvent[]; text: string; result: GenerationResult }> {
  const m = options.model ?? model;
  const events: DecodeEvent[] = [];
  const result = await runStrategy(strategy, {
    model: m,
    prompt,
    promptTokens: await promptTokens(m, prompt),
    maxTokens: options.maxTokens ?? 40,
    stopStrings: options.stopStrings,
    trace: options.trace,
    emit: (event) => events.push(event),
  });
  const text = events.map((e) => (e.type === "text" ? e.text : "")).join("");
  return { events, text, result };
}

/**
 * A top-k-capped backend (like llama-server's 20 logprobs), wrapping the real model: it clamps
 * every top-k request to `cap` and reports it through `onWarning`. `declared` is the `maxTopK`
 * it states in its capabilities (the cap, or more when it under-declares).
 */
function capped(inner: LlamaCppModel, cap: number, declared = cap): LanguageModel {
  const clamp = (topK: number | undefined, options: ModelCallOptions | undefined) => {
    if (topK === undefined || topK <= cap) return topK;
    options?.onWarning?.({ code: "top-k-clamped", message: `top-k ${topK} clamped to ${cap}` });
    return cap;
  };
  return {
    id: `${inner.id} (top-k ≤ ${cap})`,
    vocabularySize: inner.vocabularySize,
    capabilities: { ...inner.capabilities, maxTopK: declared },
    contextSize: inner.contextSize,
    bosToken: inner.bosToken,
    stopTokens: inner.stopTokens,
    get usage() {
      return inner.usage;
    },
    tokenize: (text, options) => inner.tokenize(text, options),
    chatTokens: (messages) => inner.chatTokens(messages),
    detokenize: (tokens, options) => inner.detokenize(tokens, options),
    isStopToken: (token) => inner.isStopToken(token),
    nextTokenDistributions: (prefixes, options) =>
      inner.nextTokenDistributions(prefixes, { ...options, topK: clamp(options.topK, options) ?? 1 }),
    scoreContinuations: (requests, options = {}) =>
      inner.scoreContinuations(requests, {
        ...options,
        topK: clamp(options.topK, options),
        nextTopK: clamp(options.nextTopK, options),
      }),
    rollouts: (requests, options) => inner.rollouts(requests, options),
    dispose: async () => {},
  };
}

describe("text events add up to the final text", () => {
  const reward = keywordsReward(["tree", "ball"]);
  const specs = [
    "greedy",
    "sample:seed=3",
    "beam:width=3",
    "deal",
    "deal:b=2,k=3,l=4",
    "deal:paper",
    "bon:n=3",
    "won:n=3",
  ];

  it("for every strategy, several prompts, with and without stop strings", async () => {
    for (const spec of specs)
      for (const prompt of PROMPTS)
        for (const stopStrings of [undefined, ["park", "!"], ["big b", "girl"]]) {
          const label = `${spec} / ${prompt} / ${stopStrings}`;
          const { events, text, result } = await streamed(createStrategy(spec, { reward }), prompt, {
            stopStrings,
          });
          expect(text, label).toBe(result.text);
          expect(events.at(-1)?.type, label).toBe("result");
          for (const stop of stopStrings ?? []) expect(result.text, label).not.toContain(stop);
        }
  });

  it("beam search streams the prefix its hypotheses share while it searches", async () => {
    const { events, text, result } = await streamed(createStrategy("beam:width=2"), "Once upon a time", {
      maxTokens: 48,
    });
    expect(text).toBe(result.text);
    // Text arrives between search steps (shared by every hypothesis), not only at the end.
    const lastStep = events.findLastIndex((e) => e.type === "step");
    const textsDuringSearch = events.slice(0, lastStep).filter((e) => e.type === "text");
    expect(textsDuringSearch.length).toBeGreaterThan(2);
  });

  it("DeAL streams what it commits step by step", async () => {
    const { events, text, result } = await streamed(
      createStrategy("deal:saturation=false", { reward: keywordsReward(["tree"]) }),
      "One day, a boy",
      { maxTokens: 48 },
    );
    expect(text).toBe(result.text);
    const lastStep = events.findLastIndex((e) => e.type === "step");
    const textsDuringSearch = events.slice(0, lastStep).filter((e) => e.type === "text");
    expect(textsDuringSearch.length).toBeGreaterThan(5);
  });

  it("vetoed (stepped) decoding streams token by token", async () => {
    for (const prompt of PROMPTS) {
      const strategy = createStrategy("greedy", { vetoes: [noVeto] });
      const { text, result } = await streamed(strategy, prompt, { stopStrings: ["."] });
      expect(text, prompt).toBe(result.text);
      const plain = await generate(model, { prompt, maxTokens: 40, stopStrings: ["."] });
      expect(result.text, prompt).toBe(plain.text);
    }
  });
});

describe("step events", () => {
  it("are the trace's steps, one event per step, for every strategy", async () => {
    const reward = keywordsReward(["ball"]);
    for (const spec of ["greedy", "sample:seed=1", "beam:width=2", "bon:n=3", "deal:k=3,l=3", "deal:b=2"]) {
      for (const vetoes of [[], [noVeto]]) {
        const { events, result } = await streamed(
          createStrategy(spec, { reward, vetoes }),
          "Once upon a time",
          {
            maxTokens: 16,
            trace: true,
          },
        );
        const steps = events.flatMap((e) => (e.type === "step" ? [e.step] : []));
        expect(steps.length, spec).toBeGreaterThan(0);
        expect(steps, spec).toEqual(result.trace?.steps);
        // The same objects, not copies.
        expect(steps[0], spec).toBe(result.trace?.steps[0]);
      }
    }
  });

  it("are emitted to a listener even without a trace, and cost nothing without one", async () => {
    const strategy = createStrategy("beam:width=2");
    const { events, result } = await streamed(strategy, "Once upon a time", { maxTokens: 12 });
    expect(result.trace).toBeUndefined();
    expect(events.filter((e) => e.type === "step").length).toBeGreaterThan(0);
  });
});

describe("warnings", () => {
  it("a strategy that wants more candidates than a capped backend gives warns once, and still decodes", async () => {
    const small = capped(model, 20);
    const reward = keywordsReward(["tree"]);
    for (const spec of ["beam:width=25", "deal:k=25,l=4"]) {
      const { events, result } = await streamed(createStrategy(spec, { reward }), "One day, a boy", {
        model: small,
        maxTokens: 12,
      });
      const warnings = events.flatMap((e) => (e.type === "warning" ? [e.warning] : []));
      expect(
        warnings.map((w) => w.code),
        spec,
      ).toEqual(["top-k-clamped"]);
      expect(warnings[0].message, spec).toMatch(/25.*20/);
      expect(result.warnings, spec).toEqual(warnings);
      expect(result.tokens.length, spec).toBeGreaterThan(0);
    }
  });

  it("warnings the backend reports through onWarning reach the stream and the result", async () => {
    // This backend claims the whole vocabulary but clamps at 20: its own warning is the only signal.
    const lying = capped(model, 20, Number.POSITIVE_INFINITY);
    const collected: ModelWarning[] = [];
    const result = await generate(lying, {
      prompt: "Once upon a time",
      maxTokens: 8,
      vetoes: [noVeto], // stepped decoding asks for a pool of 32 candidates
      onEvent: (event) => {
        if (event.type === "warning") collected.push(event.warning);
      },
    });
    expect(collected).toEqual([{ code: "top-k-clamped", message: "top-k 32 clamped to 20" }]);
    expect(result.warnings).toEqual(collected);
  });

  it("DeAL's lexical proposals are scored exactly on a capped backend: same output, no warning", async () => {
    const reward = keywordsReward(["tree", "elephant"]);
    for (const prompt of ["One day, a boy", "It was a sunny day."]) {
      const full = await streamed(createStrategy("deal", { reward }), prompt, { maxTokens: 48 });
      const small = await streamed(createStrategy("deal", { reward }), prompt, {
        model: capped(model, 20),
        maxTokens: 48,
      });
      expect(small.result.text, prompt).toBe(full.result.text);
      expect(small.result.warnings, prompt).toEqual([]);
      expect(full.result.details).toMatchObject({ strategy: "deal" });
      if (full.result.details?.strategy === "deal")
        expect(full.result.details.lexicalCommits, prompt).toBeGreaterThan(0);
    }
  });
});

describe("generateStream and alignStream", () => {
  it("yield the events, ending with the result; the text adds up", async () => {
    const events: DecodeEvent[] = [];
    for await (const event of generateStream(model, {
      prompt: "Once upon a time",
      maxTokens: 24,
      strategy: "beam",
    }))
      events.push(event);
    const last = events.at(-1);
    expect(last?.type).toBe("result");
    const text = events.map((e) => (e.type === "text" ? e.text : "")).join("");
    if (last?.type === "result") expect(text).toBe(last.result.text);

    const aligned: string[] = [];
    let rewards: Record<string, number> | undefined;
    for await (const event of alignStream(model, {
      prompt: "Once upon a time",
      reward: keywordsReward(["ball"]),
      strategy: "deal:k=3,l=4",
      maxTokens: 24,
    })) {
      if (event.type === "text") aligned.push(event.text);
      if (event.type === "result") rewards = event.result.rewards;
    }
    expect(Object.keys(rewards ?? {})).toEqual(["keywords"]);
    const direct = await align(model, {
      prompt: "Once upon a time",
      reward: keywordsReward(["ball"]),
      strategy: "deal:k=3,l=4",
      maxTokens: 24,
    });
    expect(aligned.join("")).toBe(direct.text);
  });

  it("reject the iteration on an error", async () => {
    const iterate = async () => {
      for await (const _event of generateStream(model, { prompt: "x", maxTokens: 0 })) {
        // never reached
      }
    };
    await expect(iterate()).rejects.toThrow(/maxTokens/);
    const unknown = async () => {
      for await (const _event of alignStream(model, {
        prompt: "x",
        reward: keywordsReward(["a"]),
        strategy: "nope",
      })) {
        // never reached
      }
    };
    await expect(unknown()).rejects.toThrow(/unknown strategy "nope"/);
  });

  it("leaving the loop early aborts the decode and leaves the model usable", async () => {
    let texts = 0;
    const before = model.usage.generatedTokens;
    for await (const event of generateStream(model, { prompt: "Once upon a time", maxTokens: 200 })) {
      if (event.type === "text" && ++texts === 3) break;
    }
    expect(texts).toBe(3);
    // The rollout stopped soon after the third token instead of running to 200.
    expect(model.usage.generatedTokens - before).toBeLessThan(20);
    const after = await generate(model, { prompt: "Once upon a time", maxTokens: 8 });
    expect(after.tokens.length).toBe(8);
  });
});

describe("typed strategy details", () => {
  it("Best-of-N reports N, the chosen candidate and every reward", async () => {
    const { result } = await streamed(
      createStrategy("bon:n=4", { reward: keywordsReward(["ball"]) }),
      "Once upon a time",
    );
    const details = result.details;
    expect(details?.strategy).toBe("bon");
    if (details?.strategy !== "bon") return;
    expect(details.n).toBe(4);
    expect(details.rewards).toHaveLength(4);
    expect(details.rewards[details.chosen]).toBe(Math.max(...details.rewards));
    expect(result.score).toBe(details.rewards[details.chosen]);
  });

  it("DeAL reports its steps and where the reward saturated", async () => {
    const { result } = await streamed(
      createStrategy("deal", { reward: keywordsReward(["girl"]) }),
      "Once upon a time",
      { maxTokens: 48, trace: true },
    );
    const details = result.details;
    expect(details?.strategy).toBe("deal");
    if (details?.strategy !== "deal") return;
    expect(details.saturatedAt).toBeGreaterThan(0);
    // Every search step plus the saturation note.
    expect(result.trace?.steps).toHaveLength(details.steps + 1);
  });
});
