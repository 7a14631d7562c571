/**
 * Library fuzz cases: calls into the built library (dist/) with malformed arguments, each the body
 * of an async function of (lib, util, model, fx). A TillerError is the expected way to fail; any
 * other error (TypeError, RangeError, …) is a crash. Covered: rewards (specs, mix, custom rewards,
 * non-finite values), task files, trace indexes, generate/align options, model loading, runEval and
 * estimateWinRates options, every strategy's abort (a TillerError "aborted" with a partial result),
 * and the write/read utilities.
 */
import type { Rng } from "./rng.js";
import type { FuzzCase } from "./types.js";

const J = JSON.stringify;
const JUNK_VALUES = [
  "NaN",
  "Infinity",
  "-Infinity",
  "undefined",
  "null",
  '"1"',
  "{}",
  "[]",
  "1e308 * 10",
  "-0",
];
const JUNK_SPECS = [
  "",
  "keywords",
  "keywords:",
  "length:9-1w",
  "regex:must:(",
  "regex:not:(?<=a)b",
  "lexicon:/dev/zero",
  "judge",
  "2*3*keywords:a",
  "keywords:a;b;c",
  "sentiment:",
  " ",
  "\u0000",
  "NaN*sentiment",
  "length:99999999999999999999-1e999w",
];
const JUNK_STRATEGIES = [
  "",
  "deal:k=",
  "bon:n=-1",
  "beam:width=abc",
  "x:y=z",
  "deal:k=2,k=3",
  "sample:topP=NaN",
  ":::",
];
const JUNK_OPTIONS = [
  "null",
  "42",
  "{}",
  '{ prompt: "" }',
  "{ prompt: 5 }",
  '{ prompt: "Once", maxTokens: NaN }',
  '{ prompt: "Once", maxTokens: -1 }',
  '{ prompt: "Once", maxTokens: "8" }',
  '{ prompt: "Once", maxTokens: 1e12 }',
  '{ prompt: "Once", stopStrings: [""] }',
  '{ prompt: "Once", stopStrings: "." }',
  '{ prompt: "Once", signal: {} }',
  '{ prompt: "Once", onEvent: 1 }',
  '{ prompt: "Once", chat: "maybe" }',
  '{ prompt: "Once", max_tokens: 8 }',
  '{ prompt: "Once", sampling: { topP: 0 } }',
  '{ prompt: "Once", draftTokens: 0 }',
];
const ALL_STRATEGIES = [
  "greedy",
  "sample",
  "beam:width=2",
  "deal:k=2,l=2",
  "bon:n=3",
  "won:n=3",
  "speculative:draft=prompt",
  "ambedkar",
];
/** Aborts `align` with `strategy` (before it starts or on its first event) and checks the contract. */
const abortCase = (strategy: string, pre: boolean) => `
  const c = new AbortController();
  ${pre ? "c.abort();" : "setTimeout(() => c.abort(), 50);"}
  try {
    await lib.align(model, { prompt: "Once upon a time", reward: lib.keywordsReward(["dog"]), strategy: ${J(strategy)}, maxTokens: 300, signal: c.signal,
      onEvent: (e) => { if (e.type === "text" || e.type === "step") c.abort(); } });
  } catch (error) {
    if (lib.isTillerError(error) && error.code === "aborted" && typeof error.partial?.text === "string" && Array.isArray(error.partial?.tokens)) return;
    if (lib.isTillerError(error)) throw new Error("aborted without the contract: " + error.code + " " + error.message);
    throw error;
  }
  throw new Error("an aborted align resolved");`;

const JUNK_TASK_TEXT = [
  "",
  "\n\n",
  "{",
  "[]",
  "null",
  J({ id: 1 }),
  `${J({ id: "a", prompt: "p", keywords: [], maxTokens: 1 })}`,
  "\u0000",
];

let nextId = 100_000;
const libCase = (cls: string, code: string, control = false): FuzzCase => ({
  id: ++nextId,
  cls,
  kind: "lib",
  args: [],
  code,
  control,
  timeoutMs: 60_000,
});

