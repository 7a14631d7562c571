/**
 * Issue 9, class 2: output folders are never destroyed or overwritten silently. `index build`
 * replaces only a folder that is verifiably a tiller index and cleans up the staging folders of
 * dead builds; `eval`/`winrate --out` refuse a non-empty folder unless --force (or --resume).
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertBuilt, modelArgs, oneLine, runCliAsync } from "./reliability-cli.js";

let tmp: string;
let corpus: string;
let tasks: string;
beforeAll(() => {
  assertBuilt();
  tmp = fs.mkdtempSync(path.join(tmpdir(), "tiller-outdirs-"));
  corpus = path.join(tmp, "corpus.txt");
  fs.writeFileSync(
    corpus,
    "Once upon a time there was a cat.\n\nThe dog ran to the park and played with a ball.\n",
  );
  tasks = path.join(tmp, "tasks.jsonl");
  fs.writeFileSync(
    tasks,
    `${JSON.stringify({ id: "a", prompt: "Once upon a time", keywords: ["dog"], maxTokens: 8 })}\n`,
  );
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const build = (out: string) =>
  runCliAsync(["index", "build", ...modelArgs(), "--corpus", corpus, "--out", out]);

/** A pid that surely belongs to no running process: one that just exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""]);
  await new Promise((resolve) => child.on("exit", resolve));
  return child.pid as number;
}

describe("index build --out", () => {
  it("refuses a folder that merely holds a header.json, and leaves it intact", async () => {
    for (const header of ['{"hello": 1}', '{"format": "tiller-trace-index", "version": 2}']) {
      const out = path.join(tmp, "precious");
      fs.rmSync(out, { recursive: true, force: true });
      fs.mkdirSync(out);
      fs.writeFileSync(path.join(out, "header.json"), header);
      fs.writeFileSync(path.join(out, "thesis.tex"), "years of work");
      const r = await build(out);
      expect(r.status, r.stderr).toBe(2);
      expect(oneLine(r.stderr), r.stderr).toBe(true);
      expect(r.stderr).toMatch(/refusing to overwrite .*not a tiller trace index/);
      expect(fs.readFileSync(path.join(out, "thesis.tex"), "utf8")).toBe("years of work");
      expect(fs.readFileSync(path.join(out, "header.json"), "utf8")).toBe(header);
      expect(fs.readdirSync(tmp).filter((f) => f.startsWith(".precious."))).toEqual([]);
    }
  });

  it("replaces a valid tiller index, and an empty folder", async () => {
    const out = path.join(tmp, "idx");
    expect((await build(out)).status).toBe(0);
    const first = JSON.parse(fs.readFileSync(path.join(out, "header.json"), "utf8")).build.createdAt;
    await new Promise((r) => setTimeout(r, 20));
    const again = await build(out);
    expect(again.status, again.stderr).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(out, "header.json"), "utf8")).build.createdAt).not.toBe(
      first,
    );
    const empty = path.join(tmp, "empty");
    fs.mkdirSync(empty);
    expect((await build(empty)).status).toBe(0);
    expect(fs.existsSync(path.join(empty, "sa.bin"))).toBe(true);
  });

  it("removes staging folders of dead builds, keeps those of running ones", async () => {
    const out = path.join(tmp, "staged");
    const dead = path.join(tmp, `.staged.tmp-${await deadPid()}-a1b2c3`);
    const legacy = path.join(tmp, ".staged.tmp-Xy12Zq"); // an older tiller's name, no pid
    const oldAside = path.join(tmp, `.staged.old-${await deadPid()}-1700000000000`);
    const live = path.join(tmp, `.staged.tmp-${process.pid}-d4e5f6`); // this test process is alive
    const other = path.join(tmp, ".other.tmp-1-zzzzzz"); // another index's staging: not ours to touch
    for (const dir of [dead, legacy, oldAside, live, other]) {
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, "tokens.bin"), "partial");
    }
    const r = await build(out);
    expect(r.status, r.stderr).toBe(0);
    for (const gone of [dead, legacy, oldAside]) expect(fs.existsSync(gone), gone).toBe(false);
    for (const kept of [live, other]) expect(fs.existsSync(kept), kept).toBe(true);
    expect(fs.readdirSync(tmp).filter((f) => f.startsWith(".staged.tmp-"))).toEqual([path.basename(live)]);
  });

  it("a --out path through a regular file is one line (exit 1)", async () => {
    const r = await build(path.join(corpus, "idx"));
    expect(r.status, r.stderr).toBe(1);
    expect(oneLine(r.stderr), r.stderr).toBe(true);
    expect(r.stderr).toContain(path.join(corpus, "idx"));
  });
});

describe("eval and winrate --out", () => {
  const evalRun = (out: string, extra: string[] = []) =>
    runCliAsync(["eval", ...modelArgs(), "--tasks", tasks, "--strategies", "greedy", "--out", out, ...extra]);
  const winrateRun = (out: string, extra: string[] = []) =>
    runCliAsync([
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
      "--n",
      "2",
      "--resamples",
      "20",
      "--no-cache",
      "--json",
      "--out",
      out,
      ...extra,
    ]);

  it("eval refuses a non-empty --out; --force replaces only its own files", async () => {
    const out = path.join(tmp, "eval-out");
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, "notes.txt"), "mine");
    const refused = await evalRun(out);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/--out .* is not empty .*--resume .*--force/);
    expect(fs.readdirSync(out)).toEqual(["notes.txt"]);
    const forced = await evalRun(out, ["--force"]);
    expect(forced.status, forced.stderr).toBe(0);
    expect(fs.readFileSync(path.join(out, "notes.txt"), "utf8")).toBe("mine");
    expect(fs.readFileSync(path.join(out, "results.jsonl"), "utf8").trim().split("\n")).toHaveLength(1);
    // A second --force run starts over: still one row, not two.
    expect((await evalRun(out, ["--force"])).status).toBe(0);
    expect(fs.readFileSync(path.join(out, "results.jsonl"), "utf8").trim().split("\n")).toHaveLength(1);
    const both = await evalRun(out, ["--force", "--resume"]);
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/not both/);
  }, 120_000);

  it("winrate refuses a non-empty --out before any work; --force overwrites", async () => {
    const out = path.join(tmp, "winrate-out");
    const first = await winrateRun(out);
    expect(first.status, first.stderr).toBe(0);
    const report = fs.readFileSync(path.join(out, "report.json"), "utf8");
    expect(JSON.parse(report).m).toBe(4);
    const refused = await winrateRun(out);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/is not empty .*--force/);
    expect(refused.stdout).toBe(""); // refused before computing anything
    expect(fs.readFileSync(path.join(out, "report.json"), "utf8")).toBe(report);
    const forced = await winrateRun(out, ["--force", "--m", "5"]);
    expect(forced.status, forced.stderr).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(out, "report.json"), "utf8")).m).toBe(5);
  }, 120_000);

  it("winrate --out through a regular file fails at once, not after the computation", async () => {
    const r = await winrateRun(path.join(tasks, "out"));
    expect(r.status).toBe(1);
    expect(oneLine(r.stderr), r.stderr).toBe(true);
    expect(r.stdout).toBe("");
    expect(r.ms).toBeLessThan(20_000);
  });
});
