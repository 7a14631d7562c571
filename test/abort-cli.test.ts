import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliPath, repoRoot, runNode, testModelPath } from "./helpers.js";

let tmp: string;
beforeAll(() => {
  if (!existsSync(cliPath)) throw new Error(`${cliPath} not found: run \`npm run build\` first`);
  tmp = mkdtempSync(join(tmpdir(), "tiller-abort-"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs `reportAndExit(<expression>)` from the built CLI helpers in a fresh node. */
async function report(expression: string) {
  const shared = pathToFileURL(join(repoRoot, "dist/cli/shared.js")).href;
  const errors = pathToFileURL(join(repoRoot, "dist/errors.js")).href;
  const script = `const { reportAndExit } = await import(${JSON.stringify(shared)});
const { TillerError } = await import(${JSON.stringify(errors)});
reportAndExit(${expression});`;
  const r = await runNode(["--input-type=module", "-e", script]);
  return { status: r.status, stderr: r.stderr };
}

describe("aborted runs", () => {
  it("reportAndExit: an AbortError (or TillerError 'aborted') is one line, exit 130; other errors are unchanged", async () => {
    for (const error of [
      `new DOMException("This operation was aborted", "AbortError")`,
      `(() => { const c = new AbortController(); c.abort(); return c.signal.reason; })()`,
      `new TillerError("evaluation aborted", "aborted", 130)`,
    ]) {
      const r = await report(error);
      expect(r.stderr, error).toBe("tiller: aborted\n");
      expect(r.status, error).toBe(130);
    }
    const user = await report(`new TillerError("bad thing", "bad", 2)`);
    expect(user).toEqual({ status: 2, stderr: "tiller: bad thing\n" });
    const bug = await report(`new TypeError("oops")`);
    expect(bug.status).toBe(70);
    expect(bug.stderr).toMatch(/^tiller: internal error: TypeError: oops\n\s+at /);
  });

  it("Ctrl-C during `tiller eval` prints `tiller: aborted` and exits 130", async () => {
    const tasks = join(tmp, "tasks.jsonl");
    const task = { prompt: "Once upon a time", keywords: ["dog", "ball"], maxTokens: 64 };
    writeFileSync(
      tasks,
      `${Array.from({ length: 400 }, (_, i) => JSON.stringify({ id: `t${i}`, ...task })).join("\n")}\n`,
    );
    const out = join(tmp, "out");
    const args = ["eval", "--model", testModelPath(), "--threads", "1", "--no-gpu", "--tasks", tasks];
    const child = spawn(process.execPath, [cliPath, ...args, "--strategies", "deal", "--out", out], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    // The output folder is created just before the SIGINT handler is installed (same tick);
    // 400 DeAL tasks take far longer than the wait after it.
    const started = Date.now();
    while (!existsSync(out) && Date.now() - started < 60_000 && child.exitCode === null)
      await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 800));
    expect(child.exitCode, stderr).toBeNull();
    child.kill("SIGINT");
    const code = await exited;
    // Once results.jsonl is open, the line also says how many runs were saved (for --resume).
    expect(stderr).toMatch(
      /^tiller: aborted(; \d+ of 400 runs saved in .*results\.jsonl \(continue with --resume\))?\n$/,
    );
    expect(code).toBe(130);
    expect(stdout).toBe("");
    expect(existsSync(join(out, "summary.json"))).toBe(false);
  }, 90_000);
});
