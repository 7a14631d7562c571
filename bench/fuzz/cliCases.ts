/**
 * CLI fuzz cases: each command's valid invocation (a control that must succeed), and malformed
 * variants of it — bad values, unknown or duplicated flags, missing required ones, bad specs,
 * unreadable inputs, unwritable outputs, junk model and index files — which must fail cleanly.
 */
import type { Fixtures } from "./fixtures.js";
import type { Rng } from "./rng.js";
import type { FuzzCase } from "./types.js";

type ValueKind =
  | "int"
  | "num"
  | "text"
  | "strategy"
  | "reward"
  | "input"
  | "output"
  | "model"
  | "index"
  | "tasks"
  | "docsep";

interface CommandShape {
  name: string;
  /** The valid invocation (fresh output paths each call). */
  base: (fx: Fixtures) => string[];
  /** Options that can be mutated, with the kind of value they take. */
  options: Record<string, ValueKind>;
  required: string[];
  /** A server: once it says it is serving, it is stopped with SIGTERM (and must exit 0). */
  server?: boolean;
}

const BAD_NUMBERS = [
  "0",
  "-1",
  "1.5",
  "NaN",
  "Infinity",
  "-Infinity",
  "1e309",
  "",
  "abc",
  "0x10",
  "99999999999999999999",
  "-0",
  " 3",
  "1e3",
  "1e9",
  "2.",
  "--",
];
const BAD_TEXT = [
  "",
  " ",
  "\n",
  "é",
  "\u0001x", // (not NUL: an argument cannot hold one)
  "x".repeat(4000),
  "🙂🙂",
  "--json",
  "-p",
  "%s%n",
  "../../etc/passwd",
  "\\",
];
const BAD_STRATEGIES = [
  "",
  ":",
  "deal:",
  "deal:k",
  "deal:k=",
  "deal:k=abc",
  "deal:k=-1",
  "deal:k=0",
  "deal:nope=1",
  "bon:n=0",
  "bon:n=1e9",
  "beam:width=0",
  "beam:width=513",
  "beam:width=100000",
  "sample:temperature=-1",
  "sample:topP=2",
  "won:n=NaN",
  "greedy:x=1",
  "deal:paper=maybe",
  "nonsense",
  "deal:lambda=Infinity",
  "DEAL",
  "deal:k=1e400",
  "bon:n=100000",
  "deal:k=600",
  "sample:seed=1.5",
  "beam:alpha=-2",
  "deal:l=-1",
  "deal:b=0",
  ",,,",
  "greedy,greedy",
];
const BAD_REWARDS = [
  "",
  "keywords:",
  "keywords:,",
  "keywords:;hard",
  "keywords:dog;weird",
  "length:5-2w",
  "length:abc",
  "length:1-2x",
  "lexicon:",
  "lexicon:/nonexistent/x.txt",
  "lexicon:/dev/zero",
  "regex:must:(",
  "regex:maybe:x",
  "regex:not:(?=x)",
  "regex:must:",
  "judge:",
  "sentiment:x",
  "2*",
  "nan*keywords:dog",
  "*keywords:dog",
  "1e999*sentiment",
  "unknown:1",
  "keywords:!!!",
  "regex:must:(a+)+$",
  "-1*sentiment",
  "0*keywords:dog",
];
const BAD_DOCSEP = ["", "(", "^(?=x)", "\\1", "(a+)+$", "[", "line", "blank-line", "^$", "(?i)once"];

function badValue(kind: ValueKind, rng: Rng, fx: Fixtures): string {
  switch (kind) {
    case "int":
    case "num":
      return rng.pick(BAD_NUMBERS);
    case "text":
      return rng.pick(BAD_TEXT);
    case "strategy":
      return rng.pick(BAD_STRATEGIES);
    case "reward":
      return rng.chance(0.2) ? `lexicon:${rng.pick(fx.badInputs)}` : rng.pick(BAD_REWARDS);
    case "input":
      return rng.pick(fx.badInputs);
    case "output":
      return rng.pick(fx.badOutputs);
    case "model":
      return rng.pick(fx.badModels);
    case "index":
      return rng.pick(fx.badIndexes);
    case "tasks":
      return rng.pick(fx.badTasks);
    case "docsep":
      return rng.pick(BAD_DOCSEP);
  }
}

const MODEL_OPTIONS: Record<string, ValueKind> = {
  "--model": "model",
  "--threads": "int",
  "--context-size": "int",
};

