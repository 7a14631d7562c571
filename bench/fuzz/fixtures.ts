/**
 * The files the fuzz cases point at: a small corpus and its index, task files, lexicons, and
 * malformed variants of each (junk bytes, truncated model, corrupt index), in one temp folder.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface Fixtures {
  dir: string;
  model: string;
  cli: string;
  corpus: string;
  index: string;
  tasks: string;
  lexicon: string;
  /** Paths that exist but are wrong for any input: a folder, junk bytes, an empty file, … */
  badInputs: string[];
  /** Model files that are not loadable models. */
  badModels: string[];
  /** Folders that look like indexes but are not valid ones. */
  badIndexes: string[];
  /** Task files with malformed content. */
  badTasks: string[];
  /** Output paths that cannot be written. */
  badOutputs: string[];
  /** A fresh, not yet existing output path. */
  freshOut(): string;
}

export async function makeFixtures(repo: string, modelPath: string): Promise<Fixtures> {
  const dir = fs.mkdtempSync(path.join(tmpdir(), "tiller-fuzz-"));
  const file = (name: string, content: string | Buffer) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, content);
    return p;
  };
  const cli = path.join(repo, "dist/cli/main.js");
  const corpus = file(
    "corpus.txt",
    "Once upon a time there was a little dog named Max.\nMax liked to play with a red ball in the park.\n\nOne day, a girl named Lily found a shiny stone by the river.\nShe showed it to her mom, who smiled.\n",
  );
  const index = path.join(dir, "index");
  await run(process.execPath, [
    cli,
    "index",
    "build",
    "--model",
    modelPath,
    "--threads",
    "1",
    "--no-gpu",
    "--corpus",
    corpus,
    "--out",
    index,
  ]);
  const task = (id: string, extra: object = {}) =>
    JSON.stringify({ id, prompt: "Once upon a time", keywords: ["dog"], maxTokens: 8, ...extra });
  const tasks = file("tasks.jsonl", `${task("a")}\n${task("b")}\n`);
  const lexicon = file("lexicon.txt", "darn\nheck # mild\n");
  const junk = file("junk.bin", Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) % 256)));
  const empty = file("empty.txt", "");
  const sparse = file("sparse.txt", "");
  fs.truncateSync(sparse, 100 * 1024 * 1024);
  const model = fs.readFileSync(modelPath);
  const badModels = [
    file("truncated.gguf", model.subarray(0, 1000)),
    file("header-only.gguf", model.subarray(0, 64)),
    junk,
    empty,
    dir,
    path.join(dir, "missing.gguf"),
  ];
  const badIndexes = [dir, path.join(dir, "missing-index"), corpus];
  for (const [name, mutate] of [
    ["idx-bad-json", (d: string) => fs.writeFileSync(path.join(d, "header.json"), "{not json")],
    ["idx-truncated", (d: string) => fs.truncateSync(path.join(d, "sa.bin"), 8)],
    ["idx-flipped", (d: string) => fs.appendFileSync(path.join(d, "tokens.bin"), "xx")],
    ["idx-no-header", (d: string) => fs.rmSync(path.join(d, "header.json"))],
  ] as const) {
    const copy = path.join(dir, name);
    fs.cpSync(index, copy, { recursive: true });
    mutate(copy);
    badIndexes.push(copy);
  }
  const badTasks = [
    file("tasks-junk.jsonl", "{not json}\n"),
    file("tasks-array.jsonl", "[1,2,3]\n"),
    file("tasks-fields.jsonl", `${JSON.stringify({ id: "x", prompt: "p", max_tokens: 4 })}\n`),
    file("tasks-dup.jsonl", `${task("a")}\n${task("a")}\n`),
    file("tasks-empty-prompt.jsonl", `${task("a", { prompt: "" })}\n`),
    file("tasks-huge-max.jsonl", `${task("a", { maxTokens: 1e12 })}\n`),
    file("tasks-neg.jsonl", `${task("a", { maxTokens: -3 })}\n`),
    junk,
    empty,
    sparse,
    "/dev/zero",
    dir,
  ];
  let counter = 0;
  return {
    dir,
    model: modelPath,
    cli,
    corpus,
    index,
    tasks,
    lexicon,
    badInputs: [
      dir,
      junk,
      empty,
      sparse,
      "/dev/zero",
      "/dev/null",
      path.join(dir, "missing.txt"),
      path.join(corpus, "x"),
    ],
    badModels,
    badIndexes,
    badTasks,
    badOutputs: [
      "/dev/full",
      path.join(corpus, "out"),
      path.join(dir, "no", "such", "dir", "x"),
      "/proc/version/x",
      dir,
    ],
    freshOut: () => path.join(dir, `out-${++counter}`),
  };
}
