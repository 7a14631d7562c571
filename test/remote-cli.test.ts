import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, testModelPath } from "./helpers.js";
import { type RunningServer, startLlamaServer } from "./llamaServer.js";

// `--model URL` wherever --model is taken: the CLI drives a real llama-server (and a fleet of two)
// through the same LanguageModel seam and gets what the in-process model gives.
let servers: RunningServer[] = [];

beforeAll(async () => {
  servers = await Promise.all([startLlamaServer(), startLlamaServer()]);
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

const job = [
  "--prompt",
  "It was a sunny day.",
  "--reward",
  "keywords:elephant,lion",
  "--max-tokens",
  "40",
  "--json",
];

describe("tiller align --model URL", () => {
  it("DeAL through llama-server and through a fleet of two reach the in-process coverage", async () => {
    const local = await runCli(["align", "--model", testModelPath(), "--threads", "1", ...job]);
    expect(local.stderr).toBe("");
    const remote = await runCli(["align", "--model", servers[0].url, ...job]);
    expect(remote.stderr).toBe("");
    const fleet = await runCli(["align", "--model", servers[0].url, "--model", servers[1].url, ...job]);
    expect(fleet.stderr).toBe("");
    const [l, r, f] = [local, remote, fleet].map((run) => JSON.parse(run.stdout));
    expect(l.rewards.keywords).toBe(1);
    expect(r.rewards.keywords).toBe(l.rewards.keywords);
    expect(f.rewards.keywords).toBe(l.rewards.keywords);
  });

  it("bad server input is one line, exit 2", async () => {
    const wrong = await runCli([
      "generate",
      "--model",
      servers[0].url,
      "--backend",
      "vllm",
      "--prompt",
      "Hi",
    ]);
    expect(wrong.status).toBe(2);
    expect(wrong.stderr.trim().split("\n")).toHaveLength(1);
    const dead = await runCli(["generate", "--model", "http://127.0.0.1:9", "--prompt", "Hi"]);
    expect(dead.status).toBe(2);
    expect(dead.stderr).toMatch(/127\.0\.0\.1:9/);
    expect(dead.stderr.trim().split("\n")).toHaveLength(1);
  });
});
