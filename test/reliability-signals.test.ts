/**
 * Issue 9, class 4: every long run is interruptible. SIGINT/SIGTERM sent to a spawned CLI stop it
 * within a second with exit 130 and nothing half-written; a run that already finished its work
 * exits 0; user regexes (--doc-sep) run on RE2, so no pattern can hang a build.
 */
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IndexBuilder } from "../src/provenance/builder.js";
import { sharedPath } from "./helpers.js";
import {
  assertBuilt,
  interrupt,
  modelArgs,
  modelLoaded,
  oneLine,
  runCliAsync,
  spawnCli,
} from "./reliability-cli.js";

let tmp: string;
beforeAll(() => {
  assertBuilt();
  tmp = fs.mkdtempSync(path.join(tmpdir(), "tiller-signals-"));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The abort contract: exit 130 within a second of the signal, one line on stderr. */
function expectAborted(r: { status: number | null; stderr: string; afterSignalMs: number }): void {
  expect(r.status, r.stderr).toBe(130);
  expect(r.stderr).toMatch(/(^|\n)tiller: aborted[^\n]*\n$/);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.afterSignalMs).toBeLessThan(1000);
}

describe("signals stop long runs within a second", () => {
  it("SIGTERM during winrate's bootstrap resampling", async () => {
    const tasks = path.join(tmp, "tasks.jsonl");
    fs.writeFileSync(
      tasks,
      `${["a", "b"].map((id) => JSON.stringify({ id, prompt: "Once upon a time", keywords: ["dog"], maxTokens: 8 })).join("\n")}\n`,
    );
    const running = spawnCli([
      "winrate",
      ...modelArgs(),
      "--tasks",
      tasks,
      "--policy",
      "sample",
      "--m",
      "8",
      "--samples",
      "2",
      "--resamples",
      "400000",
      "--no-cache",
    ]);
    await running.waitFor(/winrate: bootstrap/);
    await new Promise((r) => setTimeout(r, 300)); // well inside the resampling loop
    expectAborted(await interrupt(running, "SIGTERM"));
  }, 120_000);

  it("SIGINT while index build tokenizes: no index and no staging folder are left", async () => {
    const out = path.join(tmp, "idx-int");
    const running = spawnCli([
      "index",
      "build",
      ...modelArgs(),
      "--corpus",
      sharedPath("corpora/tinystories-4m.txt"),
      "--out",
      out,
    ]);
    await modelLoaded(running);
    // Early, while the 4 MB corpus is still being tokenized (a few seconds even on an idle core);
    // the suffix-array phase after it is covered by reliability-suffix-array.test.ts.
    await new Promise((r) => setTimeout(r, 400));
    expect(running.child.exitCode, running.stderr).toBeNull();
    expectAborted(await interrupt(running, "SIGINT"));
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(tmp).filter((f) => f.startsWith(".idx-int."))).toEqual([]);
  }, 120_000);

  it("SIGTERM during a Best-of-N search (align)", async () => {
    const running = spawnCli([
      "align",
      ...modelArgs(),
      "-p",
      "Once upon a time",
      "-r",
      "keywords:dog",
      "-s",
      "bon:n=64",
      "-n",
      "128",
    ]);
    await modelLoaded(running);
    await new Promise((r) => setTimeout(r, 2000)); // 64 samples of 128 tokens take over 10 s
    expect(running.child.exitCode, running.stderr).toBeNull();
    const r = await interrupt(running, "SIGTERM");
    expectAborted(r);
    expect(r.stdout).toBe("");
  }, 60_000);

  it("a signal after index build finished writing does not turn success into 130", async () => {
    const corpus = path.join(tmp, "small.txt");
    fs.writeFileSync(corpus, "Once upon a time there was a cat.\n\nThe dog ran to the park.\n");
    const out = path.join(tmp, "idx-done");
    const running = spawnCli(["index", "build", ...modelArgs(), "--corpus", corpus, "--out", out]);
    await modelLoaded(running);
    await running.waitFor(/index written/);
    const r = await interrupt(running, "SIGINT");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe("");
    expect(fs.existsSync(path.join(out, "header.json"))).toBe(true);
  }, 60_000);

  it("the index write phase stops on its signal and leaves no staging folder", async () => {
    const builder = new IndexBuilder({
      vocabularySize: 512,
      model: { id: "m", fileName: "m.gguf", tokenizerFingerprint: "f" },
    });
    for (let d = 0; d < 2000; d++)
      builder.addDocument(Array.from({ length: 500 }, (_, i) => (i * 7 + d) % 512));
    const controller = new AbortController();
    const out = path.join(tmp, "lib-idx");
    const writing = builder.write(out, {
      signal: controller.signal,
      onPhase: (phase) => {
        if (phase === "write") controller.abort();
      },
    });
    await expect(writing).rejects.toMatchObject({ code: "aborted" });
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(tmp).filter((f) => f.startsWith(".lib-idx."))).toEqual([]);
  });
});

describe("--doc-sep runs on RE2", () => {
  it("a catastrophic-backtracking pattern on a crafted corpus finishes in seconds", async () => {
    const corpus = path.join(tmp, "evil.txt");
    // Each "aaa…ab" line makes JavaScript's RegExp try 2^40 ways to split the a's.
    const evil = `${"a".repeat(40)}b`;
    fs.writeFileSync(corpus, `Once upon a time.\n${evil}\nThe dog ran.\naaaa\nThe cat sat.\n${evil}\n`);
    const out = path.join(tmp, "idx-evil");
    const r = await runCliAsync(
      ["index", "build", ...modelArgs(), "--corpus", corpus, "--out", out, "--doc-sep", "^(a+)+$"],
      { timeoutMs: 60_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.ms).toBeLessThan(30_000);
    // "aaaa" separates; the evil lines do not match (they end in b) and stay in their documents.
    expect(JSON.parse(fs.readFileSync(path.join(out, "header.json"), "utf8")).documents).toBe(2);
  }, 90_000);

  it("a Perl-only pattern (lookahead) is one line naming RE2", async () => {
    const corpus = path.join(tmp, "evil.txt");
    const r = await runCliAsync([
      "index",
      "build",
      ...modelArgs(),
      "--corpus",
      corpus,
      "--out",
      path.join(tmp, "idx-look"),
      "--doc-sep",
      "^(?=x)",
    ]);
    expect(r.status).toBe(2);
    expect(oneLine(r.stderr), r.stderr).toBe(true);
    expect(r.stderr).toMatch(/--doc-sep: .*lookaround .*RE2/);
  });
});
