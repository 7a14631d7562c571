import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliPath, runCli, sharedPath, testModelPath } from "./helpers.js";

let tmp: string;
let tasksFile: string;
let indexDir: string;

const tiller = (args: string[]) => runCli(args);

const TASKS = [
  { id: "t1", prompt: "Once upon a time", keywords: ["dog", "ball"], maxTokens: 16 },
  { id: "t2", prompt: "It was a sunny day.", keywords: ["park"], maxTokens: 16, minWords: 4, maxWords: 12 },
  { id: "t3", prompt: "The little bird", keywords: ["tree"], maxTokens: 16 },
];

beforeAll(async () => {
  if (!fs.existsSync(cliPath)) throw new Error(`${cliPath} not found: run \`npm run build\` first`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tiller-eval-cli-"));
  tasksFile = path.join(tmp, "tasks.jsonl");
  fs.writeFileSync(tasksFile, `${TASKS.map((t) => JSON.stringify(t)).join("\n")}\n`);
  const corpus = path.join(tmp, "slice.txt");
  const text = fs.readFileSync(sharedPath("corpora/tinystories-4m.txt"), "utf8").slice(0, 100_000);
  fs.writeFileSync(corpus, text.slice(0, text.lastIndexOf("\n\n")));
  indexDir = path.join(tmp, "idx");
  const r = await tiller([
    "index",
    "build",
    "--model",
    testModelPath(),
    "--threads",
    "1",
    "--corpus",
    corpus,
    "--out",
    indexDir,
    "--lowercase",
  ]);
  expect(r.status, r.stderr).toBe(0);
});

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const base = () => ["eval", "--model", testModelPath(), "--threads", "1", "--tasks", tasksFile];

describe("tiller eval", () => {
  it("prints the table and writes results.jsonl, summary.json and the plot", async () => {
    const out = path.join(tmp, "out", "nested");
    const r = await tiller([
      ...base(),
      "--strategies",
      "greedy,sample:temperature=0.8,seed=3,beam:width=2",
      "--out",
      out,
      "--index",
      indexDir,
      "--limit",
      "2",
    ]);
    expect(r.status, r.stderr).toBe(0);
    const strategies = ["greedy", "sample:temperature=0.8,seed=3", "beam:width=2"];
    const lines = r.stdout.split("\n");
    const header = lines.findIndex((l) => l.startsWith("strategy "));
    expect(lines[0]).toMatch(
      /^stories260K\.gguf: 2 task\(s\) × 3 strategies, sequential-by-strategy, cold cache/,
    );
    for (const col of [
      "soft cov",
      "hard cov",
      "words",
      "logprob/tok",
      "eval tok/task",
      "wall ms/task",
      "tok × greedy",
      "wall × greedy",
      "8-gram share",
      "longest span",
    ])
      expect(lines[header]).toContain(col);
    expect(lines.slice(header + 2, header + 5).map((l) => l.split(/\s{2,}/)[0])).toEqual(strategies);
    expect(lines[header + 2]).toMatch(/1\.00×\s+1\.00×/);

    const rows = fs
      .readFileSync(path.join(out, "results.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(rows.map((row) => `${row.strategy}/${row.taskId}`)).toEqual(
      strategies.flatMap((s) => [`${s}/t1`, `${s}/t2`]),
    );
    for (const row of rows) {
      expect(typeof row.text).toBe("string");
      expect(row.metrics.softCoverage).toBeGreaterThanOrEqual(0);
      expect(row.metrics.evaluatedTokens).toBeGreaterThan(0);
      expect(row.metrics.regurgitation.share8).toBeGreaterThanOrEqual(0);
      expect(row.metrics.regurgitation.share8).toBeLessThanOrEqual(1);
    }

    const summary = JSON.parse(fs.readFileSync(path.join(out, "summary.json"), "utf8"));
    expect(summary.taskCount).toBe(2);
    expect(summary.strategies.map((s: { strategy: string }) => s.strategy)).toEqual(strategies);
    const greedyRows = rows.filter((row) => row.strategy === "greedy");
    expect(summary.strategies[0].totalEvaluatedTokens).toBe(
      greedyRows.reduce(
        (a: number, row: { metrics: { evaluatedTokens: number } }) => a + row.metrics.evaluatedTokens,
        0,
      ),
    );
    expect(summary.strategies[2].evaluatedTokensRatio).toBeGreaterThan(1);
    expect(summary.strategies[0].regurgitation).toBeDefined();

    const svg = fs.readFileSync(path.join(out, "quality-vs-cost.svg"), "utf8");
    expect(svg).toMatch(/^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(svg.trimEnd().endsWith("</svg>")).toBe(true);
    for (const s of strategies) expect(svg).toContain(`>${s}<`);
    const png = fs.readFileSync(path.join(out, "quality-vs-cost.png"));
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(png.length).toBeGreaterThan(5000);
  });

  it("--json prints the summary", async () => {
    const out = path.join(tmp, "json");
    const r = await tiller([...base(), "--strategies", "greedy", "--out", out, "--json", "--limit", "1"]);
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.strategies).toHaveLength(1);
    expect(summary.strategies[0].strategy).toBe("greedy");
    expect(summary.strategies[0].regurgitation).toBeUndefined();
    expect(summary).toEqual(JSON.parse(fs.readFileSync(path.join(out, "summary.json"), "utf8")));
  });

  it("rejects bad input with one clear line and a non-zero exit", async () => {
    const out = path.join(tmp, "bad");
    const bad = path.join(tmp, "bad.jsonl");
    fs.writeFileSync(bad, `${JSON.stringify(TASKS[0])}\n{"id": "x", "keywords": ["a"], "maxTokens": 4}\n`);
    const cases: [string[], RegExp][] = [
      [
        [...base(), "--strategies", "greedy,nope", "--out", out],
        /^tiller: unknown strategy "[^"]*nope".*valid: greedy/,
      ],
      [
        [...base(), "--strategies", "beam:width=0", "--out", out],
        /^tiller: beam: width must be an integer ≥ 1, got "0"$/,
      ],
      [
        [...base(), "--strategies", "beam:depth=3", "--out", out],
        /^tiller: strategy "beam" has no parameter "depth"; valid: width/,
      ],
      [
        [
          "eval",
          "--model",
          testModelPath(),
          "--tasks",
          path.join(tmp, "missing.jsonl"),
          "--strategies",
          "greedy",
          "--out",
          out,
        ],
        /^tiller: task file not found: .*missing\.jsonl$/,
      ],
      [
        ["eval", "--model", testModelPath(), "--tasks", bad, "--strategies", "greedy", "--out", out],
        /^tiller: .*bad\.jsonl:2: field "prompt" is missing$/,
      ],
      [
        [...base(), "--strategies", "greedy", "--out", out, "--index", path.join(tmp, "no-index")],
        /^tiller: .*no-index/,
      ],
      [[...base(), "--strategies", "greedy", "--out", out, "--limit", "0"], /--limit.*positive integer/],
      [[...base(), "--out", out], /required option '(-s, )?--strategies <list>'/],
    ];
    for (const [args, pattern] of cases) {
      const r = await tiller(args);
      expect(r.status, args.join(" ")).not.toBe(0);
      expect(r.stderr.split("\n")[0], args.join(" ")).toMatch(pattern);
      expect(r.stderr).not.toMatch(/internal error|at .*\.js:\d+/);
      expect(r.stdout).toBe("");
    }
    expect(fs.existsSync(path.join(out, "results.jsonl"))).toBe(false);
  });
});
