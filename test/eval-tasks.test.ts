import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { TillerError } from "../src/errors.js";
import { taskReward } from "../src/eval/taskReward.js";
import { parseTasks, readTasks } from "../src/eval/tasks.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tiller-eval-tasks-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function errorOf(fn: () => unknown): TillerError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TillerError);
    return error as TillerError;
  }
  throw new Error("expected an error");
}

const good = '{"id": "a", "prompt": "Once upon a time", "keywords": ["dog", "ball"], "maxTokens": 32}';

describe("task files", () => {
  it("reads tasks, skipping blank lines, with defaults and optional length window", async () => {
    const tasks = parseTasks(
      `${good}\n\n  \n{"id":"b","prompt":"It was","keywords":[],"maxTokens":8,"minWords":3,"maxWords":9}\r\n`,
    );
    expect(tasks).toEqual([
      { id: "a", prompt: "Once upon a time", keywords: ["dog", "ball"], maxTokens: 32 },
      { id: "b", prompt: "It was", keywords: [], maxTokens: 8, minWords: 3, maxWords: 9 },
    ]);
  });

  it("reads the shared dev set", async () => {
    const file = path.resolve(__dirname, "../../shared/eval/keywords-dev.jsonl");
    if (!fs.existsSync(file)) return;
    const tasks = readTasks(file);
    expect(tasks.length).toBeGreaterThan(5);
    expect(tasks.every((t) => t.keywords.length > 0 && t.maxTokens > 0)).toBe(true);
  });

  it("names the file, line and field of each error", async () => {
    const cases: [string, RegExp][] = [
      [
        `${good}\n{"id": "b", "prompt": "x", "keywords": ["a"], "maxTokens": 8`,
        /^f\.jsonl:2: not valid JSON/,
      ],
      [`${good}\n{"id": "b", "keywords": ["a"], "maxTokens": 8}`, /^f\.jsonl:2: field "prompt" is missing$/],
      [`{"id": "a", "prompt": "p", "keywords": ["a"]}`, /^f\.jsonl:1: field "maxTokens" is missing$/],
      [`{"id": "a", "prompt": "p", "keywords": ["a"], "maxTokens": 0}`, /^f\.jsonl:1: field "maxTokens": /],
      [`{"id": "a", "prompt": "p", "keywords": ["a"], "maxTokens": 2.5}`, /^f\.jsonl:1: field "maxTokens": /],
      [`{"id": "a", "prompt": "p", "keywords": "dog", "maxTokens": 8}`, /^f\.jsonl:1: field "keywords": /],
      [
        `{"id": "a", "prompt": "p", "keywords": ["ok", "--"], "maxTokens": 8}`,
        /^f\.jsonl:1: field "keywords\.1": each keyword must contain a word character$/,
      ],
      [
        `{"id": "a", "prompt": "p", "keywords": [], "maxTokens": 8}`,
        /^f\.jsonl:1: field "keywords": a task needs at least one keyword, or minWords/,
      ],
      [`{"id": 3, "prompt": "p", "keywords": ["a"], "maxTokens": 8}`, /^f\.jsonl:1: field "id": /],
      [
        `{"id": "a", "prompt": "p", "keywords": ["a"], "max_tokens": 8, "maxTokens": 8}`,
        /^f\.jsonl:1: field "max_tokens" is not a task field \(valid: id, prompt, keywords, maxTokens, minWords, maxWords\)$/,
      ],
      [
        `{"id": "a", "prompt": "p", "keywords": ["a"], "maxTokens": 8, "minWords": 9, "maxWords": 3}`,
        /^f\.jsonl:1: field "maxWords": must be ≥ minWords$/,
      ],
      [`${good}\n\n${good}`, /^f\.jsonl:3: field "id": duplicate id "a" \(first on line 1\)$/],
      [
        `{"id": "a", "prompt": "", "keywords": ["a"], "maxTokens": 8}`,
        /^f\.jsonl:1: field "prompt": must be a non-empty string$/,
      ],
      [`["a"]`, /^f\.jsonl:1: a task must be a JSON object/],
      ["", /^f\.jsonl: no tasks/],
      ["\n  \n", /^f\.jsonl: no tasks/],
    ];
    for (const [text, pattern] of cases) {
      const error = errorOf(() => parseTasks(text, "f.jsonl"));
      expect(error.message, text).toMatch(pattern);
      expect(error.message).not.toContain("\n");
      expect(error.code).toBe("bad-task-file");
    }
  });

  it("reports a missing file", async () => {
    const missing = path.join(tmp, "nope.jsonl");
    const error = errorOf(() => readTasks(missing));
    expect(error.message).toBe(`task file not found: ${missing}`);
    expect(error.code).toBe("task-file-not-found");
  });

  it("reads a file and reports errors with its path", async () => {
    const file = path.join(tmp, "t.jsonl");
    fs.writeFileSync(file, `${good}\n{"id": "b"}\n`);
    expect(errorOf(() => readTasks(file)).message).toBe(`${file}:2: field "prompt" is missing`);
  });
});

describe("task reward", () => {
  const input = (text: string, finished = true) => ({ prompt: "p", text, tokens: [], finished });

  it("is soft keyword coverage with inflections when there is no window", async () => {
    const [task] = parseTasks('{"id":"a","prompt":"p","keywords":["dog","ball","tree"],"maxTokens":8}');
    const reward = taskReward(task);
    expect(reward.score(input("The dogs played."))).toBeCloseTo(1 / 3);
    expect(reward.score(input("A Dog, a ball and a tree."))).toBe(1);
    expect(reward.components?.map((c) => [c.reward.name, c.weight])).toEqual([["keywords", 1]]);
  });

  it("adds a length window with weight 1", async () => {
    const [task] = parseTasks(
      '{"id":"a","prompt":"p","keywords":["dog"],"maxTokens":8,"minWords":4,"maxWords":6}',
    );
    const reward = taskReward(task);
    expect(reward.components?.map((c) => [c.reward.name, c.weight])).toEqual([
      ["keywords", 1],
      ["length", 1],
    ]);
    expect(reward.score(input("the dog ran home fast"))).toBe(1);
    // 8 words, 2 over the window, centre 5: 1 − 2/5.
    expect(reward.score(input("the dog ran home fast and far away"))).toBeCloseTo(0.6);
    // Below the window: only penalised once finished.
    expect(reward.score(input("the dog", false))).toBe(1);
    expect(reward.score(input("the dog", true))).toBeCloseTo(1 - 2 / 5);
  });

  it("handles a one-sided window and length-only tasks", async () => {
    const [minOnly, maxOnly] = parseTasks(
      '{"id":"a","prompt":"p","maxTokens":8,"minWords":10}\n{"id":"b","prompt":"p","maxTokens":8,"maxWords":2}',
    );
    expect(taskReward(minOnly).score(input("one two three four five"))).toBeCloseTo(-0.5);
    expect(taskReward(minOnly).score(input("one two three four five", false))).toBe(0);
    expect(taskReward(maxOnly).score(input("one two three"))).toBeCloseTo(-0.5);
    expect(taskReward(maxOnly).score(input("one two"))).toBe(0);
  });
});
