import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
  "48",
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

  it("eval on a fleet runs with a warm cache by default and refuses --cache cold in one line", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tiller-remote-eval-"));
    try {
      const tasks = join(dir, "tasks.jsonl");
      writeFileSync(tasks, '{"id":"t1","prompt":"It was a sunny day.","keywords":["lion"],"maxTokens":12}\n');
      const urls = servers.flatMap((s) => ["--model", s.url]);
      // The same eval, into `out`, with `extra` flags.
      const evalInto = (out: string, ...extra: string[]) =>
        runCli(["eval", ...urls, "--tasks", tasks, "-s", "greedy", "--out", join(dir, out), ...extra]);
      const run = await evalInto("out");
      expect(run.stderr).toBe("");
      expect(run.status).toBe(0);
      expect(run.stdout).toMatch(/warm cache/);
      expect(JSON.parse(readFileSync(join(dir, "out", "run.json"), "utf8")).cache).toBe("warm");
      const cold = await evalInto("cold", "--cache", "cold");
      expect(cold.status).toBe(2);
      expect(cold.stderr.trim().split("\n")).toHaveLength(1);
      expect(cold.stderr).toMatch(/cache "cold"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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
