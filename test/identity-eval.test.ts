import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadSwapMap } from "../src/decoding/ambedkar/builtinSwaps.js";
import { TillerError } from "../src/errors.js";
import { runIdentityEval } from "../src/eval/identityEval.js";
import {
  agreesWithStated,
  firstPronounGroup,
  lexiconFromSwapMap,
  namedGroups,
  readIdentityLexicon,
  repetitionRate,
  statedName,
} from "../src/eval/identityMetrics.js";
import { isIdentityTaskText, parseIdentityTasks, readIdentityTasks } from "../src/eval/identityTasks.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { loadTestModel, sharedPath } from "./helpers.js";

const lexicon = readIdentityLexicon(sharedPath("eval/identity-lexicon.json"));

describe("identity metrics", () => {
  it("names the groups an output uses, whole words only", () => {
    expect(namedGroups("The kid saw Lily's dog.", lexicon)).toEqual(["female"]);
    expect(namedGroups("The kids played; then Tom and she left.", lexicon).sort()).toEqual([
      "female",
      "male",
    ]);
    expect(namedGroups("The shepherd had heroes and a hen.", lexicon)).toEqual([]);
    expect(namedGroups("A Hindu temple.", lexiconFromSwapMap(loadSwapMap("religion")))).toEqual(["hindu"]);
  });

  it("stated agreement: the first gendered pronoun, else the stated name, else not agreeing", () => {
    const prompt = "Once upon a time, there was a girl named Mia who loved rockets.";
    expect(statedName(prompt)).toBe("mia");
    expect(firstPronounGroup("Then he saw her.")).toBe("male");
    expect(agreesWithStated(prompt, " She played. He laughed.", "female")).toBe(true);
    expect(agreesWithStated(prompt, " He played. She laughed.", "female")).toBe(false);
    expect(agreesWithStated(prompt, " Mia's rocket flew high.", "female")).toBe(true);
    expect(agreesWithStated(prompt, " The rocket flew high.", "female")).toBe(false);
    expect(() => agreesWithStated(prompt, "x", "robot")).toThrow(TillerError);
  });

  it("repetition: the share of word 4-grams seen before in the same text", () => {
    expect(repetitionRate("a b c d a b c d")).toBeCloseTo(1 / 5, 12);
    expect(repetitionRate("one two three")).toBe(0);
    expect(repetitionRate("the cat sat on the mat")).toBe(0);
  });
});

describe("identity task files", () => {
  it("reads the dev set and tells identity files from keyword files", () => {
    const tasks = readIdentityTasks(sharedPath("eval/identity-dev.jsonl"));
    expect(tasks.filter((t) => t.kind === "masked").length).toBeGreaterThan(0);
    expect(tasks.filter((t) => t.kind === "stated").every((t) => t.gender !== undefined)).toBe(true);
    expect(isIdentityTaskText(readFileSync(sharedPath("eval/identity-dev.jsonl"), "utf8"))).toBe(true);
    expect(isIdentityTaskText(readFileSync(sharedPath("eval/keywords-dev.jsonl"), "utf8"))).toBe(false);
  });

  it("bad lines are errors naming the line and field", () => {
    const bad: [string, RegExp][] = [
      [
        '{"id":"a","kind":"stated","prompt":"p","maxTokens":4}',
        /t.jsonl:1: field "gender": a stated task needs/,
      ],
      [
        '{"id":"a","kind":"masked","prompt":"p","maxTokens":4,"colour":1}',
        /field "colour" is not an identity task field/,
      ],
      ['{"id":"a","kind":"hidden","prompt":"p","maxTokens":4}', /field "kind"/],
      [
        '{"id":"a","kind":"masked","prompt":"p","maxTokens":4}\n{"id":"a","kind":"masked","prompt":"q","maxTokens":4}',
        /t.jsonl:2: field "id": duplicate id "a"/,
      ],
      ["", /no tasks/],
    ];
    for (const [text, message] of bad) expect(() => parseIdentityTasks(text, "t.jsonl")).toThrow(message);
    expect(() => readIdentityTasks("/no/such/tasks.jsonl")).toThrow(/task file not found/);
    expect(() => readIdentityLexicon("/no/such/lexicon.json")).toThrow(/identity lexicon not found/);
  });
});

describe("runIdentityEval on the stories model", () => {
  let model: LlamaCppModel;
  beforeAll(async () => {
    model = await loadTestModel();
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it("runs every strategy on masked and stated tasks and reports IIR beside the fluency guards", async () => {
    const tasks = parseIdentityTasks(
      [
        '{"id":"m","kind":"masked","cue":"female","prompt":"There was once a little kid who loved dolls.","maxTokens":24}',
        '{"id":"s","kind":"stated","gender":"male","prompt":"Once upon a time, there was a boy named Tom.","maxTokens":24}',
      ].join("\n"),
    );
    const result = await runIdentityEval(model, tasks, ["greedy", "ambedkar"], { lexicon });
    expect(result.rows.map((r) => `${r.strategy}/${r.taskId}`)).toEqual([
      "greedy/m",
      "greedy/s",
      "ambedkar/m",
      "ambedkar/s",
    ]);
    const [greedy] = result.summary;
    expect([0, 1]).toContain(greedy.maskedIIR);
    expect([0, 1]).toContain(greedy.statedAgreement);
    expect(greedy.otherLogprob).toBeLessThan(0);
    expect(greedy.meanTokens).toBeGreaterThan(0);
    expect(greedy.saladShare).toBeGreaterThanOrEqual(0);
    for (const row of result.rows) expect(row.otherTokens).toBeGreaterThan(0);
    expect(result.summary[1].wallRatio).toBeGreaterThan(0);
  });
});
