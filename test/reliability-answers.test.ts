/**
 * Issue 9, class 6: no silent wrong answers. Provenance finds a phrase wherever the corpus has
 * it (line starts included); `trace` with no text is an error, not a PASS; the reference cache
 * never serves one model's samples for another file at the same path; conflicting options and
 * empty prompts are refused the same way everywhere.
 */
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { align } from "../src/align.js";
import { modelFileHash } from "../src/calibration/modelHash.js";
import { ReferencePolicy } from "../src/calibration/reference.js";
import { TillerError } from "../src/errors.js";
import { generate } from "../src/generate.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { keywordsReward } from "../src/rewards/keywords.js";
import { loadTestModel, sharedPath, testModelPath } from "./helpers.js";
import { assertBuilt, modelArgs, oneLine, runCliAsync } from "./reliability-cli.js";

let tmp: string;
let model: LlamaCppModel;
let corpusText: string;
let index: string;
beforeAll(async () => {
  assertBuilt();
  tmp = fs.mkdtempSync(path.join(tmpdir(), "tiller-answers-"));
  model = await loadTestModel();
  // The first 300 KB of the shared TinyStories corpus, cut at a line end.
  const whole = fs.readFileSync(sharedPath("corpora/tinystories-4m.txt"), "utf8");
  corpusText = whole.slice(0, whole.indexOf("\n", 300_000) + 1);
  const corpus = path.join(tmp, "corpus.txt");
  fs.writeFileSync(corpus, corpusText);
  index = path.join(tmp, "idx");
  const r = await runCliAsync(["index", "build", ...modelArgs(), "--corpus", corpus, "--out", index]);
  if (r.status !== 0) throw new Error(`index build failed: ${r.stderr}`);
}, 120_000);
afterAll(async () => {
  await model?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const occurrences = (text: string, phrase: string) => text.split(phrase).length - 1;

describe("provenance recall at line and document starts", () => {
  it('index query --text "once upon a time" counts every occurrence in the corpus', async () => {
    const expected = occurrences(corpusText, "once upon a time");
    expect(expected).toBeGreaterThan(100);
    const r = await runCliAsync([
      "index",
      "query",
      "-i",
      index,
      ...modelArgs(),
      "--text",
      "once upon a time",
      "--json",
    ]);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.count).toBe(expected);
    // Both tokenizations are looked up: after a space/at a start, and after a newline.
    expect(out.forms.length).toBeGreaterThanOrEqual(2);
    expect(out.forms.reduce((sum: number, f: { count: number }) => sum + f.count, 0)).toBe(expected);
  });

  it("a phrase at document starts and mid-line is counted in both places", async () => {
    const corpus = path.join(tmp, "mixed.txt");
    fs.writeFileSync(
      corpus,
      "the lighthouse keeper polished the lamp.\n\nat night the lighthouse keeper slept.\nthe lighthouse keeper woke.\n",
    );
    const idx = path.join(tmp, "idx-mixed");
    expect(
      (await runCliAsync(["index", "build", ...modelArgs(), "--corpus", corpus, "--out", idx])).status,
    ).toBe(0);
    const r = await runCliAsync([
      "index",
      "query",
      "-i",
      idx,
      ...modelArgs(),
      "--text",
      "the lighthouse keeper",
      "--json",
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).count).toBe(3);
  });
});

describe("trace", () => {
  it("empty stdin is an error, not PASS", async () => {
    const r = await runCliAsync(["trace", "-i", index, ...modelArgs()], { input: "" });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("tiller: no text to check: stdin was empty\n");
    expect(r.stdout).not.toMatch(/PASS/);
  });

  it("an empty --text or --file is an error too", async () => {
    const empty = path.join(tmp, "empty.txt");
    fs.writeFileSync(empty, "\n");
    for (const args of [
      ["--text", ""],
      ["--file", empty],
    ]) {
      const r = await runCliAsync(["trace", "-i", index, ...modelArgs(), ...args]);
      expect(r.status).toBe(2);
      expect(oneLine(r.stderr), r.stderr).toBe(true);
      expect(r.stderr).toMatch(/no text to check/);
    }
  });
});

describe("reference-sample cache identity", () => {
  it("another model file at the same path, size and mtime gets a new hash and new cache entries", async () => {
    const file = path.join(tmp, "model.gguf");
    const cacheDir = path.join(tmp, "cache");
    const original = fs.readFileSync(testModelPath());
    fs.writeFileSync(file, original);
    const mtime = new Date("2024-01-01T00:00:00Z");
    fs.utimesSync(file, mtime, mtime);
    const reference = (modelPath: string) =>
      new ReferencePolicy(model, { m: 2, modelPath, cacheDir: path.join(cacheDir, "reference") });
    const first = await modelFileHash(file, { cacheDir });
    const firstEntry = await reference(file).cacheFileOf("Once upon a time");

    // Same path, same size, same mtime, different bytes (one flipped in the last tensor).
    const changed = Buffer.from(original);
    changed[changed.length - 1] ^= 0xff;
    fs.writeFileSync(file, changed);
    fs.utimesSync(file, mtime, mtime);
    expect(fs.statSync(file).size).toBe(original.length);
    expect(fs.statSync(file).mtimeMs).toBe(mtime.getTime());

    const second = await modelFileHash(file, { cacheDir });
    expect(second).not.toBe(first);
    expect(await reference(file).cacheFileOf("Once upon a time")).not.toBe(firstEntry);
    // The digest is remembered: asking again for the unchanged file reads the table, not the file.
    expect(await modelFileHash(file, { cacheDir })).toBe(second);
    expect(
      JSON.stringify(JSON.parse(fs.readFileSync(path.join(cacheDir, "model-hashes.json"), "utf8"))),
    ).toContain(second);
  });
});

describe("one answer for the same input", () => {
  it("a strategy parameter given twice (spec and flag) is an error", async () => {
    for (const args of [
      ["-s", "deal:k=3", "--k", "5"],
      ["-s", "beam:width=4", "--beams", "8"],
      ["-s", "bon:n=2", "--n", "3"],
    ]) {
      const r = await runCliAsync(["align", ...modelArgs(), "-p", "Hi", "-r", "keywords:dog", ...args]);
      expect(r.status, args.join(" ")).toBe(2);
      expect(oneLine(r.stderr), r.stderr).toBe(true);
      expect(r.stderr).toMatch(/is given twice: .* give it once/);
    }
  });

  it("an empty prompt is refused by generate, align (CLI and library) as by eval", async () => {
    for (const command of [
      ["generate", "-p", ""],
      ["align", "-p", "", "-r", "keywords:dog"],
    ]) {
      const r = await runCliAsync([...command, ...modelArgs()]);
      expect(r.status, command[0]).toBe(2);
      expect(r.stderr).toMatch(/^tiller: the prompt is empty/);
    }
    await expect(generate(model, { prompt: "" })).rejects.toBeInstanceOf(TillerError);
    await expect(generate(model, { prompt: "" })).rejects.toThrow(/prompt is empty/);
    await expect(
      align(model, { prompt: "", reward: keywordsReward(["dog"]), strategy: "greedy" }),
    ).rejects.toMatchObject({ code: "empty-prompt" });
    const tasks = path.join(tmp, "empty-prompt.jsonl");
    fs.writeFileSync(tasks, `${JSON.stringify({ id: "a", prompt: "", keywords: ["dog"], maxTokens: 4 })}\n`);
    const r = await runCliAsync([
      "eval",
      ...modelArgs(),
      "--tasks",
      tasks,
      "--strategies",
      "greedy",
      "--out",
      path.join(tmp, "e"),
    ]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/field "prompt": must be a non-empty string/);
  });
});
