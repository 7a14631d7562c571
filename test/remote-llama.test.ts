/**
 * The HTTP backend against a real llama-server (../shared/bin/llama-server, the llama.cpp build
 * node-llama-cpp bundles) serving the stories model, compared with the in-process backend.
 *
 * The server runs with f32 KV cache and no flash attention, and logprobs are compared with an
 * in-process LlamaCppModel with the same settings (`loadExactModel`): the two then agree to
 * ~1e-5, so 1e-3 separates a transport mistake from float rounding. Texts are also compared with
 * the default in-process model (`loadTestModel`), whose f16 KV cache rounds logprobs ~1e-3 apart.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isTillerError } from "../src/errors.js";
import { RemoteModel } from "../src/lm/http/remoteModel.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import type { ModelWarning, Token } from "../src/lm/types.js";
import { loadTestModel } from "./helpers.js";
import { loadExactModel, type RunningServer, startLlamaServer, twinModelPath } from "./llamaServer.js";

const PROMPTS = ["Once upon a time", "Tom and Sue went to the park", "The little dog was"];

let server: RunningServer;
let remote: RemoteModel;
/** The default in-process model (f16 KV cache). */
let local: LlamaCppModel;
/** The in-process model with the server's numerics (f32 KV cache, no flash attention). */
let exact: LlamaCppModel;

beforeAll(async () => {
  [server, local, exact] = await Promise.all([
    startLlamaServer({ slots: 4 }),
    loadTestModel(),
    loadExactModel(),
  ]);
  remote = await RemoteModel.open([server.url]);
});

afterAll(async () => {
  await remote?.dispose();
  await local?.dispose();
  await exact?.dispose();
  await server?.stop();
});

/** In-process logprob of `token` after `prefix` (full distribution). */
async function exactLogprob(prefix: readonly Token[], token: Token): Promise<number> {
  const [distribution] = await exact.nextTokenDistributions([prefix], { topK: exact.vocabularySize });
  const found = distribution.find((entry) => entry.token === token);
  if (!found) throw new Error(`token ${token} missing from the full distribution`);
  return found.logprob;
}

/** Element-wise |a - b| < tolerance (1e-3: what float rounding leaves between the two backends). */
/** The highest id whose piece, after a word, renders as `piece` (a merged piece, not a byte token). */
function idOf(piece: string): Token {
  const word = exact.detokenize([291]);
  for (let id = exact.vocabularySize - 1; id >= 0; id--)
    if (exact.detokenize([291, id]) === word + piece) return id;
  throw new Error(`no token renders as ${JSON.stringify(piece)}`);
}

function expectClose(actual: readonly number[], expected: readonly number[], tolerance = 1e-3): void {
  expect(actual).toHaveLength(expected.length);
  const worst = Math.max(0, ...actual.map((value, i) => Math.abs(value - expected[i])));
  expect(worst).toBeLessThan(tolerance);
}