export const COMMANDS: CommandShape[] = [
  {
    name: "generate",
    base: () => ["generate", "-p", "Once upon a time", "-n", "8"],
    options: {
      "-p": "text",
      "-n": "int",
      "-t": "num",
      "--top-k": "int",
      "--top-p": "num",
      "--seed": "int",
      "-b": "int",
      "--stop": "text",
      "-s": "text",
      ...MODEL_OPTIONS,
    },
    required: ["-p"],
  },
  {
    name: "align",
    base: () => ["align", "-p", "Once upon a time", "-r", "keywords:dog", "-s", "greedy", "-n", "8"],
    options: {
      "-p": "text",
      "-r": "reward",
      "-w": "num",
      "-s": "strategy",
      "-n": "int",
      "--k": "int",
      "--lookahead": "int",
      "--lambda": "num",
      "--beams": "int",
      "--n": "int",
      "-t": "num",
      "--top-p": "num",
      "--trace": "output",
      "--provenance": "index",
      "--tau": "num",
      "--window": "int",
      ...MODEL_OPTIONS,
    },
    required: ["-p"],
  },
  {
    name: "eval",
    base: (fx) => ["eval", "--tasks", fx.tasks, "--strategies", "greedy", "--out", fx.freshOut()],
    options: {
      "--tasks": "tasks",
      "--strategies": "strategy",
      "--out": "output",
      "--index": "index",
      "--limit": "int",
      "--cache": "text",
      ...MODEL_OPTIONS,
    },
    required: ["--tasks", "--strategies", "--out"],
  },
  {
    name: "index build",
    base: (fx) => ["index", "build", "--corpus", fx.corpus, "--out", fx.freshOut()],
    options: { "--corpus": "input", "--out": "output", "--doc-sep": "docsep", ...MODEL_OPTIONS },
    required: ["--corpus", "--out"],
  },
  {
    name: "index query",
    base: (fx) => ["index", "query", "-i", fx.index, "--text", "the red ball"],
    options: {
      "-i": "index",
      "--text": "text",
      "--tokens": "text",
      "--min-len": "int",
      "--max-count": "int",
      "--examples": "int",
      ...MODEL_OPTIONS,
    },
    required: ["-i"],
  },
  {
    name: "trace",
    base: (fx) => ["trace", "-i", fx.index, "--text", "Max liked to play with a red ball in the park."],
    options: {
      "-i": "index",
      "--text": "text",
      "--file": "input",
      "--tau": "num",
      "--min-len": "int",
      "--max-count": "int",
      ...MODEL_OPTIONS,
    },
    required: ["-i"],
  },
  {
    name: "pairs",
    base: (fx) => [
      "pairs",
      "-i",
      fx.index,
      "--tasks",
      fx.tasks,
      "--out",
      `${fx.freshOut()}.jsonl`,
      "--n",
      "2",
      "--max-tokens",
      "8",
    ],
    options: {
      "-i": "index",
      "--tasks": "tasks",
      "--out": "output",
      "--n": "int",
      "--tau": "num",
      "--max-tokens": "int",
      "-t": "num",
      "--seed": "int",
      ...MODEL_OPTIONS,
    },
    required: ["-i", "--tasks", "--out"],
  },
  {
    name: "serve",
    base: () => ["serve", "--port", "0", "--log-level", "silent"],
    options: {
      "--host": "text",
      "--port": "int",
      "--profiles": "input",
      "--api-key": "text",
      "--max-concurrent": "int",
      "--max-queue": "int",
      "--sequences": "int",
      "--index": "index",
      "--body-limit": "int",
      "--shutdown-timeout": "int",
      "--log-level": "text",
      ...MODEL_OPTIONS,
    },
    required: [],
    server: true,
  },
  {
    name: "playground",
    base: () => ["playground", "--no-open", "--port", "0", "--log-level", "silent"],
    options: {
      "--host": "text",
      "--port": "int",
      "--max-concurrent": "int",
      "--sequences": "int",
      "--index": "index",
      ...MODEL_OPTIONS,
    },
    required: [],
    server: true,
  },
  {
    name: "winrate",
    base: (fx) => [
      "winrate",
      "--tasks",
      fx.tasks,
      "--policy",
      "sample",
      "--m",
      "4",
      "--samples",
      "2",
      "--n",
      "2",
      "--resamples",
      "20",
      "--no-cache",
      "--json",
    ],
    options: {
      "--tasks": "tasks",
      "--policy": "strategy",
      "--m": "int",
      "--samples": "int",
      "--n": "int",
      "--resamples": "int",
      "-r": "reward",
      "--out": "output",
      "-t": "num",
      "--top-p": "num",
      ...MODEL_OPTIONS,
    },
    required: ["--tasks", "--policy"],
  },
];

/** Model flags for every run: the real stories model on one CPU thread. */
export function modelFlags(fx: Fixtures): string[] {
  return ["--model", fx.model, "--threads", "1", "--no-gpu"];
}

/** The valid invocation of `shape` with the model flags: what every case of it starts from. */
function validArgs(shape: CommandShape, fx: Fixtures): string[] {
  return [...shape.base(fx), ...modelFlags(fx)];
}

