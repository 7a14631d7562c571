import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatTable, qualityVsCostSpec } from "../src/eval/report.js";
import { type EvalResult, runEval } from "../src/eval/runEval.js";
import { type EvalTask, parseTasks } from "../src/eval/tasks.js";
import { generate } from "../src/generate.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { buildIndex } from "../src/provenance/build-index.js";
import { regurgitation } from "../src/provenance/regurgitation.js";
import { TraceIndex } from "../src/provenance/trace-index.js";
import { keywordCoverage } from "../src/rewards/keywords.js";
import { countWords } from "../src/rewards/words.js";
import { loadTestModel, sharedPath } from "./helpers.js";

let model: LlamaCppModel;
let tmp: string;
let index: TraceIndex;
let tasks: EvalTask[];
let result: EvalResult;
let greedyText: string;

const TASKS = [
  {
    id: "girl",
    prompt: "Once upon a time, there was a little girl named Lily.",
    keywords: ["play", "dog", "park"],
    maxTokens: 24,
  },
  { id: "sun", prompt: "It was a sunny day.", keywords: ["ball"], maxTokens: 20, minWords: 5, maxWords: 12 },
  { id: "cat", prompt: "The cat", keywords: ["sad", "tree"], maxTokens: 16 },
];
const STRATEGIES = ["greedy", "sample:seed=7", "beam:width=2"];

beforeAll(async () => {
  model = await loadTestModel();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tiller-eval-"));
  tasks = parseTasks(TASKS.map((t) => JSON.stringify(t)).join("\n"));
  // The index: a ~200 KB slice of the shared (lowercased) corpus, plus the first task's prompt and
  // greedy output as a document of its own (lowercased, as the corpus is), so that output must be
  // found verbatim — through the lowercase re-tokenization the metric does.
  greedyText = (await generate(model, { prompt: TASKS[0].prompt, maxTokens: TASKS[0].maxTokens })).text;
  const corpus = fs.readFileSync(sharedPath("corpora/tinystories-4m.txt"), "utf8").slice(0, 200_000);
  const cut = corpus.lastIndexOf("\n\n");
  const corpusFile = path.join(tmp, "slice.txt");
  fs.writeFileSync(
    corpusFile,
    `${corpus.slice(0, cut)}\n\n${`${TASKS[0].prompt}${greedyText}`.toLowerCase()}\n`,
  );
  await buildIndex(model, [corpusFile], path.join(tmp, "idx"), { lowercase: true });
  index = TraceIndex.open(path.join(tmp, "idx"));
  result = await runEval(model, tasks, STRATEGIES, { index });
});