export function libraryCase(rng: Rng): FuzzCase {
  const value = rng.pick(JUNK_VALUES);
  switch (rng.int(0, 13)) {
    case 0:
      return libCase("lib rewards", `lib.parseRewardSpec(${J(rng.pick(JUNK_SPECS))});`);
    case 1:
      return libCase(
        "lib rewards",
        `lib.parseRewardSpecs([${J(rng.pick(JUNK_SPECS))}, "keywords:dog"], ${rng.pick(["undefined", '["1"]', '["x", "y"]', '["NaN", "1"]'])});`,
      );
    case 2:
      return libCase(
        "lib rewards",
        `const bad = lib.defineReward({ name: "bad", description: "", score: () => ${value} });
         const m = lib.mix([{ reward: lib.keywordsReward(["dog"]), weight: 1 }, { reward: bad, weight: ${rng.pick(["1", "0.5", "-2"])} }]);
         await m.score({ prompt: "p", text: "a dog", tokens: [], finished: true });`,
      );
    case 3:
      return libCase(
        "lib rewards",
        rng.pick([
          `lib.defineReward(${rng.pick(["null", "42", "{}", '{ name: "" }', '{ name: "x" }'])});`,
          `lib.mix(${rng.pick(["null", "[{}]", "[{ reward: 1, weight: 1 }]", '[{ reward: lib.sentimentReward(), weight: "x" }]'])});`,
          `await lib.scoreAll({ name: "b", description: "", score: () => 0, scoreBatch: async () => [${value}] }, [{ prompt: "", text: "x", tokens: [], finished: true }]);`,
        ]),
      );
    case 4:
      return libCase("lib strategies", `lib.parseStrategySpec(${J(rng.pick(JUNK_STRATEGIES))});`);
    case 5:
      return libCase(
        "lib tasks",
        rng.pick([
          `lib.parseTasks(${J(rng.pick(JUNK_TASK_TEXT))});`,
          `lib.readTasks(${rng.pick(["fx.dir", '"/dev/zero"', '"/nonexistent"', "fx.corpus + '/x'"])});`,
        ]),
      );
    case 6:
      return libCase(
        "lib index",
        rng.pick([
          `lib.TraceIndex.open(${rng.pick(["fx.dir", "fx.corpus", '"/nonexistent"', "fx.dir + '/idx-truncated'", "fx.dir + '/idx-bad-json'"])});`,
          `const idx = lib.TraceIndex.open(fx.index); idx.count([${rng.pick(["-1", "1e12", "NaN", "0.5", "65535"])}]); idx.attribute([1, 2, ${rng.pick(["-5", "NaN", "9e9"])}], { minLen: ${rng.pick(["0", "-1", "NaN", "2"])} });`,
        ]),
      );
    case 7:
      return libCase(
        "lib generate",
        `await lib.generate(model, ${rng.pick([
          "null",
          "{}",
          '{ prompt: "" }',
          "{ prompt: 5 }",
          '{ prompt: "Once", maxTokens: NaN }',
          '{ prompt: "Once", maxTokens: -1 }',
          '{ prompt: "Once", maxTokens: "8" }',
          '{ prompt: "Once", stopStrings: [""] }',
          '{ prompt: "Once", strategy: "deal" }',
          '{ prompt: "Once", maxTokens: 4, temperature: -1 }',
          '{ prompt: "Once", maxTokens: 4, topP: 0 }',
        ])});`,
      );
    case 8:
      return libCase(
        "lib files",
        rng.pick([
          `util.writeFileAtomic(${rng.pick(['"/dev/full"', "fx.corpus + '/x'", "fx.dir", '"/nonexistent/dir/f"', '"/proc/version"'])}, "data");`,
          `util.AppendLog.open(${rng.pick(["fx.dir", "fx.corpus + '/x'", '"/nonexistent/x"'])}).append({ a: 1 });`,
          `util.readAppendLog(${rng.pick(["fx.dir", "fx.corpus", '"/dev/null"'])});`,
          `util.readInputText(${rng.pick(['"/dev/zero"', "fx.dir", '"/nonexistent"', "fx.dir + '/sparse.txt'"])}, "input");`,
        ]),
      );
    case 10:
      return libCase(
        "lib align",
        rng.pick([
          `await lib.align(model, ${rng.pick(JUNK_OPTIONS).replace(/^\{ prompt: "Once"/, '{ prompt: "Once", reward: lib.keywordsReward(["dog"]), strategy: "greedy"')});`,
          "await lib.align(model);",
          "await lib.align(undefined, {});",
          `await lib.align(model, { prompt: "Once", reward: ${rng.pick(["undefined", "{}", '{ name: "x" }', "42"])}, strategy: "greedy" });`,
          `await lib.align(model, { prompt: "Once", reward: lib.keywordsReward(["dog"]), strategy: ${rng.pick(['""', "42", "null", '"beam:width=99999999"', '"deal:k=99999999"'])} });`,
        ]),
      );
    case 11:
      // Every strategy aborts the same way: a TillerError "aborted" carrying the partial result.
      return {
        ...libCase("lib abort", abortCase(rng.pick(ALL_STRATEGIES), rng.int(0, 1) === 0)),
        control: true,
      };
    case 12:
      return libCase(
        "lib models",
        rng.pick([
          `await lib.loadModel(${rng.pick(["42", "null", '""', "{}", "[]"])});`,
          `await lib.openModel(${rng.pick(["42", "{}", "[1, 2]", "null"])});`,
          `await lib.loadModel(fx.model, ${rng.pick(["{ threads: 99999 }", "{ threads: 0 }", "{ threads: NaN }", '{ gpu: "yes" }', "{ sequences: 0 }", "{ contextSize: -1 }", "42"])});`,
          `await lib.generate(model, { prompt: "Once", strategy: "beam", beamWidth: ${rng.pick(["99999999", "0", "NaN"])} });`,
        ]),
      );
    case 13:
      return libCase(
        "lib eval",
        rng.pick([
          `await lib.runEval(model, ${rng.pick(['"tasks"', "[]", "[{}]", '[{ id: "a", prompt: "p", keywords: ["dog"], maxTokens: -1 }]'])}, ["greedy"]);`,
          `await lib.runEval(model, [{ id: "a", prompt: "p", keywords: ["dog"], maxTokens: 2 }], ${rng.pick(['"greedy"', "[]", '["nope"]', "[42]"])});`,
          `await lib.runEval(model, [{ id: "a", prompt: "p", keywords: ["dog"], maxTokens: 2 }], ["greedy"], ${rng.pick(['{ cache: "hot" }', "{ regurgitationN: NaN }", "{ signal: 1 }", "42"])});`,
          `await lib.estimateWinRates(model, { tasks: [{ id: "a", prompt: "p", maxTokens: 2 }], reward: lib.keywordsReward(["dog"]), policy: "sample", reference: { m: ${rng.pick(["0", "NaN", '"4"', "-1"])} } });`,
          `await lib.estimateWinRates(model, { tasks: ${rng.pick(["[]", "null", '[{ id: "a" }]'])}, reward: lib.keywordsReward(["dog"]), policy: "sample", reference: { m: 2 } });`,
        ]),
      );
    default:
      return libCase(
        "lib index",
        `await lib.buildIndex(model, [${rng.pick(["fx.dir", '"/dev/zero"', '"/nonexistent"', "fx.corpus"])}], ${rng.pick(["fx.dir", "fx.corpus + '/x'", "fx.index", "fx.dir + '/idx-no-header'"])}, { docSep: ${J(rng.pick(["(", "(a+)+$", "line", "^(?=x)"]))} });`,
      );
  }
}

