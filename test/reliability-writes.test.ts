/**
 * Issue 9, class 1: output writes are guarded, atomic and checkpointed. Real model, real
 * filesystem; as root, unwritable paths come from /dev/full (ENOSPC), a path through a regular
 * file (ENOTDIR) and a tiny tmpfs mounted in a private mount namespace (a full disk).
 */
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EvalRow } from "../src/eval/runEval.js";
import { AppendLog, readAppendLog } from "../src/util/appendLog.js";
import { writeFileAtomic } from "../src/util/atomicWrite.js";
import { sharedPath } from "./helpers.js";
import { assertBuilt, interrupt, modelArgs, oneLine, runCliAsync, spawnCli } from "./reliability-cli.js";

let tmp: string;
let tasks: string;
beforeAll(() => {
  assertBuilt();
  tmp = fs.mkdtempSync(path.join(tmpdir(), "tiller-writes-"));
  // Three short keyword tasks from the shared dev set.
  const lines = fs.readFileSync(sharedPath("eval/keywords-dev.jsonl"), "utf8").split("\n").filter(Boolean);
  tasks = path.join(tmp, "tasks.jsonl");
  fs.writeFileSync(
    tasks,
    `${lines
      .slice(0, 3)
      .map((line) => JSON.stringify({ ...JSON.parse(line), maxTokens: 24 }))
      .join("\n")}\n`,
  );
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const ALIGN = ["align", "-p", "Once upon a time", "-r", "keywords:dog", "-s", "greedy", "-n", "8"];

describe("single-file outputs", () => {
  it("align --trace through a regular file fails at once, one line naming the path", async () => {
    const trace = path.join(tmp, "tasks.jsonl", "t.json"); // tasks.jsonl is a file: ENOTDIR
    const r = await runCliAsync([...ALIGN, ...modelArgs(), "--trace", trace]);
    expect(r.status, r.stderr).toBe(1);
    expect(oneLine(r.stderr), r.stderr).toBe(true);
    expect(r.stderr).toContain(trace);
    expect(r.stderr).toMatch(/not a folder/);
  });

  it("align --trace /dev/full prints the aligned text first, then reports the full disk", async () => {
    const r = await runCliAsync([...ALIGN, ...modelArgs(), "--trace", "/dev/full"]);
    expect(r.stdout).toMatch(/score \(mix\)/);
    expect(r.stdout.length).toBeGreaterThan(20);
    expect(r.stderr).toBe("tiller: cannot write /dev/full: no space left on device\n");
    expect(r.status).toBe(1);
  });

  it("align --trace writes the trace atomically (a complete JSON file, no temp file left)", async () => {
    const trace = path.join(tmp, "trace.json");
    fs.writeFileSync(trace, "old");
    const r = await runCliAsync([...ALIGN, ...modelArgs(), "-s", "deal", "--trace", trace]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(fs.readFileSync(trace, "utf8")).steps.length).toBeGreaterThan(0);
    expect(fs.readdirSync(tmp).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });

  it("generate > /dev/full is one line and exit 1, not a stack trace", async () => {
    const full = fs.openSync("/dev/full", "w");
    try {
      const r = await runCliAsync(["generate", "-p", "Once upon a time", "-n", "16", ...modelArgs()], {
        stdoutFd: full,
      });
      expect(r.stderr).toBe("tiller: cannot write to standard output: no space left on device\n");
      expect(r.status).toBe(1);
    } finally {
      fs.closeSync(full);
    }
  });

  it("writeFileAtomic keeps the old file when the write fails, and never leaves a temp file", () => {
    const dir = path.join(tmp, "atomic");
    fs.mkdirSync(dir);
    const file = path.join(dir, "a.json");
    writeFileAtomic(file, "first");
    writeFileAtomic(file, "second");
    expect(fs.readFileSync(file, "utf8")).toBe("second");
    // A folder at the target: the write fails as one TillerError naming the path.
    fs.mkdirSync(path.join(dir, "sub.json"));
    expect(() => writeFileAtomic(path.join(dir, "sub.json"), "x")).toThrow(
      /cannot write .*sub\.json: it is a folder/,
    );
    expect(fs.readdirSync(dir).sort()).toEqual(["a.json", "sub.json"]);
  });
});

describe("eval results are checkpointed", () => {
  const evalArgs = (out: string, extra: string[] = []) => [
    "eval",
    ...modelArgs(),
    "--tasks",
    tasks,
    "--strategies",
    "greedy,bon:n=2",
    "--out",
    out,
    ...extra,
  ];
  const rowsOf = (out: string) => readAppendLog<EvalRow>(path.join(out, "results.jsonl"));
  const keys = (rows: readonly EvalRow[]) => rows.map((row) => `${row.strategy}/${row.taskId}`);

  it("Ctrl-C keeps every finished run; --resume runs only the rest", async () => {
    const out = path.join(tmp, "interrupted");
    // Many tasks so the interrupt surely lands mid-run.
    const many = path.join(tmp, "many.jsonl");
    const task = { prompt: "Once upon a time", keywords: ["dog", "ball"], maxTokens: 48 };
    fs.writeFileSync(
      many,
      `${Array.from({ length: 60 }, (_, i) => JSON.stringify({ id: `t${i}`, ...task })).join("\n")}\n`,
    );
    const args = ["eval", ...modelArgs(), "--tasks", many, "--strategies", "greedy,bon:n=4", "--out", out];
    const running = spawnCli(args);
    // Wait until some runs are on disk.
    const file = path.join(out, "results.jsonl");
    const started = Date.now();
    while (Date.now() - started < 60_000 && running.child.exitCode === null) {
      if (fs.existsSync(file) && rowsOf(out).records.length >= 3) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const r = await interrupt(running, "SIGINT");
    expect(r.status, r.stderr).toBe(130);
    expect(r.stderr).toMatch(
      /^tiller: aborted; \d+ of 120 runs saved in .*results\.jsonl \(continue with --resume\)\n$/,
    );
    const saved = rowsOf(out);
    expect(saved.tornBytes).toBe(0);
    expect(saved.records.length).toBeGreaterThanOrEqual(3);
    expect(saved.records.length).toBeLessThan(120);
    expect(Number(/(\d+) of 120/.exec(r.stderr)?.[1])).toBe(saved.records.length);
    expect(fs.existsSync(path.join(out, "summary.json"))).toBe(false);

    // Without --resume (or --force) the folder is refused.
    const refused = await runCliAsync(args);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/is not empty .*--resume/);

    const resumed = await runCliAsync([...args, "--resume", "--limit", "4"]);
    expect(resumed.status, resumed.stderr).toBe(0);
    const after = rowsOf(out).records;
    // The finished runs are kept byte for byte, first; nothing is run twice.
    expect(after.slice(0, saved.records.length)).toEqual(saved.records);
    expect(new Set(keys(after)).size).toBe(after.length);
    const summary = JSON.parse(fs.readFileSync(path.join(out, "summary.json"), "utf8"));
    expect(summary.taskCount).toBe(4);
    expect(summary.strategies.map((s: { tasks: number }) => s.tasks)).toEqual([4, 4]);
  }, 180_000);

  it("--resume drops a torn last line and completes the run", async () => {
    const out = path.join(tmp, "torn");
    const first = await runCliAsync(evalArgs(out));
    expect(first.status, first.stderr).toBe(0);
    const complete = rowsOf(out).records;
    expect(complete).toHaveLength(6);
    // A crash mid-write: the first 4 rows, then half of the 5th.
    const line5 = JSON.stringify(complete[4]);
    fs.writeFileSync(
      path.join(out, "results.jsonl"),
      `${complete
        .slice(0, 4)
        .map((row) => JSON.stringify(row))
        .join("\n")}\n${line5.slice(0, line5.length >> 1)}`,
    );
    fs.rmSync(path.join(out, "summary.json"));
    expect(rowsOf(out).tornBytes).toBeGreaterThan(0);
    const resumed = await runCliAsync(evalArgs(out, ["--resume", "--json"]));
    expect(resumed.status, resumed.stderr).toBe(0);
    const after = rowsOf(out);
    expect(after.tornBytes).toBe(0);
    expect(keys(after.records).sort()).toEqual(keys(complete).sort());
    expect(after.records.slice(0, 4)).toEqual(complete.slice(0, 4));
    expect(JSON.parse(resumed.stdout).strategies).toHaveLength(2);
  }, 120_000);

  it("--resume refuses a folder written with other settings", async () => {
    const out = path.join(tmp, "torn");
    const r = await runCliAsync(evalArgs(out, ["--resume", "--cache", "warm"]));
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--resume: .* different cache/);
  });

  it("an unwritable results.jsonl is one line naming it (exit 1)", async () => {
    const out = path.join(tmp, "blocked");
    fs.mkdirSync(path.join(out, "results.jsonl"), { recursive: true }); // a folder where the log goes
    const r = await runCliAsync(evalArgs(out, ["--force"]));
    expect(r.status, r.stderr).toBe(1);
    expect(oneLine(r.stderr), r.stderr).toBe(true);
    expect(r.stderr).toContain(path.join(out, "results.jsonl"));
  });

  it("a full disk: the table is printed, every finished run is in results.jsonl, no truncated file", async () => {
    const mount = path.join(tmp, "mnt");
    const copy = path.join(tmp, "full-copy");
    fs.mkdirSync(mount);
    // A private mount namespace: the 48 KiB tmpfs exists only for this shell and its children.
    // results.jsonl, run.json, summary.json and the SVG fit; the PNG (~70 KiB) does not.
    const script =
      'mount -t tmpfs -o size=48k tmpfs "$1" || exit 97; shift 2; "$@"; rc=$?; cp -a "$0/out" "$COPY"; exit $rc';
    const r = await runCliAsync(evalArgs(path.join(mount, "out")), {
      prefix: ["unshare", "-m", "sh", "-c", script, mount, mount, "--"],
      env: { ...process.env, COPY: copy },
    });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(
      /^tiller: cannot write .*quality-vs-cost\.(png|svg): no space left on device\n$/,
    );
    expect(r.stdout).toMatch(/bon:n=2/); // the table came first
    const log = readAppendLog<EvalRow>(path.join(copy, "results.jsonl"));
    expect(log.tornBytes).toBe(0);
    expect(log.records).toHaveLength(6);
    expect(JSON.parse(fs.readFileSync(path.join(copy, "summary.json"), "utf8")).taskCount).toBe(3);
    const left = fs.readdirSync(copy);
    expect(left).not.toContain("quality-vs-cost.png");
    expect(left.filter((f) => f.includes(".tmp-"))).toEqual([]);
  }, 120_000);
});

describe("AppendLog", () => {
  it("appends fsync'd lines and cuts a torn tail before appending", () => {
    const file = path.join(tmp, "log.jsonl");
    const log = AppendLog.open(file);
    log.append({ a: 1 });
    log.append({ a: 2 });
    log.close();
    fs.appendFileSync(file, '{"a": 3, "b":');
    expect(readAppendLog(file)).toMatchObject({ records: [{ a: 1 }, { a: 2 }] });
    const again = AppendLog.open(file);
    again.append({ a: 4 });
    again.close();
    expect(readAppendLog(file)).toEqual({
      records: [{ a: 1 }, { a: 2 }, { a: 4 }],
      tornBytes: 0,
      soundBytes: fs.statSync(file).size,
    });
    fs.writeFileSync(file, '{"a": 1}\nnot json\n');
    expect(() => readAppendLog(file)).toThrow(/log\.jsonl:2 is not a JSON record/);
  });
});
