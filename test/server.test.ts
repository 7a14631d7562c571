import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generate } from "../src/generate.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { keywordsReward } from "../src/rewards/keywords.js";
import type { RunningServer } from "../src/server/server.js";
import { loadTestModel } from "./helpers.js";
import { client, get, openAiError, parseSse, post, serve } from "./serverHarness.js";

let model: LlamaCppModel;
let server: RunningServer;
let openai: OpenAI;

const PROMPT = "Once upon a time, there was a little girl";
const PROFILES = new Map([
  [
    "keywords-strict",
    {
      name: "keywords-strict",
      description: "DeAL toward dog and ball",
      strategy: "deal:k=5,l=8",
      rewards: ["keywords:dog,ball"],
    },
  ],
]);
const coverage = (text: string) =>
  keywordsReward(["dog", "ball"]).score({ prompt: PROMPT, text, tokens: [], finished: true }) as number;

/** A request body with tiller's `alignment` field (not in the openai client's types). */
function withAlignment<T extends object>(body: T, alignment: Record<string, unknown>): T {
  return { ...body, alignment } as T;
}

beforeAll(async () => {
  model = await loadTestModel({ sequences: 8 });
  server = await serve(model, { profiles: PROFILES, maxConcurrent: 4, maxQueue: 8 });
  openai = client(server);
});

afterAll(async () => {
  await server?.close();
  await model?.dispose();
});

