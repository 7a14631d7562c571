/**
 * The vLLM dialect up to the network boundary. vLLM cannot run here, so a loopback HTTP server
 * replays fixtures (test/fixtures/vllm/*.json) written in the shapes of vLLM's documented
 * OpenAI-compatible API, with the stories model's numbers (see build-fixtures.ts). Requests must
 * match a fixture exactly (method, path, JSON body), so the requests tiller sends are checked too.
 */
import { readdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RemoteModel } from "../src/lm/http/remoteModel.js";
import type { ModelWarning } from "../src/lm/types.js";
import { repoRoot } from "./helpers.js";

interface Exchange {
  request: { method: string; path: string; body?: unknown };
  response: { status: number; body: unknown };
}

const fixtureDir = join(repoRoot, "test/fixtures/vllm");
const fixtures: Record<string, Exchange[]> = Object.fromEntries(
  readdirSync(fixtureDir)
    .filter((name) => name.endsWith(".json"))
    .map((name) => [
      name.replace(/\.json$/, ""),
      JSON.parse(readFileSync(join(fixtureDir, name), "utf8")).exchanges,
    ]),
);

/** JSON with object keys sorted, so equal bodies compare equal whatever their key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object")
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`)
      .join(",")}}`;
  return JSON.stringify(value);
}

/** Replays the fixtures; any request without one is answered 599 and remembered. */
class ReplayServer {
  readonly unmatched: string[] = [];
  readonly seen: string[] = [];
  private readonly answers = new Map<string, Exchange["response"]>();
  private readonly server: Server;

