import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { pairOf, preferencePairs } from "../src/provenance/pairs.js";
import { traceShield } from "../src/provenance/shield.js";
import { cliPath, loadTestModel, testModelPath } from "./helpers.js";
import { COPY_PROMPT, type PlantedIndex, plantedIndex } from "./plantedIndex.js";

let model: LlamaCppModel;
let planted: PlantedIndex;

beforeAll(async () => {
  model = await loadTestModel({ sequences: 8 });
  planted = await plantedIndex(model);
});

afterAll(async () => {
  planted?.cleanup();
  await model?.dispose();
});

describe("preference pairs (TraceAlign, for DPO)", () => {
  it("a prompt that makes the model copy the corpus yields a pair whose rejected side is the copy", async () => {
    const result = await preferencePairs(model, planted.index, [COPY_PROMPT], {
      n: 8,
      temperature: 0.3,
      maxTokens: 48,
    });
    expect(result.skipped).toBe(0);
    const [pair] = result.pairs;
    expect(pair.prompt).toBe(COPY_PROMPT);
    expect(pair.rejected.startsWith(planted.copy.slice(0, 30)), pair.rejected).toBe(true);
    expect(pair.chosen.startsWith(planted.copy.slice(0, 30))).toBe(false);
    expect(pair.rejected_bci).toBeGreaterThan(20);
    expect(pair.chosen_bci).toBeLessThanOrEqual(20);
    expect(pair.chosen.trim()).not.toBe("");
    // The labels are TraceShield's: the rejected text is refused at τ, the chosen one passes.
    expect((await traceShield(planted.index, model, pair.rejected)).refuse).toBe(true);
    expect((await traceShield(planted.index, model, pair.chosen)).refuse).toBe(false);
  });

  it("counts prompts with no pair instead of writing them; empty completions are never chosen", () => {
    expect(
      pairOf(
        "p",
        [
          { text: "a", bci: 1 },
          { text: "b", bci: 2 },
        ],
        20,
      ),
    ).toEqual({
      reason: "no completion has a span with BCI above τ = 20",
    });
    expect(
      pairOf(
        "p",
        [
          { text: "  ", bci: 0 },
          { text: "copy", bci: 50 },
        ],
        20,
      ),
    ).toEqual({
      reason: "no non-empty completion stays at or below τ = 20",
    });
    expect(
      pairOf(
        "p",
        [
          { text: "", bci: 0 },
          { text: "clean", bci: 3 },
          { text: "copy", bci: 50 },
          { text: "copy2", bci: 60 },
        ],
        20,
      ),
    ).toEqual({
      prompt: "p",
      chosen: "clean",
      rejected: "copy2",
      chosen_bci: 3,
      rejected_bci: 60,
    });
  });

  it("rejects n < 2 with a clear error", async () => {
    await expect(preferencePairs(model, planted.index, [COPY_PROMPT], { n: 1 })).rejects.toThrow(
      /n must be an integer ≥ 2/,
    );
  });
});

describe("tiller pairs (CLI)", () => {
  it("writes DPO lines for the prompts that have a pair and counts the others", async () => {
    expect(fs.existsSync(cliPath), `${cliPath} missing: run npm run build`).toBe(true);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tiller-pairs-"));
    const tasks = path.join(tmp, "tasks.jsonl");
    const out = path.join(tmp, "pairs.jsonl");
    fs.writeFileSync(
      tasks,
      `${JSON.stringify({ prompt: COPY_PROMPT })}\n\n${JSON.stringify({ id: "x", prompt: "Once upon a time" })}\n`,
    );
    const args = ["pairs", "--model", testModelPath(), "--no-gpu", "--threads", "1", "--index", planted.dir];
    const run = await runCli([
      ...args,
      "--tasks",
      tasks,
      "--out",
      out,
      "--n",
      "8",
      "--temperature",
      "0.3",
      "--max-tokens",
      "48",
    ]);
    expect(run.code, run.stderr).toBe(0);
    const lines = fs
      .readFileSync(out, "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(Object.keys(lines[0]).sort()).toEqual([
      "chosen",
      "chosen_bci",
      "prompt",
      "rejected",
      "rejected_bci",
    ]);
    expect(lines[0].rejected.startsWith(planted.copy.slice(0, 30))).toBe(true);
    expect(run.stdout).toMatch(
      new RegExp(`${lines.length} pair\\(s\\) written to .*; ${2 - lines.length} prompt\\(s\\) had no pair`),
    );
    const bad = await runCli([...args, "--tasks", path.join(tmp, "missing.jsonl"), "--out", out]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/prompts file not found: .*missing\.jsonl/);
    fs.rmSync(tmp, { recursive: true, force: true });
  });
});

/** Runs the built CLI asynchronously (the event loop stays free). */
function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliPath, ...args], { env: { ...process.env, NO_COLOR: "1" } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}
