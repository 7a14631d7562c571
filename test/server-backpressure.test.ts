import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import type { RunningServer } from "../src/server/server.js";
import { loadTestModel } from "./helpers.js";
import { client, get, openAiError, post, serve } from "./serverHarness.js";

let model: LlamaCppModel;
const open: RunningServer[] = [];
const LONG = { model: "stories260K", prompt: "Once upon a time", max_tokens: 1500, temperature: 0, stop: [] };

beforeAll(async () => {
  model = await loadTestModel({ sequences: 8 });
});

afterAll(async () => {
  for (const server of open) await server.close();
  await model?.dispose();
});

async function started(options: Parameters<typeof serve>[1]): Promise<RunningServer> {
  const server = await serve(model, options);
  open.push(server);
  return server;
}

describe("tiller serve: API key", () => {
  it("401 without the key or with a wrong one (OpenAI shape); 200 with it; /health stays open", async () => {
    const server = await started({ apiKey: "s3cret-key" });
    const body = { model: "stories260K", prompt: "Once", max_tokens: 4, temperature: 0 };
    const none = await post(server, "/v1/completions", body);
    expect(none.status).toBe(401);
    expect(openAiError(none).code).toBe("invalid_api_key");
    const wrong = await post(server, "/v1/completions", body, { authorization: "Bearer s3cret-kez" });
    expect(wrong.status).toBe(401);
    expect((await get(server, "/v1/models", { authorization: "Bearer s3cret-key-longer" })).status).toBe(401);
    expect((await get(server, "/metrics")).status).toBe(401);
    await expect(client(server, "wrong").models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const ok = await client(server, "s3cret-key").completions.create(body);
    expect(ok.choices[0].text.length).toBeGreaterThan(0);
    expect((await get(server, "/health")).status).toBe(200);
  });
});

describe("tiller serve: back-pressure", () => {
  it("429 with Retry-After once --max-concurrent are decoding and --max-queue are waiting", async () => {
    const server = await started({ maxConcurrent: 1, maxQueue: 1 });
    const body = { ...LONG, max_tokens: 300 };
    const replies = await Promise.all(Array.from({ length: 5 }, () => post(server, "/v1/completions", body)));
    const statuses = replies.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 429, 429, 429]);
    for (const reply of replies.filter((r) => r.status === 429)) {
      expect(openAiError(reply).code).toBe("queue_full");
      expect(Number(reply.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    }
    const metrics = await get(server, "/metrics");
    expect(metrics.text).toMatch(/tiller_requests_total\{endpoint="\/v1\/completions",status="429"\} 3/);
  });

  it("a client that disconnects mid-stream frees its slot: the next request is served at once", async () => {
    const server = await started({ maxConcurrent: 1, maxQueue: 0 });
    const controller = new AbortController();
    const response = await fetch(`${server.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...LONG, stream: true }),
      signal: controller.signal,
    });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read(); // the stream is running: the only slot is taken
    const busy = await post(server, "/v1/completions", { ...LONG, max_tokens: 2 });
    expect(busy.status).toBe(429);
    controller.abort();
    const start = performance.now();
    let next = await post(server, "/v1/completions", { ...LONG, max_tokens: 2 });
    // The server learns of the disconnect from the socket closing: allow it a few event-loop turns.
    while (next.status === 429 && performance.now() - start < 2000) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      next = await post(server, "/v1/completions", { ...LONG, max_tokens: 2 });
    }
    expect(next.status, next.text).toBe(200);
    expect(performance.now() - start).toBeLessThan(1000);
    expect(server.context.admission.running).toBe(0);
    expect(server.context.scheduler.depth).toBe(0);
  });

  it("shutting down: in-flight requests finish, new ones are refused", async () => {
    const server = await serve(model, { maxConcurrent: 2, maxQueue: 2 });
    const inFlight = post(server, "/v1/completions", { ...LONG, max_tokens: 200 });
    while (server.context.admission.running === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const closing = server.close();
    const refused = await fetch(`${server.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", connection: "close" },
      body: JSON.stringify({ ...LONG, max_tokens: 2 }),
    }).then(
      (r) => r.status,
      () => "connection refused",
    );
    expect([503, "connection refused"]).toContain(refused);
    const finished = await inFlight;
    expect(finished.status).toBe(200);
    expect(
      (finished.body as { usage: { completion_tokens: number } }).usage.completion_tokens,
    ).toBeGreaterThan(0);
    await closing;
  });

  it("shutting down past its timeout aborts what is still decoding", async () => {
    const server = await serve(model, { shutdownTimeoutMs: 100 });
    const inFlight = post(server, "/v1/completions", { ...LONG, max_tokens: 1900, stream: true });
    while (server.context.admission.running === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const start = performance.now();
    await server.close();
    expect(performance.now() - start).toBeLessThan(3000);
    const reply = await inFlight;
    expect(reply.status).toBe(200);
  });
});
