import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliPath, runCli, testModelPath } from "./helpers.js";

let tmp: string;
let corpus: string;
let indexDir: string;

const tiller = (args: string[], input?: string) => runCli(args, { input });

const DOCS = [
  "The lighthouse keeper Bartholomew polished the brass telescope every Tuesday at dawn.",
  "Seven crimson kites drifted over the marsh while the heron counted its reflections.",
  "A quiet librarian catalogued thunderstorms by the colour of their first lightning.",
];

beforeAll(async () => {
  if (!fs.existsSync(cliPath)) throw new Error(`${cliPath} not found: run \`npm run build\` first`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tiller-prov-cli-"));
  corpus = path.join(tmp, "corpus.txt");
  fs.writeFileSync(corpus, `${DOCS.join("\n\n")}\n`);
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
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/index written to .*: \d+ tokens in 3 documents/);
});

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe("tiller index / trace CLI", () => {
  it("index build writes a flat, checksummed directory", async () => {
    expect(fs.readdirSync(indexDir).sort()).toEqual(["header.json", "sa.bin", "tokens.bin", "unigrams.bin"]);
    const h = JSON.parse(fs.readFileSync(path.join(indexDir, "header.json"), "utf8"));
    expect(h).toMatchObject({ format: "tiller-trace-index", version: 2, tokenWidth: 2, documents: 3 });
    expect(h.build.lowercase).toBe(true);
    expect(h.model.fileName).toBe("stories260K.gguf");
    // No staging directories left behind.
    expect(fs.readdirSync(tmp).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });

  it("index query --json counts and attributes (model recorded in the header)", async () => {
    const r = await tiller([
      "index",
      "query",
      "--index",
      indexDir,
      "--threads",
      "1",
      "--text",
      "Seven crimson kites drifted over",
      "--json",
    ]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.count).toBe(1);
    expect(out.occurrences[0]).toMatchObject({ document: 1, offset: 0 });
    expect(out.spans).toHaveLength(1);
    expect(out.spans[0].examples[0].document).toBe(1);
  });

  it("index query prints spans with their source", async () => {
    const r = await tiller([
      "index",
      "query",
      "--index",
      indexDir,
      "--model",
      testModelPath(),
      "--threads",
      "1",
      "--text",
      "so a quiet librarian catalogued thunderstorms",
    ]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/count 0/);
    expect(r.stdout).toMatch(/quiet librarian catalogued thunderstorms" count 1 BCI \d+\.\d/);
    expect(r.stdout).toMatch(/doc 2 \(corpus\.txt\)/);
  });

  it("trace refuses a copied passage and passes a novel one (text, file, stdin)", async () => {
    const copied = await tiller([
      "trace",
      "--index",
      indexDir,
      "--model",
      testModelPath(),
      "--threads",
      "1",
      "--text",
      DOCS[0],
      "--json",
    ]);
    expect(copied.status).toBe(0);
    const v = JSON.parse(copied.stdout);
    expect(v.verdict).toBe("refuse");
    expect(v.spans[0].source.document).toBe(0);
    expect(v.spans[0].source.excerpt).toContain("lighthouse keeper");

    const file = path.join(tmp, "novel.txt");
    fs.writeFileSync(file, "A purple walrus solved the crossword in Lisbon.");
    const novel = await tiller([
      "trace",
      "--index",
      indexDir,
      "--model",
      testModelPath(),
      "--threads",
      "1",
      "--file",
      file,
      "--json",
    ]);
    expect(JSON.parse(novel.stdout).verdict).toBe("pass");

    const piped = await tiller(
      ["trace", "--index", indexDir, "--model", testModelPath(), "--threads", "1", "--tau", "1000"],
      DOCS[2],
    );
    expect(piped.status).toBe(0);
    expect(piped.stdout).toMatch(/PASS: max BCI \d+\.\d ≤ τ 1000/);
    expect(piped.stdout).toMatch(/count 1, BCI/);
    const human = await tiller([
      "trace",
      "--index",
      indexDir,
      "--model",
      testModelPath(),
      "--threads",
      "1",
      "--text",
      DOCS[2],
    ]);
    expect(human.stdout).toMatch(/REFUSE: max BCI \d+\.\d > τ 20/);
  });

  it("fails with one line for a missing index, a corrupt file, and a missing corpus", async () => {
    const missing = await tiller([
      "index",
      "query",
      "--index",
      path.join(tmp, "nope"),
      "--tokens",
      "1,2",
      "--json",
    ]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/^tiller: no trace index at .*nope/);
    expect(missing.stderr.trim().split("\n")).toHaveLength(1);

    const bad = path.join(tmp, "bad");
    fs.cpSync(indexDir, bad, { recursive: true });
    const sa = path.join(bad, "sa.bin");
    const bytes = fs.readFileSync(sa);
    bytes[0] ^= 0xff;
    fs.writeFileSync(sa, bytes);
    const corrupt = await tiller(["trace", "--index", bad, "--model", testModelPath(), "--text", "hello"]);
    expect(corrupt.status).toBe(2);
    expect(corrupt.stderr).toMatch(/^tiller: trace index file .*sa\.bin fails its checksum/);

    const build = await tiller([
      "index",
      "build",
      "--model",
      testModelPath(),
      "--corpus",
      path.join(tmp, "absent.txt"),
      "--out",
      path.join(tmp, "x"),
    ]);
    expect(build.status).toBe(2);
    expect(build.stderr).toMatch(/^tiller: cannot read corpus file .*absent\.txt/);
    expect(fs.existsSync(path.join(tmp, "x"))).toBe(false);
  });
});