describe("llama-server dialect", () => {
  it("describes the model like the in-process backend", async () => {
    expect(remote.dialect).toBe("llama-server");
    expect(remote.id).toBe("stories260K.gguf");
    expect(remote.vocabularySize).toBe(local.vocabularySize);
    expect(remote.bosToken).toBe(local.bosToken);
    expect([...remote.stopTokens].sort()).toEqual([...local.stopTokens].sort());
    expect(remote.capabilities).toMatchObject({
      maxTopK: 512,
      exactDistributions: true,
      singlePassScoring: false,
      prefixCache: true,
      // The stories model has no template; llama-server's chatml fallback does not count.
      chatTemplate: false,
    });
  });

  it("tokenizes and detokenizes exactly as in-process, every token included", async () => {
    for (const text of [...PROMPTS, " two  spaces\n\nand lines.", "Ünïcödé → 東京 🙂"]) {
      const tokens = await remote.tokenize(text);
      expect(tokens).toEqual(await local.tokenize(text));
      expect(remote.detokenize(tokens)).toBe(local.detokenize(tokens));
      expect(await remote.tokenize(text, { addBos: false })).toEqual(
        await local.tokenize(text, { addBos: false }),
      );
    }
    for (let token = 0; token < remote.vocabularySize; token++) {
      expect(remote.detokenize([token])).toBe(local.detokenize([token]));
      expect(remote.detokenize([token], { context: [1, 403] })).toBe(
        local.detokenize([token], { context: [1, 403] }),
      );
    }
  });

  it("nextTokenDistributions: top-k logprobs agree with in-process within 1e-3", async () => {
    // Prefixes evaluated as prompts on both sides (the first model calls of this file's servers).
    const prefixes: Token[][] = [];
    for (const prompt of PROMPTS) {
      const base = await exact.tokenize(prompt);
      const [greedy] = await exact.rollouts([{ prefix: base }], { maxTokens: 40 });
      for (const n of [0, 5, 13, 27, 40]) prefixes.push([...base, ...greedy.tokens.slice(0, n)]);
    }
    prefixes.push([1, 200, 17, 300, 45]); // off-distribution tokens
    await exact.clearCache();
    const here = await exact.nextTokenDistributions(prefixes, { topK: 10 });
    const there = await remote.nextTokenDistributions(prefixes, { topK: 10 });
    let worst = 0;
    there.forEach((distribution, i) => {
      expect(distribution).toHaveLength(10);
      const remoteBy = new Map(distribution.map((e) => [e.token, e.logprob]));
      for (const entry of here[i]) {
        const logprob = remoteBy.get(entry.token);
        expect(logprob, `prefix ${i}: token ${entry.token} missing from the remote top-10`).toBeDefined();
        worst = Math.max(worst, Math.abs((logprob as number) - entry.logprob));
      }
    });
    expect(worst).toBeLessThan(1e-3);
    // The default in-process model (f16 KV cache) ranks the same first tokens.
    const defaults = await local.nextTokenDistributions(prefixes, { topK: 3 });
    expect(defaults.map((d) => d[0].token)).toEqual(there.map((d) => d[0].token));
    // The whole vocabulary is available (llama-server's n_probs has no cap), without a warning.
    const warnings: ModelWarning[] = [];
    const [full] = await remote.nextTokenDistributions([prefixes[0]], {
      topK: 5000,
      onWarning: (w) => warnings.push(w),
    });
    expect(full).toHaveLength(512);
    expect(warnings).toEqual([]);
    expect(Math.abs(Math.log(full.reduce((sum, e) => sum + Math.exp(e.logprob), 0)))).toBeLessThan(1e-4);
  });

  it("greedy rollouts reproduce the in-process greedy text and logprobs", async () => {
    const prefixes = await Promise.all(PROMPTS.map((p) => local.tokenize(p)));
    const requests = prefixes.map((prefix) => ({ prefix }));
    const there = await remote.rollouts(requests, { maxTokens: 96 });
    const defaults = await local.rollouts(requests, { maxTokens: 96 });
    const exacts = await exact.rollouts(requests, { maxTokens: 96 });
    there.forEach((rollout, i) => {
      expect(rollout.tokens).toEqual(defaults[i].tokens);
      expect(rollout.tokens).toEqual(exacts[i].tokens);
      expect(rollout.stopReason).toBe(defaults[i].stopReason);
      expect(remote.detokenize(rollout.tokens, { context: prefixes[i] })).toBe(
        local.detokenize(defaults[i].tokens, { context: prefixes[i] }),
      );
      expectClose(rollout.logprobs, exacts[i].logprobs);
    });
    expect(remote.detokenize(there[0].tokens, { context: prefixes[0] })).toMatch(
      /^, there was a little girl named Lily/,
    );
  });

  it("stops on stop strings and stop tokens on the same token as in-process, and streams tokens", async () => {
    const prefix = await local.tokenize("Once upon a time");
    const options = { maxTokens: 200, stopStrings: ["park"] };
    const [here] = await local.rollouts([{ prefix }], options);
    const streamed: Token[] = [];
    const [there] = await remote.rollouts([{ prefix }], {
      ...options,
      onToken: (_i, token) => streamed.push(token),
    });
    expect(there.tokens).toEqual(here.tokens);
    expect(there.stopReason).toBe("stop-string");
    expect(streamed).toEqual(there.tokens);
    // A story ends by emitting BOS, which llama-server does not stop on: tiller does.
    const [long] = await remote.rollouts([{ prefix }], { maxTokens: 600 });
    const [longHere] = await local.rollouts([{ prefix }], { maxTokens: 600 });
    expect(long.tokens).toEqual(longHere.tokens);
    expect(long.stopReason).toBe("end-of-generation");
    expect(long.tokens.at(-1)).toBe(remote.bosToken);
  });

  it("scoreContinuations agrees with in-process logprobs; a run of plain-text tokens costs one request", async () => {
    const prefix = await exact.tokenize("Tom and Sue went to the park");
    const [greedy] = await exact.rollouts([{ prefix }], { maxTokens: 10 });
    // Far outside any top-k (forced with logit_bias), and "ő": a character split across two
    // byte tokens, the first of which llama-server withholds (looked up in the distribution instead).
    const unlikely = [200, 17, 300, 45, 99];
    const split = await exact.tokenize(" ő", { addBos: false });
    // " lion lion" spelled ▁li·on·▁l·i·on, not as the tokenizer would (nor as the model prefers:
    // ▁l before ▁li there): the run's grammar names token ids, so it is retraced exactly.
    const ambiguous = [idOf(" li"), idOf("on"), idOf(" l"), idOf("i"), idOf("on")];
    const requests = [
      { prefix, continuation: greedy.tokens },
      { prefix, continuation: unlikely },
      { prefix, continuation: split },
      { prefix, continuation: [] },
      { prefix, continuation: ambiguous },
    ];
    let before = remote.stats.scoreRequests;
    const scored = await remote.scoreContinuations(requests, { topK: 3, nextTopK: 4 });
    // Never more than one request per position (and one for `next`); a withheld token may cost one more.
    const positions = requests.reduce((n, r) => n + r.continuation.length + 1, 0);
    expect(remote.stats.scoreRequests - before).toBeLessThanOrEqual(positions + split.length);
    // The greedy continuation alone: one request for its run of 10 tokens, one for `next`.
    before = remote.stats.scoreRequests;
    const [again] = await remote.scoreContinuations([requests[0]], { topK: 3, nextTopK: 4 });
    expect(remote.stats.scoreRequests - before).toBe(2);
    expectClose(again.logprobs, scored[0].logprobs);
    // The odd spelling: one request too, its logprobs every position's own (checked below).
    before = remote.stats.scoreRequests;
    await remote.scoreContinuations([requests[4]]);
    expect(remote.stats.scoreRequests - before).toBe(1);
    for (const [r, request] of requests.entries()) {
      const expected: number[] = [];
      for (let j = 0; j < request.continuation.length; j++)
        expected.push(
          await exactLogprob([...prefix, ...request.continuation.slice(0, j)], request.continuation[j]),
        );
      expect(scored[r].logprobs).toHaveLength(expected.length);
      expectClose(scored[r].logprobs, expected);
      expect(Math.abs(scored[r].logprob - expected.reduce((a, b) => a + b, 0))).toBeLessThan(1e-3);
      expect(scored[r].top).toHaveLength(request.continuation.length);
      const [next] = await exact.nextTokenDistributions([[...prefix, ...request.continuation]], { topK: 4 });
      expect(scored[r].next?.map((e) => e.token)).toEqual(next.map((e) => e.token));
    }
    // Greedy tokens are the argmax: each position's top-1 is the token itself.
    expect(scored[0].top?.map((top) => top[0].token)).toEqual(greedy.tokens);
    // The in-process backend's own scoring agrees too.
    const inProcess = await exact.scoreContinuations(requests);
    expectClose(
      inProcess.map((s) => s.logprob),
      scored.map((s) => s.logprob),
    );
  });

  it("seeded sampling on the server is reproducible; logprobs are the model's own", async () => {
    const prefix = await remote.tokenize("The little dog was");
    const options = { maxTokens: 40, temperature: 1, topK: 40, topP: 0.95 };
    const [a, b, c] = await remote.rollouts(
      [
        { prefix, seed: 7 },
        { prefix, seed: 7 },
        { prefix, seed: 8 },
      ],
      options,
    );
    expect(a.tokens).toEqual(b.tokens);
    expect(c.tokens).not.toEqual(a.tokens);
    // Logprobs are the model's own (temperature 1, untruncated), as in-process.
    const [check] = await exact.scoreContinuations([{ prefix, continuation: a.tokens }]);
    expectClose(a.logprobs, check.logprobs);
  });

  it("steps over characters split across tokens, which llama-server withholds from the stream", async () => {
    // At a very high temperature the stories model emits byte tokens that start characters.
    const prefix = await remote.tokenize("Once upon a time");
    const requestsBefore = remote.stats.requests;
    const rollouts = await remote.rollouts(
      Array.from({ length: 4 }, (_, i) => ({ prefix, seed: 100 + i })),
      { maxTokens: 60, temperature: 60 },
    );
    // The stories vocabulary's byte tokens are ids 3–258 (<0x00>–<0xFF>): lead bytes 0xC2–0xF4 are 197–247.
    const leads = rollouts.flatMap((r) => r.tokens).filter((t) => t >= 197 && t <= 247);
    expect(leads.length, "no lead bytes sampled: split characters untested").toBeGreaterThan(0);
    // Each split character closed a stream and cost requests of its own.
    expect(remote.stats.requests - requestsBefore).toBeGreaterThan(rollouts.length + leads.length);
    for (const rollout of rollouts) {
      expect(rollout.tokens.length).toBe(rollout.logprobs.length);
      // Every reported token and logprob is the model's: recovered tokens score as reported.
      const [check] = await exact.scoreContinuations([{ prefix, continuation: rollout.tokens }]);
      expectClose(rollout.logprobs, check.logprobs);
    }
  });

  it("reports prompt-cache use: each beam's next step is served from its slot's cache", async () => {
    const prompt = await remote.tokenize("Once upon a time there was a girl who liked to");
    const [top] = await remote.nextTokenDistributions([prompt], { topK: 4 });
    let beams = top.map((e) => [...prompt, e.token]);
    await remote.nextTokenDistributions(beams, { topK: 1 });
    const before = remote.usage;
    for (let step = 0; step < 4; step++) {
      const next = await remote.nextTokenDistributions(beams, { topK: 1 });
      beams = beams.map((beam, i) => [...beam, next[i][0].token]);
    }
    const after = remote.usage;
    const requested = after.requestedPrefixTokens - before.requestedPrefixTokens;
    const cached = after.cachedPrefixTokens - before.cachedPrefixTokens;
    expect(requested).toBeGreaterThan(0);
    // Only the newest token of each prefix is evaluated (and the last one again: its logits are not kept).
    expect(cached / requested).toBeGreaterThan(0.9);
  });

  it("rejects chatTokens without a template of the model's own, and checks inputs", async () => {
    await expect(remote.chatTokens([{ role: "user", content: "hi" }])).rejects.toMatchObject({
      code: "no-chat-template",
    });
    await expect(remote.nextTokenDistributions([[]], { topK: 2 })).rejects.toMatchObject({
      code: "empty-prefix",
    });
    await expect(remote.nextTokenDistributions([[1, 9999]], { topK: 2 })).rejects.toMatchObject({
      code: "bad-token",
    });
    await expect(remote.nextTokenDistributions([new Array(2048).fill(1)], { topK: 2 })).rejects.toMatchObject(
      {
        code: "prompt-too-long",
      },
    );
    expect(() => remote.detokenize([4096])).toThrow(/never handed out|not in/);
  });

  it("aborts a running rollout promptly, keeping what was generated", async () => {
    const prefix = await remote.tokenize("Once upon a time");
    const controller = new AbortController();
    let seen = 0;
    const started = performance.now();
    const [rollout] = await remote.rollouts([{ prefix }], {
      maxTokens: 1500,
      temperature: 1,
      seed: 3,
      onToken: () => {
        if (++seen === 20) controller.abort(new Error("stop now"));
      },
      signal: controller.signal,
    });
    expect(rollout.stopReason).toBe("aborted");
    expect(rollout.tokens.length).toBeGreaterThanOrEqual(20);
    expect(rollout.tokens.length).toBeLessThan(1500);
    // Long before the 1,500 tokens would have been generated (bound generous for shared machines).
    expect(performance.now() - started).toBeLessThan(10_000);
    await expect(
      remote.nextTokenDistributions([prefix], { topK: 2, signal: controller.signal }),
    ).rejects.toThrow("stop now");
  });
});

describe("llama-server with a chat template", () => {
  it("chatTokens applies the model's own template (stories260K-chat twin)", async () => {
    const chatServer = await startLlamaServer({ model: twinModelPath("stories260K-chat.gguf"), slots: 1 });
    const chat = await RemoteModel.open([chatServer.url]);
    try {
      expect(chat.capabilities.chatTemplate).toBe(true);
      const tokens = await chat.chatTokens([{ role: "user", content: "Tell me a story" }]);
      const text = chat.detokenize(tokens);
      expect(text).toContain("Tell me a story");
      expect(tokens.filter((t) => t === chat.bosToken).length).toBeLessThanOrEqual(1);
      const [rollout] = await chat.rollouts([{ prefix: tokens }], { maxTokens: 8 });
      expect(rollout.tokens.length).toBeGreaterThan(0);
    } catch (error) {
      throw isTillerError(error) ? new Error(`${error.code}: ${error.message}`) : error;
    } finally {
      await chat.dispose();
      await chatServer.stop();
    }
  });
});