/** Sets `flag` to `value` in `args` (replacing its value when present, else appending). */
function setOption(args: string[], flag: string, value: string): void {
  const at = args.indexOf(flag);
  if (at >= 0 && at + 1 < args.length) args[at + 1] = value;
  else args.push(flag, value);
}

/** Removes `flag` and its value (`arity` 2), or a switch without one (`arity` 1), from `args`. */
function dropOption(args: string[], flag: string, arity: 1 | 2 = 2): void {
  const at = args.indexOf(flag);
  if (at >= 0) args.splice(at, arity);
}

/** One malformed invocation of `shape`: 1–3 mutations of its valid form. */
export function malformedArgs(shape: CommandShape, rng: Rng, fx: Fixtures): string[] {
  const args = validArgs(shape, fx);
  const flags = Object.keys(shape.options);
  const mutations = rng.int(1, 3);
  for (let i = 0; i < mutations; i++) {
    const roll = rng.next();
    if (roll < 0.55) {
      const flag = rng.pick(flags);
      setOption(args, flag, badValue(shape.options[flag], rng, fx));
    } else if (roll < 0.65) {
      args.push(rng.pick(["--bogus", "-Z", "--json=maybe", "stray-positional", "--", "-"]));
    } else if (roll < 0.75) {
      dropOption(args, rng.pick(shape.required));
    } else if (roll < 0.85) {
      const flag = rng.pick(flags);
      args.push(flag, badValue(shape.options[flag], rng, fx)); // given twice
    } else {
      setOption(args, "--model", rng.pick(fx.badModels));
    }
  }
  return args;
}

let nextId = 0;
const cliCase = (cls: string, args: string[], extra: Partial<FuzzCase> = {}): FuzzCase => ({
  id: ++nextId,
  cls,
  kind: "cli",
  args,
  control: false,
  timeoutMs: 120_000,
  ...extra,
});

/** The valid invocation of every command (must exit 0). */
export function controlCases(fx: Fixtures): FuzzCase[] {
  return COMMANDS.map((shape) =>
    cliCase("control", validArgs(shape, fx), { control: true, server: shape.server }),
  );
}

export function malformedCase(rng: Rng, fx: Fixtures): FuzzCase {
  const shape = rng.pick(COMMANDS);
  return cliCase(`cli ${shape.name}`, malformedArgs(shape, rng, fx), {
    // trace without --text reads stdin; give it something (sometimes nothing) to read.
    input: shape.name === "trace" ? rng.pick(["", "Max liked to play.", "\u0000\u0001"]) : undefined,
    server: shape.server,
  });
}

/** Output to a full disk or a closed reader: one line and exit 1 (or 0 for a closed pipe). */
export function stdoutCase(rng: Rng, fx: Fixtures): FuzzCase {
  const shape = rng.pick(COMMANDS.filter((s) => !s.server));
  return cliCase("cli stdout", validArgs(shape, fx), { stdoutToFull: true });
}

/**
 * Command `name`'s valid invocation made a longer run: `set` options changed (or added), `drop`
 * options and `switches` removed.
 */
function longerRun(
  name: string,
  fx: Fixtures,
  set: Record<string, string>,
  drop: { options?: string[]; switches?: string[] } = {},
): string[] {
  const shape = COMMANDS.find((s) => s.name === name);
  if (!shape) throw new Error(`fuzz: no command shape named ${name}`);
  const args = shape.base(fx);
  for (const [flag, value] of Object.entries(set)) setOption(args, flag, value);
  for (const flag of drop.options ?? []) dropOption(args, flag);
  for (const flag of drop.switches ?? []) dropOption(args, flag, 1);
  return [...args, ...modelFlags(fx)];
}

/** A valid, longer run interrupted by SIGINT or SIGTERM once the model is loaded (130, or 0 if done). */
export function interruptCase(rng: Rng, fx: Fixtures): FuzzCase {
  // Built in this order so that a seed draws the same cases as before (rng picks, fresh outputs).
  const runs = [
    longerRun("align", fx, { "-s": rng.pick(["bon:n=16", "deal", "beam:width=8"]), "-n": "64" }),
    longerRun("eval", fx, { "--strategies": "greedy,bon:n=4" }),
    longerRun("index build", fx, {}),
    longerRun(
      "winrate",
      fx,
      { "--m": "8", "--resamples": "20000" },
      { options: ["--n"], switches: ["--json"] },
    ),
    longerRun("generate", fx, { "-n": "200", "-s": rng.pick(["greedy", "sample", "beam"]) }),
    longerRun("pairs", fx, { "--n": "16", "--max-tokens": "64" }),
  ];
  return cliCase("cli interrupt", rng.pick(runs), {
    interrupt: { signal: rng.pick(["SIGINT", "SIGTERM"] as const), afterMs: rng.int(0, 2500) },
  });
}