describe("tiller serve: OpenAI API with the openai client", () => {
  it("lists the served model and the profiles", async () => {
    const ids = [];
    for await (const entry of openai.models.list()) ids.push(entry.id);
    expect(ids).toEqual(["stories260K.gguf", "keywords-strict"]);
  });

  it("completes like the library does (greedy), with usage and a tiller block", async () => {
    const completion = await openai.completions.create({
      model: "stories260K",
      prompt: PROMPT,
      max_tokens: 32,
      temperature: 0,
    });
    const library = await generate(model, { prompt: PROMPT, maxTokens: 32 });
    expect(completion.choices[0].text).toBe(library.text);
    expect(completion.choices[0].finish_reason).toBe("length");
    expect(completion.usage).toEqual({
      prompt_tokens: (await model.tokenize(PROMPT)).length,
      completion_tokens: library.tokens.length,
      total_tokens: (await model.tokenize(PROMPT)).length + library.tokens.length,
    });
    const tiller = (completion as unknown as { tiller: Record<string, unknown> }).tiller;
    expect(tiller.strategy).toBe("greedy");
    expect(tiller.warnings).toEqual([]);
    expect(tiller.evaluated_tokens).toBeGreaterThan(0);
  });

  it("streams deltas that concatenate to the non-streamed text, then usage and [DONE]", async () => {
    const body = { model: "stories260K.gguf", prompt: PROMPT, max_tokens: 40, temperature: 0 };
    const whole = await openai.completions.create(body);
    const stream = await openai.completions.create({
      ...body,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let finish: string | null = null;
    let usage: unknown;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) {
        text += choice.text;
        finish = choice.finish_reason ?? finish;
      }
    }
    expect(chunks).toBeGreaterThan(5);
    expect(text).toBe(whole.choices[0].text);
    expect(finish).toBe("length");
    expect(usage).toEqual(whole.usage);
  });

  it("decodes toward the rewards in `alignment`: keyword coverage rises over the same request without it", async () => {
    const body = { model: "stories260K", prompt: PROMPT, max_tokens: 48, temperature: 0 };
    const plain = await openai.completions.create(body);
    const aligned = await openai.completions.create(
      // Raw DeAL (no floor) places both keywords within 48 tokens; the default waits for places where they fit.
      withAlignment(body, { rewards: ["keywords:dog,ball"], strategy: "deal:k=5,l=8,raw" }),
    );
    const tiller = (aligned as unknown as { tiller: { rewards: Record<string, number>; strategy: string } })
      .tiller;
    expect(tiller.strategy).toBe("deal:k=5,l=8,raw");
    expect(tiller.rewards.keywords).toBe(coverage(aligned.choices[0].text));
    expect(coverage(aligned.choices[0].text)).toBeGreaterThan(coverage(plain.choices[0].text));
  });

  it("selects a profile by model name; a request's alignment overrides it field by field", async () => {
    const byName = await openai.completions.create({
      model: "keywords-strict",
      prompt: PROMPT,
      max_tokens: 48,
    });
    const tiller = (
      byName as unknown as { tiller: { profile: string; strategy: string; rewards: Record<string, number> } }
    ).tiller;
    expect(tiller.profile).toBe("keywords-strict");
    expect(tiller.strategy).toBe("deal:k=5,l=8");
    expect(tiller.rewards.keywords).toBeGreaterThan(0);

    const overridden = await openai.completions.create(
      withAlignment(
        { model: "keywords-strict", prompt: PROMPT, max_tokens: 16, temperature: 0.8 },
        { strategy: "greedy" },
      ),
    );
    const effective = (
      overridden as unknown as {
        tiller: { alignment: { strategy: string; rewards: string[] }; warnings: string[] };
      }
    ).tiller;
    expect(effective.alignment.strategy).toBe("greedy");
    expect(effective.alignment.rewards).toEqual(["keywords:dog,ball"]);
    expect(effective.warnings).toContain('temperature is ignored: strategy "greedy" does not sample');
  });

  it("streams the search steps as `event: tiller.step` when alignment.trace is on", async () => {
    const reply = await post(server, "/v1/completions", {
      model: "stories260K",
      prompt: PROMPT,
      max_tokens: 12,
      stream: true,
      // Raw DeAL lists all k candidates (the default's floor and candidate slack drop unlikely ones).
      alignment: { rewards: "keywords:ball", strategy: "deal:k=3,l=4,raw", trace: true },
    });
    expect(reply.status).toBe(200);
    expect(reply.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const events = parseSse(reply.text);
    const steps = events.filter((e) => e.event === "tiller.step");
    expect(steps.length).toBeGreaterThan(0);
    const step = steps[0].data as { object: string; step: { candidates: unknown[] } };
    expect(step.object).toBe("tiller.step");
    expect(step.step.candidates.length).toBeGreaterThanOrEqual(3);
    expect(events.at(-1)?.data).toBe("[DONE]");
    const last = events.filter((e) => e.event === null && e.data !== "[DONE]").at(-1)?.data as {
      tiller: { choices: { trace?: unknown }[] };
    };
    expect(last.tiller.choices[0].trace).toBeDefined();
  });

  it("returns n sampled choices with distinct seeds, and per-token logprobs that sum to the choice's logprob", async () => {
    const completion = await openai.completions.create({
      model: "stories260K",
      prompt: PROMPT,
      max_tokens: 16,
      temperature: 1,
      seed: 5,
      n: 2,
      logprobs: 2,
    });
    expect(completion.choices.map((c) => c.index)).toEqual([0, 1]);
    expect(completion.choices[0].text).not.toBe(completion.choices[1].text);
    const tiller = (
      completion as unknown as { tiller: { choices: { generated_tokens: number; strategy_score: number }[] } }
    ).tiller;
    for (const [i, choice] of completion.choices.entries()) {
      const lp = choice.logprobs as NonNullable<typeof choice.logprobs>;
      expect(lp.tokens?.join("")).toBe(choice.text);
      expect(lp.token_logprobs?.length).toBe(tiller.choices[i].generated_tokens);
      for (const top of lp.top_logprobs ?? []) expect(Object.keys(top ?? {}).length).toBeLessThanOrEqual(2);
      const sum = (lp.token_logprobs ?? []).reduce((a, b) => a + (b ?? 0), 0);
      // Rollout logprobs and re-scored ones come from differently batched llama.cpp passes (~1e-3 apart).
      expect(sum).toBeCloseTo(tiller.choices[i].strategy_score, 1);
    }
  });

  it("cuts the text at a stop string (finish_reason stop)", async () => {
    const completion = await openai.completions.create({
      model: "stories260K",
      prompt: PROMPT,
      max_tokens: 64,
      temperature: 0,
      stop: ["Lily"],
    });
    expect(completion.choices[0].text).not.toContain("Lily");
    expect(completion.choices[0].finish_reason).toBe("stop");
  });
});

describe("tiller serve: every malformed request gets the right status and OpenAI's error shape", () => {
  const cases: {
    name: string;
    path?: string;
    body: unknown;
    headers?: Record<string, string>;
    status: number;
    param?: string;
    code?: string;
    message?: RegExp;
  }[] = [
    { name: "not JSON", body: "{nope", status: 400 },
    { name: "a JSON array", body: "[1,2]", status: 400, code: "invalid_body" },
    { name: "no model", body: { prompt: "x" }, status: 400, param: "model", message: /missing/ },
    { name: "no prompt", body: { model: "stories260K" }, status: 400, param: "prompt", message: /missing/ },
    {
      name: "max_tokens as a string",
      body: { model: "stories260K", prompt: "x", max_tokens: "8" },
      status: 400,
      param: "max_tokens",
    },
    {
      name: "negative temperature",
      body: { model: "stories260K", prompt: "x", temperature: -1 },
      status: 400,
      param: "temperature",
    },
    {
      name: "five stop strings",
      body: { model: "stories260K", prompt: "x", stop: ["a", "b", "c", "d", "e"] },
      status: 400,
      param: "stop",
    },
    {
      name: "an unknown model",
      body: { model: "gpt-9", prompt: "x" },
      status: 404,
      code: "model_not_found",
      param: "model",
    },
    {
      name: "bon:n=100000",
      body: {
        model: "stories260K",
        prompt: "x",
        alignment: { rewards: "sentiment", strategy: "bon:n=100000" },
      },
      status: 400,
      param: "alignment.strategy",
      code: "limit_exceeded",
      message: /samples/,
    },
    {
      name: "beam wider than the limit",
      body: { model: "stories260K", prompt: "x", alignment: { strategy: "beam:width=1000" } },
      status: 400,
      code: "limit_exceeded",
    },
    {
      name: "n over the choices limit",
      body: { model: "stories260K", prompt: "x", n: 17 },
      status: 400,
      param: "n",
      code: "limit_exceeded",
    },
    {
      name: "max_tokens over the context",
      body: { model: "stories260K", prompt: "x", max_tokens: 1_000_000 },
      status: 400,
      param: "max_tokens",
      code: "limit_exceeded",
    },
    {
      name: "a bad reward spec",
      body: { model: "stories260K", prompt: "x", alignment: { rewards: ["keywords:"] } },
      status: 400,
      param: "alignment.rewards",
    },
    {
      name: "an unknown strategy",
      body: { model: "stories260K", prompt: "x", alignment: { strategy: "teleport" } },
      status: 400,
      param: "alignment.strategy",
      code: "unknown_strategy",
    },
    {
      name: "an unknown alignment field",
      body: { model: "stories260K", prompt: "x", alignment: { strat: "deal" } },
      status: 400,
      param: "alignment.strat",
    },
    {
      name: "a lexicon file in a request",
      body: { model: "stories260K", prompt: "x", alignment: { rewards: ["lexicon:/etc/passwd"] } },
      status: 400,
      code: "file_access_refused",
    },
    {
      name: "provenance without an index",
      body: { model: "stories260K", prompt: "x", alignment: { provenance: true } },
      status: 400,
      code: "no_index",
    },
    {
      name: "best_of",
      body: { model: "stories260K", prompt: "x", best_of: 3 },
      status: 400,
      param: "best_of",
    },
    {
      name: "chat with no messages",
      path: "/v1/chat/completions",
      body: { model: "stories260K", messages: [] },
      status: 400,
      param: "messages",
    },
    {
      name: "chat with a bad role",
      path: "/v1/chat/completions",
      body: { model: "stories260K", messages: [{ role: "robot", content: "hi" }] },
      status: 400,
      param: "messages.0.role",
    },
    {
      name: "score with no pairs",
      path: "/v1/rewards/score",
      body: { reward: "sentiment", pairs: [] },
      status: 400,
      param: "pairs",
    },
    {
      name: "attribute without an index",
      path: "/v1/provenance/attribute",
      body: { text: "hello" },
      status: 400,
      code: "no_index",
    },
    {
      name: "text/plain",
      body: "hello",
      headers: { "content-type": "text/plain" },
      status: 400,
      code: "invalid_body",
    },
    {
      name: "an unsupported media type",
      body: "a=1",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      status: 415,
    },
  ];
  for (const c of cases)
    it(`${c.name} → ${c.status}`, async () => {
      const reply = await post(server, c.path ?? "/v1/completions", c.body, c.headers);
      expect(reply.status, reply.text).toBe(c.status);
      const error = openAiError(reply);
      if (c.param) expect(error.param).toBe(c.param);
      if (c.code) expect(error.code).toBe(c.code);
      if (c.message) expect(error.message).toMatch(c.message);
    });

  it("a prompt longer than the context → 400 naming both sizes", async () => {
    const reply = await post(server, "/v1/completions", {
      model: "stories260K",
      prompt: "the dog ran. ".repeat(800),
    });
    expect(reply.status).toBe(400);
    const error = openAiError(reply);
    expect(error.code).toBe("context_length_exceeded");
    expect(error.message).toMatch(new RegExp(`\\d+ tokens but the context holds ${model.contextSize}`));
  });

  it("a body over the size limit → 413", async () => {
    const reply = await post(server, "/v1/completions", {
      model: "stories260K",
      prompt: "a".repeat(2 * 1024 * 1024),
    });
    expect(reply.status).toBe(413);
    expect(openAiError(reply).code).toBe("request_too_large");
  });

  it("an unknown URL → 404", async () => {
    const reply = await get(server, "/v1/embeddings");
    expect(reply.status).toBe(404);
    expect(openAiError(reply).code).toBe("unknown_url");
  });

  it("the openai client raises the server's errors as its own typed errors", async () => {
    const failing = openai.completions.create({ model: "nope", prompt: "x" });
    await expect(failing).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(failing).rejects.toMatchObject({ status: 404, code: "model_not_found" });
  });

  it("unknown top-level fields and unsupported parameters are reported as warnings", async () => {
    const reply = await post(server, "/v1/completions", {
      model: "stories260K",
      prompt: PROMPT,
      max_tokens: 4,
      temperature: 0,
      presence_penalty: 1,
      frobnicate: true,
    });
    expect(reply.status).toBe(200);
    const warnings = (reply.body as { tiller: { warnings: string[] } }).tiller.warnings;
    expect(warnings).toContain('unknown field "frobnicate" ignored');
    expect(warnings).toContain("presence_penalty is not supported; ignored");
  });
});

describe("tiller serve: health and metrics", () => {
  it("GET /health says ok with the model", async () => {
    const reply = await get(server, "/health");
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({
      status: "ok",
      model: "stories260K.gguf",
      profiles: ["keywords-strict"],
    });
  });

  it("GET /metrics is Prometheus text with requests, queue depth, tokens/s, evaluated tokens and latency", async () => {
    await openai.completions.create({ model: "stories260K", prompt: PROMPT, max_tokens: 8, temperature: 0 });
    const reply = await get(server, "/metrics");
    expect(reply.status).toBe(200);
    expect(reply.headers.get("content-type")).toMatch(/^text\/plain/);
    for (const name of [
      "tiller_requests_total",
      "tiller_queue_depth",
      "tiller_tokens_per_second",
      "tiller_evaluated_tokens_total",
      "tiller_generated_tokens_total",
      "tiller_request_duration_seconds_bucket",
      "tiller_process_resident_memory_bytes",
    ])
      expect(reply.text).toContain(name);
    expect(reply.text).toMatch(/tiller_requests_total\{endpoint="\/v1\/completions",status="200"\} [1-9]/);
    expect(reply.text).toMatch(/tiller_tokens_per_second [1-9]/);
  });
});

describe("tiller serve: profiles are checked at startup", () => {
  it("a profile that could never decode stops the server from starting, naming the profile", async () => {
    const bad = (settings: Record<string, unknown>) =>
      serve(model, { profiles: new Map([["bad", { name: "bad", ...settings }]]) });
    await expect(bad({ strategy: "teleport" })).rejects.toThrow(/profile "bad": unknown strategy "teleport"/);
    await expect(bad({ rewards: ["keywords:"] })).rejects.toThrow(/profile "bad": .*keyword list is empty/);
    await expect(bad({ provenance: true })).rejects.toThrow(/profile "bad": .*--index/);
    await expect(bad({ strategy: "bon:n=1000", rewards: ["sentiment"] })).rejects.toThrow(/limit "samples"/);
  });
});
