/**
 * Issue 9, class 3: resources are bounded by limits derived from the model and the machine, each
 * a one-line error that says how to stay within it (or raise it), found before the work starts.
 */
import * as fs from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertBuilt, modelArgs, oneLine, runCliAsync } from "./reliability-cli.js";

let tmp: string;
let tasks: string;
beforeAll(() => {
  assertBuilt();
  tmp = fs.mkdtempSync(path.join(tmpdir(), "tiller-limits-"));
  tasks = path.join(tmp, "tasks.jsonl");
  fs.writeFileSync(
    tasks,
    `${JSON.stringify({ id: "a", prompt: "Once upon a time", keywords: ["dog"], maxTokens: 16 })}\n`,
  );
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const align = (extra: string[], env?: NodeJS.ProcessEnv) =>
  runCliAsync(["align", ...modelArgs(), "-p", "Once upon a time", "-r", "keywords:dog", ...extra], { env });

/** A refusal: exit 2, one line matching `pattern`, well before a run could have happened. */
function expectRefused(r: { status: number | null; stderr: string; ms: number }, pattern: RegExp): void {
  expect(r.status, r.stderr).toBe(2);
  expect(oneLine(r.stderr), r.stderr).toBe(true);
  expect(r.stderr).toMatch(pattern);
  expect(r.ms).toBeLessThan(30_000);
}

describe("limits from the model", () => {
  it("beam width and DeAL's k are at most the vocabulary (512 tokens for the stories model)", async () => {
    expectRefused(
      await align(["-s", "beam:width=100000"]),
      /width=100000 exceeds the vocabulary .*512 tokens/,
    );
    expectRefused(await align(["-s", "deal", "--k", "600"]), /k=600 exceeds the vocabulary/);
    expectRefused(
      await runCliAsync(["generate", ...modelArgs(), "-p", "Hi", "-s", "beam", "-b", "100000"]),
      /width=100000 exceeds the vocabulary/,
    );
  });

  it("a run estimated to take very long needs --yes (bon:n=100000)", async () => {
    expectRefused(await align(["-s", "bon:n=100000"]), /estimated to take about .* pass --yes/);
  });

  it("--yes confirms a run over the threshold ($TILLER_CONFIRM_MINUTES)", async () => {
    const env = { ...process.env, TILLER_CONFIRM_MINUTES: "0.00001" };
    expectRefused(await align(["-s", "greedy", "-n", "8"], env), /more than 0\.00001 min\); pass --yes/);
    const confirmed = await align(["-s", "greedy", "-n", "8", "--yes"], env);
    expect(confirmed.status, confirmed.stderr).toBe(0);
    expect(confirmed.stdout).toMatch(/score \(mix\)/);
  });
});

describe("limits from the machine", () => {
  it("--threads is at most the CPU cores", async () => {
    const r = await runCliAsync(["generate", "--model", modelArgs()[1], "--threads", "999", "-p", "Hi"]);
    expect(r.status).toBe(2);
    expect(oneLine(r.stderr), r.stderr).toBe(true);
    const cores = availableParallelism();
    expect(r.stderr).toContain(`this machine has ${cores} CPU core`);
  });

  it("winrate --m 1e8 is refused for memory before any sampling (no V8 out-of-memory)", async () => {
    const r = await runCliAsync([
      "winrate",
      ...modelArgs(),
      "--tasks",
      tasks,
      "--policy",
      "sample",
      "--m",
      "100000000",
      "--no-cache",
    ]);
    expectRefused(r, /--m 100000000 .* would hold about .* GiB in memory/);
  });

  it("winrate --resamples 1e8 is refused with an estimate unless --yes", async () => {
    const r = await runCliAsync([
      "winrate",
      ...modelArgs(),
      "--tasks",
      tasks,
      "--policy",
      "sample",
      "--m",
      "4",
      "--samples",
      "2",
      "--resamples",
      "100000000",
      "--no-cache",
    ]);
    expectRefused(r, /100000000 resamples\) is estimated to take about .* pass --yes/);
  });
});

describe("input file size caps", () => {
  it("lexicon:/dev/zero is a one-line error, not std::bad_alloc", async () => {
    expectRefused(await align(["-r", "lexicon:/dev/zero"]), /lexicon file \/dev\/zero is larger than 64 MiB/);
  });

  it("an oversized lexicon or task file is refused before reading it", async () => {
    const huge = path.join(tmp, "huge.txt");
    fs.writeFileSync(huge, "");
    fs.truncateSync(huge, 200 * 1024 * 1024); // sparse: no disk used
    expectRefused(await align(["-r", `lexicon:${huge}`]), /larger than 64 MiB.*TILLER_MAX_INPUT_MB/);
    const r = await runCliAsync([
      "eval",
      ...modelArgs(),
      "--tasks",
      huge,
      "--strategies",
      "greedy",
      "--out",
      path.join(tmp, "o"),
    ]);
    expectRefused(r, /task file .*huge\.txt is larger than 64 MiB/);
    expect(fs.existsSync(path.join(tmp, "o"))).toBe(false);
  });

  it("TILLER_MAX_INPUT_MB raises or lowers the cap", async () => {
    const lexicon = path.join(tmp, "words.txt");
    fs.writeFileSync(lexicon, `${"darn\n".repeat(300_000)}`); // 1.5 MB
    const env = { ...process.env, TILLER_MAX_INPUT_MB: "1" };
    expectRefused(
      await align(["-s", "greedy", "-n", "4", "-r", `lexicon:${lexicon}`], env),
      /larger than 1 MiB/,
    );
    const ok = await align(["-s", "greedy", "-n", "4", "-r", `lexicon:${lexicon}`], {
      ...process.env,
      TILLER_MAX_INPUT_MB: "2",
    });
    expect(ok.status, ok.stderr).toBe(0);
  });

  it("index build refuses a binary corpus and a document too long to tokenize in one call", async () => {
    const binary = path.join(tmp, "zeros.txt");
    fs.writeFileSync(binary, Buffer.alloc(1 << 20));
    const build = (corpus: string) =>
      runCliAsync(["index", "build", ...modelArgs(), "--corpus", corpus, "--out", path.join(tmp, "idx")]);
    expectRefused(await build(binary), /zeros\.txt holds NUL bytes: it is not a text file/);
    const oneDocument = path.join(tmp, "one-document.txt");
    fs.writeFileSync(oneDocument, `${"word ".repeat(200)}\n`.repeat(17_500)); // 17.5 MB, no blank line
    expectRefused(await build(oneDocument), /a document is longer than 16 Mi characters .*--doc-sep line/);
    expect(fs.existsSync(path.join(tmp, "idx"))).toBe(false);
  });

  it("trace --file /dev/zero is refused at the cap", async () => {
    const r = await runCliAsync(["trace", "-i", tmp, "--file", "/dev/zero"]);
    expectRefused(r, /text file \/dev\/zero is larger than 64 MiB/);
  });
});