  constructor(exchanges: readonly Exchange[]) {
    for (const { request, response } of exchanges)
      this.answers.set(`${request.method} ${request.path} ${canonical(request.body ?? null)}`, response);
    this.server = createServer((req, res) => {
      let text = "";
      req.on("data", (chunk) => {
        text += chunk;
      });
      req.on("end", () => {
        const key = `${req.method} ${req.url} ${canonical(text ? JSON.parse(text) : null)}`;
        this.seen.push(key);
        const answer = this.answers.get(key);
        if (!answer) {
          this.unmatched.push(key);
          return res.writeHead(599).end(JSON.stringify({ error: { message: `no fixture for ${key}` } }));
        }
        res.writeHead(answer.status, { "content-type": "application/json" }).end(JSON.stringify(answer.body));
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((done) => this.server.listen(0, "127.0.0.1", done));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    return new Promise((done) => this.server.close(() => done()));
  }

  count(method: string, path: string): number {
    return this.seen.filter((key) => key.startsWith(`${method} ${path} `)).length;
  }
}

/** The parts of a fixture's completion response the tests read. */
interface FixtureCompletion {
  choices: {
    text: string;
    token_ids: number[];
    logprobs: { token_logprobs: number[]; top_logprobs: Record<string, number>[] };
    prompt_logprobs: Record<string, { logprob: number }>[];
  }[];
}

/** The body of the fixture response whose request body contains `match`. */
function responseFor(file: string, match: Record<string, unknown>): FixtureCompletion {
  const exchange = fixtures[file].find((e) =>
    Object.entries(match).every(
      ([k, v]) => canonical((e.request.body as Record<string, unknown>)?.[k]) === canonical(v),
    ),
  );
  if (!exchange) throw new Error(`fixture ${file} has no request with ${JSON.stringify(match)}`);
  return exchange.response.body as FixtureCompletion;
}

const tokenOf = (key: string) => Number(key.replace("token_id:", ""));

let replay: ReplayServer;
let model: RemoteModel;

beforeAll(async () => {
  replay = new ReplayServer(Object.values(fixtures).flat());
  const url = await replay.listen();
  model = await RemoteModel.open([url], { retry: { baseDelayMs: 5, maxDelayMs: 20 } });
});

afterAll(async () => {
  await model?.dispose();
  await replay?.close();
});

describe("vLLM dialect (fixtures from vLLM's documented API, replayed on loopback)", () => {
  it("detects vLLM and reads the model's limits from the server", () => {
    expect(model.dialect).toBe("vllm");
    expect(model.id).toBe("stories260K");
    expect(model.contextSize).toBe(2048);
    // From vLLM's own validation errors: "Vocabulary size: 512", "max allowed: 20".
    expect(model.vocabularySize).toBe(512);
    expect(model.capabilities).toEqual({
      maxTopK: 20,
      exactDistributions: true,
      seededSampling: false,
      prefixCache: true,
      singlePassScoring: true,
      chatTemplate: false,
    });
    expect(model.bosToken).toBe(1);
  });

  it("tokenizes through /tokenize and decodes from pieces fetched once per token", async () => {
    const tokens = await model.tokenize("Once upon a time");
    expect(tokens).toEqual([1, 403, 407, 261, 378]);
    expect(model.detokenize(tokens)).toBe("Once upon a time");
    expect(model.detokenize([407], { context: [403] })).toBe(" upon");
    const before = replay.count("POST", "/detokenize");
    await model.tokenize("Once upon a time");
    expect(replay.count("POST", "/detokenize")).toBe(before);
  });

  it("nextTokenDistributions: raw logprobs by token id, top-k clamped to max_logprobs with a warning", async () => {
    const prefix = [1, 403, 407, 261, 378];
    const [top5] = await model.nextTokenDistributions([prefix], { topK: 5 });
    const expected = responseFor("next", { logprobs: 5 }).choices[0].logprobs.top_logprobs[0];
    expect(top5).toEqual(
      Object.entries(expected)
        .map(([key, logprob]) => ({ token: tokenOf(key), logprob }))
        .sort((a, b) => (b.logprob as number) - (a.logprob as number)),
    );
    expect(model.detokenize([top5[0].token], { context: prefix })).toBe(",");
    const warnings: ModelWarning[] = [];
    const [top50] = await model.nextTokenDistributions([prefix], {
      topK: 50,
      onWarning: (w) => warnings.push(w),
    });
    expect(top50).toHaveLength(20);
    expect(warnings).toEqual([
      { code: "top-k-clamped", message: expect.stringContaining("at most 20 logprobs") },
    ]);
  });

  it("scoreContinuations: one request with prompt_logprobs", async () => {
    const body = fixtures.score[0].request.body as { prompt: number[] };
    const prefix = body.prompt.slice(0, 5);
    const continuation = body.prompt.slice(5);
    const before = model.stats;
    const [scored] = await model.scoreContinuations([{ prefix, continuation }], { topK: 2, nextTopK: 3 });
    expect(model.stats.requests - before.requests).toBe(1);
    expect(model.stats.scoreRequests - before.scoreRequests).toBe(1);
    const promptLogprobs = responseFor("score", {}).choices[0].prompt_logprobs;
    expect(scored.logprobs).toEqual(
      continuation.map((token, j) => promptLogprobs[5 + j][String(token)].logprob),
    );
    expect(scored.logprob).toBeCloseTo(
      scored.logprobs.reduce((a, b) => a + b, 0),
      12,
    );
    expect(scored.top).toHaveLength(continuation.length);
    expect(scored.top?.every((top) => top.length === 2)).toBe(true);
    expect(scored.next?.map((e) => e.token)).toEqual(
      Object.keys(responseFor("score", {}).choices[0].logprobs.top_logprobs[0]).map(tokenOf),
    );
  });

  it("greedy rollouts: token ids from return_token_ids, logprobs from logprobs=0", async () => {
    const [rollout] = await model.rollouts([{ prefix: [1, 403, 407, 261, 378] }], { maxTokens: 12 });
    const choice = responseFor("rollouts", { max_tokens: 12 }).choices[0];
    expect(rollout.tokens).toEqual(choice.token_ids);
    expect(rollout.logprobs).toEqual(choice.logprobs.token_logprobs);
    expect(rollout.stopReason).toBe("max-tokens");
    expect(model.detokenize(rollout.tokens, { context: [378] })).toBe(choice.text);
  });

  it("stop strings: vLLM stops, tiller cuts on the same token as in-process", async () => {
    const streamed: number[] = [];
    const [rollout] = await model.rollouts([{ prefix: [1, 403, 407, 261, 378] }], {
      maxTokens: 60,
      stopStrings: ["park"],
      onToken: (_i, token) => streamed.push(token),
    });
    const choice = responseFor("rollouts", { stop: ["park"] }).choices[0];
    expect(rollout.stopReason).toBe("stop-string");
    expect(rollout.tokens).toEqual(choice.token_ids);
    expect(model.detokenize(rollout.tokens, { context: [378] })).toMatch(/park$/);
    expect(streamed).toEqual(rollout.tokens);
  });

  it("unseeded samples from one prefix go in one request with n; vLLM's end of sequence is learned", async () => {
    const before = replay.count("POST", "/v1/completions");
    const prefix = [1, 403, 407, 261, 378];
    const rollouts = await model.rollouts([{ prefix }, { prefix }, { prefix }], {
      maxTokens: 10,
      temperature: 1,
    });
    expect(replay.count("POST", "/v1/completions") - before).toBe(1);
    const choices = responseFor("rollouts", { n: 3 }).choices;
    rollouts.forEach((rollout, i) => {
      const stop = choices[i].token_ids.findIndex((t: number) => t === 1);
      const expected = stop >= 0 ? choices[i].token_ids.slice(0, stop + 1) : choices[i].token_ids;
      expect(rollout.tokens).toEqual(expected);
    });
    // The third sample ended on vLLM's EOS (finish_reason "stop", stop_reason null): token 2.
    expect(rollouts[2].stopReason).toBe("end-of-generation");
    expect(model.isStopToken(2)).toBe(true);
  });

  it("a rejected request is one clear error; a 500 is retried, then one clear error", async () => {
    const rejected = await model.nextTokenDistributions([[1, 999 % 512]], { topK: 2 }).catch((e) => e);
    expect(rejected).toMatchObject({ name: "TillerError", code: "server-rejected" });
    expect(rejected.message).toContain("maximum context length is 2048 tokens");
    expect(rejected.message.split("\n")).toHaveLength(1);
    const before = replay.count("POST", "/v1/completions");
    const failed = await model.nextTokenDistributions([[1, 998 % 512]], { topK: 2 }).catch((e) => e);
    expect(failed).toMatchObject({ name: "TillerError", code: "server-error" });
    expect(failed.message).toContain("after 4 tries");
    expect(replay.count("POST", "/v1/completions") - before).toBe(4);
  });

  it("sent only requests the fixtures know (vLLM's documented request shapes)", () => {
    expect(replay.unmatched).toEqual([]);
  });
});
