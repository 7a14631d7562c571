import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliRun, cliPath, runCli, testModelPath } from "./helpers.js";

const LILY = ", there was a little girl named Lily. She loved to play outside in the park.";
const BASE = ["generate", "--threads", "1", "--no-gpu"];
let tmp: string;

/** Environment without TILLER_MODEL, with a private cache and a short hub timeout. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TILLER_CACHE_DIR: join(tmp, "cache"),
    TILLER_CONNECT_TIMEOUT_MS: "1500",
  };
  delete env.TILLER_MODEL;
  return env;
}

const tiller = (args: string[]): Promise<CliRun> => runCli(args, { env: cleanEnv(), timeoutMs: 60_000 });

beforeAll(() => {
  if (!existsSync(cliPath)) throw new Error(`${cliPath} not found: run \`npm run build\` first`);
  tmp = mkdtempSync(join(tmpdir(), "tiller-generate-cli-"));
});

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe("tiller generate", () => {
  it("streams the greedy story in text mode", async () => {
    const child = spawn(
      process.execPath,
      [cliPath, ...BASE, "--model", testModelPath(), "--prompt", "Once upon a time", "--max-tokens", "400"],
      { env: cleanEnv() },
    );
    const chunks: string[] = [];
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => chunks.push(chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const status = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(stderr).toBe("");
    expect(status).toBe(0);
    const stdout = chunks.join("");
    expect(stdout.startsWith(LILY)).toBe(true);
    expect(stdout.endsWith("\n")).toBe(true);
    // Written token by token as it is produced, not once at the end.
    expect(chunks.length).toBeGreaterThan(1);

    // The same text as --json reports.
    const json = await tiller([
      ...BASE,
      "--model",
      testModelPath(),
      "--prompt",
      "Once upon a time",
      "--max-tokens",
      "400",
      "--json",
    ]);
    expect(stdout).toBe(`${JSON.parse(json.stdout).text}\n`);
  });

  it("prints one JSON object with --json", async () => {
    const r = await tiller([
      ...BASE,
      "--model",
      testModelPath(),
      "--prompt",
      "Once upon a time",
      "--max-tokens",
      "20",
      "--json",
    ]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split("\n")).toHaveLength(1);
    const out = JSON.parse(r.stdout);
    expect(Object.keys(out).sort()).toEqual(["logprob", "stats", "stopReason", "text", "tokens"]);
    expect(Object.keys(out.stats).sort()).toEqual([
      "evaluatedTokens",
      "generatedTokens",
      "promptTokens",
      "wallMs",
    ]);
    expect(LILY.startsWith(out.text) || out.text.startsWith(LILY)).toBe(true);
    expect(out.tokens).toHaveLength(20);
    expect(out.tokens.every((t: unknown) => Number.isInteger(t))).toBe(true);
    expect(out.logprob).toBeLessThan(0);
    expect(out.stopReason).toBe("max-tokens");
    expect(out.stats).toMatchObject({ promptTokens: 5, generatedTokens: 20, evaluatedTokens: 24 });
    expect(out.stats.wallMs).toBeGreaterThan(0);
  });

  it("beam search and sampling run from the CLI", async () => {
    const beam = await tiller([
      ...BASE,
      "--model",
      testModelPath(),
      "-p",
      "Once upon a time",
      "-n",
      "20",
      "-s",
      "beam",
      "-b",
      "3",
      "--json",
    ]);
    expect(beam.status).toBe(0);
    expect(JSON.parse(beam.stdout).tokens.length).toBeGreaterThan(0);
    // --beams is the name align uses too; --beam-width, the older name, still works.
    const widths = await Promise.all(
      ["--beams", "--beam-width"].map((flag) =>
        tiller([
          ...BASE,
          "--model",
          testModelPath(),
          "-p",
          "Once upon a time",
          "-n",
          "20",
          "-s",
          "beam",
          flag,
          "3",
          "--json",
        ]),
      ),
    );
    for (const r of widths)
      expect(JSON.parse(r.stdout).tokens, r.stderr).toEqual(JSON.parse(beam.stdout).tokens);
    // The older name goes through --beams' own check.
    const zero = await tiller([
      ...BASE,
      "--model",
      testModelPath(),
      "-p",
      "hi",
      "-s",
      "beam",
      "--beam-width",
      "0",
    ]);
    expect(zero.status).not.toBe(0);
    expect(zero.stderr).toMatch(/^tiller: option '-b, --beams <b>' argument '0' is invalid/);
    const args = [
      ...BASE,
      "--model",
      testModelPath(),
      "-p",
      "Once upon a time",
      "-n",
      "30",
      "-s",
      "sample",
      "--seed",
      "5",
      "--json",
    ];
    const a = JSON.parse((await tiller(args)).stdout);
    const b = JSON.parse((await tiller(args)).stdout);
    expect(b.tokens).toEqual(a.tokens);
  });

  it("--stop: the streamed text and the JSON text both end before the stop string", async () => {
    const args = [...BASE, "--model", testModelPath(), "--prompt", "Once upon a time", "--stop", "Lily"];
    const streamed = await tiller(args);
    expect(streamed.status, streamed.stderr).toBe(0);
    expect(streamed.stdout).toBe(", there was a little girl named \n");
    const json = JSON.parse((await tiller([...args, "--json"])).stdout);
    expect(json.text).toBe(", there was a little girl named ");
    expect(json.stopReason).toBe("stop-string");
    // tokens and logprob cover the whole tokens before the stop string.
    expect(json.stats.generatedTokens).toBe(json.tokens.length);
    expect(json.tokens.length).toBeLessThan(10);
  });

  it("exits quietly when stdout is closed early (| head -c 10)", async () => {
    const r = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
      execFile(
        "bash",
        [
          "-c",
          `"${process.execPath}" "${cliPath}" ${BASE.join(" ")} --model "${testModelPath()}" --prompt "Once upon a time" --max-tokens 400 | head -c 10; echo " status=\${PIPESTATUS[0]}"`,
        ],
        { encoding: "utf8", env: cleanEnv(), timeout: 60_000 },
        (error, stdout, stderr) => (error ? reject(error) : resolve({ stdout, stderr })),
      ),
    );
    expect(r.stdout).toBe(`${LILY.slice(0, 10)} status=0\n`);
    expect(r.stderr).toBe("");
  });
});

describe.concurrent("tiller generate: bad input", () => {
  /** Exit code ≠ 0, exactly one line on stderr matching `message`, nothing on stdout. */
  async function expectOneLineError(args: string[], message: RegExp): Promise<string> {
    const r = await tiller(args);
    expect(r.status, r.stderr).not.toBe(0);
    expect(r.status).not.toBeNull();
    expect(r.stdout).toBe("");
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^tiller: /);
    expect(lines[0]).toMatch(message);
    expect(lines[0]).not.toMatch(/internal error|\bat .*\.js:\d+/);
    return lines[0];
  }

  it("missing model file", async () => {
    const path = join(tmp, "absent.gguf");
    const line = await expectOneLineError(
      [...BASE, "--model", path, "--prompt", "hi"],
      /model file not found/,
    );
    expect(line).toContain(path);
  });

  it("a file that is not a GGUF", async () => {
    const path = join(tmp, "readme.txt");
    writeFileSync(path, "hello\n");
    const line = await expectOneLineError([...BASE, "--model", path, "--prompt", "hi"], /not a GGUF/);
    expect(line).toContain(path);
  });

  it("--max-tokens abc", async () => {
    await expectOneLineError(
      [...BASE, "--model", testModelPath(), "--prompt", "hi", "--max-tokens", "abc"],
      /max-tokens.*abc/,
    );
  });

  it("an unknown --strategy", async () => {
    await expectOneLineError(
      [...BASE, "--model", testModelPath(), "--prompt", "hi", "--strategy", "telepathy"],
      /strategy.*telepathy/,
    );
  });

  it("no --prompt", async () => {
    await expectOneLineError([...BASE, "--model", testModelPath()], /--prompt/);
  });

  it("the default model when the hub is unreachable says to pass --model", async () => {
    const started = performance.now();
    await expectOneLineError([...BASE, "--prompt", "hi"], /cannot download model hf:.*pass --model/);
    expect(performance.now() - started).toBeLessThan(20_000);
  });
});
