/**
 * A fleet of real llama-servers acting as one model: batches spread, searches stay where their
 * prefixes are cached, a killed server's work finishes on the other, a restarted one is probed
 * back in, and servers of different models are refused.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RemoteModel } from "../src/lm/http/remoteModel.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import type { Token } from "../src/lm/types.js";
import { loadExactModel, type RunningServer, startLlamaServer, twinModelPath } from "./llamaServer.js";

let a: RunningServer;
let b: RunningServer;
let local: LlamaCppModel;

beforeAll(async () => {
  [a, b, local] = await Promise.all([
    startLlamaServer({ slots: 2 }),
    startLlamaServer({ slots: 2 }),
    // The servers' numerics (f32 KV cache): long greedy runs then agree token for token.
    loadExactModel(),
  ]);
});

afterAll(async () => {
  await local?.dispose();
  await Promise.all([a?.stop(), b?.stop()]);
});

function requestsPerEndpoint(model: RemoteModel): number[] {
  return model.stats.endpoints.map((e) => e.requests);
}

function since(after: number[], before: number[]): number[] {
  return after.map((n, i) => n - before[i]);
}

/** Distinct prefixes sharing only BOS: independent work, no affinity anywhere. */
function freshPrefixes(count: number, seed: number): Token[][] {
  return Array.from({ length: count }, (_, i) => [1, 300 + ((seed * 7 + i * 13) % 200), 261, 378, 432]);
}

describe("fleet of two llama-servers", () => {
  it("splits a batch across both, and keeps a search's extensions where its prefix is cached", async () => {
    const fleet = await RemoteModel.open([a.url, b.url], { probeIntervalMs: 200 });
    try {
      expect(fleet.endpoints).toEqual([a.url, b.url]);
      let before = requestsPerEndpoint(fleet);
      await fleet.nextTokenDistributions(freshPrefixes(8, 1), { topK: 3 });
      const split = since(requestsPerEndpoint(fleet), before);
      expect(split[0]).toBeGreaterThan(0);
      expect(split[1]).toBeGreaterThan(0);
      expect(split[0] + split[1]).toBe(8);

      // A search: one prefix, then its extensions — they go back to the endpoint that served it.
      const prompt = await fleet.tokenize("Once upon a time there was a little girl named Lily. She");
      before = requestsPerEndpoint(fleet);
      const [top] = await fleet.nextTokenDistributions([prompt], { topK: 2 });
      const home = since(requestsPerEndpoint(fleet), before).indexOf(1);
      before = requestsPerEndpoint(fleet);
      await fleet.nextTokenDistributions(
        top.map((e) => [...prompt, e.token]),
        { topK: 2 },
      );
      const followed = since(requestsPerEndpoint(fleet), before);
      expect(followed[home]).toBe(2);
      // And it was served from that endpoint's prompt cache.
      const cache = fleet.stats.endpoints[home];
      expect(cache.cachedPromptTokens).toBeGreaterThan(prompt.length);
    } finally {
      await fleet.dispose();
    }
  });

  it("finishes the run on the surviving server when one is killed mid-run, then probes it back in", async () => {
    const c = await startLlamaServer({ slots: 2 });
    const fleet = await RemoteModel.open([a.url, c.url], { probeIntervalMs: 200 });
    try {
      const prompts = ["Once upon a time", "Tom and Sue went to the park", "The little dog was", "One day"];
      const requests = await Promise.all(prompts.map(async (p) => ({ prefix: await local.tokenize(p) })));
      const expected = await local.rollouts(requests, { maxTokens: 400 });
      let streamed = 0;
      let killing: Promise<void> | undefined;
      const rollouts = await fleet.rollouts(requests, {
        maxTokens: 400,
        onToken: () => {
          if (++streamed === 40) killing = c.kill();
        },
      });
      await killing;
      expect(killing, "the server was not killed mid-run").toBeDefined();
      // Greedy rollouts resumed on the survivor give the same text as one uninterrupted run.
      rollouts.forEach((rollout, i) => {
        expect(rollout.tokens).toEqual(expected[i].tokens);
        expect(rollout.stopReason).toBe(expected[i].stopReason);
      });
      const dead = fleet.stats.endpoints[1];
      expect(dead.healthy).toBe(false);
      expect(fleet.stats.retries).toBeGreaterThan(0);

      // While it is out, everything goes to the survivor.
      const before = requestsPerEndpoint(fleet);
      await fleet.nextTokenDistributions(freshPrefixes(4, 2), { topK: 2 });
      expect(since(requestsPerEndpoint(fleet), before)).toEqual([4, 0]);

      // Restarted on the same port, it is probed back in and takes work again.
      const revived = await startLlamaServer({ slots: 2, port: c.port });
      try {
        const deadline = Date.now() + 10_000;
        while (!fleet.stats.endpoints[1].healthy && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 50));
        expect(fleet.stats.endpoints[1].healthy).toBe(true);
        const again = requestsPerEndpoint(fleet);
        await fleet.nextTokenDistributions(freshPrefixes(8, 3), { topK: 2 });
        expect(since(requestsPerEndpoint(fleet), again)[1]).toBeGreaterThan(0);
      } finally {
        await revived.stop();
      }
    } finally {
      await fleet.dispose();
      await c.stop();
    }
  });

  it("refuses servers that serve different models", async () => {
    const permuted = await startLlamaServer({ model: twinModelPath("stories260K-permuted.gguf"), slots: 1 });
    try {
      const error = await RemoteModel.open([a.url, permuted.url]).catch((e) => e);
      expect(error).toMatchObject({ code: "model-mismatch" });
      expect(error.message).toContain(permuted.url);
      expect(error.message.split("\n")).toHaveLength(1);
    } finally {
      await permuted.stop();
    }
  });

  it("refuses the same server listed twice", async () => {
    await expect(RemoteModel.open([a.url, `${a.url}/`])).rejects.toMatchObject({ code: "duplicate-server" });
  });
});