/** Valid library calls: each must resolve. */
export function libraryControls(): FuzzCase[] {
  return [
    libCase(
      "control",
      `const r = await lib.generate(model, { prompt: "Once upon a time", maxTokens: 4 }); if (!r.text) throw new Error("no text");`,
      true,
    ),
    libCase("control", `lib.parseRewardSpecs(["keywords:dog,ball", "length:5-20w"], ["1", "0.5"]);`, true),
    libCase(
      "control",
      `const m = lib.mix([{ reward: lib.keywordsReward(["dog"]), weight: 1 }]); if (m.score({ prompt: "", text: "a dog", tokens: [], finished: true }) !== 1) throw new Error("score");`,
      true,
    ),
    libCase(
      "control",
      `const idx = lib.TraceIndex.open(fx.index); if (idx.documents !== 2) throw new Error("documents");`,
      true,
    ),
    libCase("control", `util.writeFileAtomic(fx.dir + "/lib-control.json", "{}");`, true),
    libCase(
      "control",
      `const r = await lib.align(model, { prompt: "Once upon a time", reward: lib.keywordsReward(["dog"]), strategy: "deal:k=2,l=2", maxTokens: 4, stopStrings: ["\\n\\n"] }); if (!r.text) throw new Error("no text");`,
      true,
    ),
    ...ALL_STRATEGIES.map((strategy) => libCase("control", abortCase(strategy, false), true)),
    libCase(
      "control",
      `lib.parseTasks(${J(`${J({ id: "a", prompt: "p", keywords: ["dog"], maxTokens: 4 })}\n`)});`,
      true,
    ),
  ];
}