afterAll(async () => {
  await model?.dispose();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe("runEval", () => {
  it("runs every strategy over every task, sequentially by strategy", async () => {
    expect(result.order).toBe("sequential-by-strategy");
    expect(result.cache).toBe("cold");
    expect(result.strategies).toEqual(STRATEGIES);
    expect(result.rows.map((r) => `${r.strategy}/${r.taskId}`)).toEqual(
      STRATEGIES.flatMap((s) => TASKS.map((t) => `${s}/${t.id}`)),
    );
  });

  it("computes metrics consistent with the returned text", async () => {
    for (const row of result.rows) {
      const task = tasks.find((t) => t.id === row.taskId) as EvalTask;
      const m = row.metrics;
      const coverage = keywordCoverage(row.text, task.keywords, { inflections: true });
      expect(m.softCoverage).toBe(coverage.soft);
      expect(m.hardCoverage).toBe(coverage.hard);
      expect(m.missing).toEqual(coverage.missing);
      expect(m.words).toBe(countWords(row.text));
      expect(m.generatedTokens).toBeGreaterThan(0);
      expect(m.generatedTokens).toBeLessThanOrEqual(task.maxTokens);
      expect(m.logprobPerToken).toBeLessThan(0);
      expect(m.wallMs).toBeGreaterThan(0);
      // The reward is the task reward: coverage (+ length penalty, 0 inside the window).
      if (task.minWords === undefined) expect(m.reward).toBeCloseTo(coverage.soft);
      else if (m.inLengthWindow) expect(m.reward).toBeCloseTo(coverage.soft);
      else expect(m.reward).toBeLessThan(coverage.soft);
    }
  });

  it("greedy matches plain generation, and evaluates about prompt + generated tokens", async () => {
    const greedy = result.rows.filter((r) => r.strategy === "greedy");
    expect(greedy[0].text).toBe(greedyText);
    for (const row of greedy) {
      const { promptTokens, generatedTokens, evaluatedTokens } = row.metrics;
      // Cold cache: only BOS may be cached; the last generated token is not fed back.
      expect(evaluatedTokens).toBeGreaterThanOrEqual(promptTokens + generatedTokens - 3);
      expect(evaluatedTokens).toBeLessThanOrEqual(promptTokens + generatedTokens + 1);
    }
    // Beam search evaluates more than greedy on every task.
    for (const task of TASKS) {
      const get = (s: string) => result.rows.find((r) => r.strategy === s && r.taskId === task.id);
      expect(get("beam:width=2")?.metrics.evaluatedTokens).toBeGreaterThan(
        get("greedy")?.metrics.evaluatedTokens ?? 0,
      );
    }
  });

  it("gives every strategy the same cold cache (order does not matter)", async () => {
    // sample at temperature 0 decodes exactly as greedy; run second it must cost the same.
    const cold = await runEval(model, tasks.slice(0, 1), ["greedy", "sample:temperature=0"]);
    const warm = await runEval(model, tasks.slice(0, 1), ["greedy", "sample:temperature=0"], {
      cache: "warm",
    });
    for (const r of [cold, warm]) expect(r.rows[0].text).toBe(r.rows[1].text);
    expect(cold.rows[1].metrics.evaluatedTokens).toBe(cold.rows[0].metrics.evaluatedTokens);
    expect(cold.summary[1].evaluatedTokensRatio).toBe(1);
    // Without the flush, the second strategy finds the prompt cached: ~generated tokens only.
    expect(cold.rows[1].metrics.evaluatedTokens).toBeGreaterThan(cold.rows[1].metrics.generatedTokens + 5);
    expect(warm.rows[1].metrics.evaluatedTokens).toBeLessThanOrEqual(
      warm.rows[1].metrics.generatedTokens + 1,
    );
  });

  it("summarises per strategy: means, totals and ratios to the first", async () => {
    for (const s of result.summary) {
      const rows = result.rows.filter((r) => r.strategy === s.strategy).map((r) => r.metrics);
      const mean = (f: (m: (typeof rows)[0]) => number) => rows.reduce((a, m) => a + f(m), 0) / rows.length;
      expect(s.tasks).toBe(3);
      expect(s.softCoverage).toBeCloseTo(mean((m) => m.softCoverage));
      expect(s.hardCoverage).toBeCloseTo(mean((m) => m.hardCoverage));
      expect(s.meanWords).toBeCloseTo(mean((m) => m.words));
      expect(s.logprobPerToken).toBeCloseTo(mean((m) => m.logprobPerToken as number));
      expect(s.meanEvaluatedTokens).toBeCloseTo(mean((m) => m.evaluatedTokens));
      expect(s.totalEvaluatedTokens).toBe(rows.reduce((a, m) => a + m.evaluatedTokens, 0));
      expect(s.totalWallMs).toBeCloseTo(
        rows.reduce((a, m) => a + m.wallMs, 0),
        0,
      );
      expect(s.evaluatedTokensRatio).toBeCloseTo(
        s.totalEvaluatedTokens / result.summary[0].totalEvaluatedTokens,
      );
      expect(s.wallMsRatio).toBeCloseTo(s.totalWallMs / result.summary[0].totalWallMs);
    }
    expect(result.summary[0].wallMsRatio).toBe(1);
    expect(result.summary[2].evaluatedTokensRatio).toBeGreaterThan(1);
  });

  it("measures regurgitation against the index (lowercased re-tokenization)", async () => {
    for (const row of result.rows) {
      const r = regurgitation(index, await index.tokenizeQuery(model, row.text.trimStart()), { n: 8 });
      expect(row.metrics.regurgitation).toEqual({
        share8: r.share,
        ngrams: r.ngrams,
        found: r.found,
        longestSpan: r.longestSpan,
      });
    }
    // Greedy's first output is in the corpus (lowercased): all of its 8-grams are found.
    const first = result.rows[0].metrics.regurgitation;
    expect(greedyText).toMatch(/[A-Z]/);
    expect(first?.share8).toBe(1);
    expect(first?.longestSpan).toBe((await index.tokenizeQuery(model, greedyText.trimStart())).length);
    expect(result.summary[0].regurgitation?.maxLongestSpan).toBe(first?.longestSpan);
  });

  it("prints a table with ratio and regurgitation columns, and a plot spec with one point per strategy", async () => {
    const table = formatTable(result.summary);
    const lines = table.split("\n");
    expect(lines[0]).toMatch(
      /^strategy\s+soft cov\s+hard cov\s+words\s+logprob\/tok\s+min lp\s+salad\s+rep4\s+eval tok\/task\s+wall ms\/task\s+tok × greedy\s+wall × greedy\s+8-gram share\s+longest span\s+max span$/,
    );
    expect(lines).toHaveLength(2 + STRATEGIES.length);
    expect(lines[2]).toMatch(/^greedy\s.*\s1\.00×\s+1\.00×\s/);
    expect(lines[4].startsWith("beam:width=2 ")).toBe(true);
    const noIndex = formatTable(result.summary.map(({ regurgitation: _r, ...s }) => s));
    expect(noIndex).not.toContain("8-gram");
    const spec = qualityVsCostSpec(result.summary) as unknown as {
      data: { values: { strategy: string }[] };
      hconcat: unknown[];
    };
    expect(spec.data.values.map((v) => v.strategy)).toEqual(STRATEGIES);
    // Cost panels, and hard coverage against the word-salad share.
    expect(spec.hconcat).toHaveLength(3);
    // Greedy's worst token is the model's own choice: no word salad.
    expect(result.summary[0].fluency.saladShare).toBe(0);
    expect(result.summary[0].fluency.meanMinLogprob).toBeLessThan(0);
  });

  it("rejects unknown strategies, bad parameters, duplicates and a mismatched budget before decoding", async () => {
    const before = model.usage.evaluatedTokens;
    await expect(runEval(model, tasks, ["greedy", "nope"])).rejects.toThrow(/unknown strategy "nope"/);
    await expect(runEval(model, tasks, ["beam:width=0"])).rejects.toThrow(/width must be an integer ≥ 1/);
    await expect(runEval(model, tasks, ["greedy", "greedy"])).rejects.toThrow(/listed twice/);
    await expect(runEval(model, [], ["greedy"])).rejects.toThrow(/no tasks/);
    expect(model.usage.evaluatedTokens).toBe(before);
  });

  it("stops when aborted", async () => {
    const controller = new AbortController();
    const seen: number[] = [];
    const run = runEval(model, tasks, ["greedy", "beam:width=2"], {
      signal: controller.signal,
      onProgress: (p) => {
        seen.push(p.done);
        if (p.done === 2) controller.abort();
      },
    });
    await expect(run).rejects.toThrow(/aborted/);
    expect(Math.max(...seen)).toBeLessThan(6);
  });
});
