import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cliPath, testModelPath } from "./helpers.js";
import { parseSse } from "./serverHarness.js";

const children: ChildProcess[] = [];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tiller-serve-cli-"));

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface Started {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Spawns `tiller serve` (asynchronously) and waits for its "serving … on URL" line. */
function startCli(args: string[]): Promise<Started> {
  if (!fs.existsSync(cliPath)) throw new Error(`${cliPath} missing: run npm run build`);
  const child = spawn(process.execPath, [cliPath, "serve", ...args], {
    env: { ...process.env, NO_COLOR: "1" },
  });
  children.push(child);
  let stderr = "";
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    child.stderr?.on("data", (chunk) => {
      stderr += chunk;
      const match = /serving .* on (http:\/\/[^\s]+)\/v1/.exec(stderr);
      if (match) resolve({ child, url: match[1], stderr: () => stderr, exited });
    });
    exited.then((code) => reject(new Error(`tiller serve exited with ${code}: ${stderr}`)));
  });
}

const MODEL_ARGS = ["--model", testModelPath(), "--no-gpu", "--threads", "1", "--log-level", "silent"];

describe("tiller serve (CLI)", () => {
  it("SIGTERM: the in-flight stream finishes, then the server exits 0", async () => {
    const server = await startCli([...MODEL_ARGS, "--port", "0"]);
    const response = await fetch(`${server.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "stories260K",
        prompt: "Once upon a time",
        max_tokens: 400,
        temperature: 0,
        stream: true,
      }),
    });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = decoder.decode((await reader.read()).value);
    server.child.kill("SIGTERM");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
    }
    const events = parseSse(text);
    expect(events.at(-1)?.data).toBe("[DONE]");
    expect(await server.exited).toBe(0);
    expect(server.stderr()).toMatch(/SIGTERM: finishing in-flight requests/);
  });

  it("warns when it listens beyond loopback without an API key", async () => {
    const server = await startCli([...MODEL_ARGS, "--port", "0", "--host", "0.0.0.0"]);
    expect(server.stderr()).toMatch(/warning: serving on 0\.0\.0\.0 without --api-key/);
    const health = await fetch(`${server.url.replace("0.0.0.0", "127.0.0.1")}/health`);
    expect(health.status).toBe(200);
    server.child.kill("SIGTERM");
    expect(await server.exited).toBe(0);
  });

  it("a bad profiles file is one clear line and a non-zero exit, before the model loads", async () => {
    const file = path.join(tmp, "profiles.yaml");
    fs.writeFileSync(file, "strict:\n  strategy: deal\n  rewardz: [sentiment]\n");
    const child = spawn(process.execPath, [cliPath, "serve", ...MODEL_ARGS, "--profiles", file]);
    children.push(child);
    let stderr = "";
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const code = await new Promise((resolve) => child.on("close", resolve));
    expect(code).not.toBe(0);
    expect(stderr.trim()).toBe(`tiller: ${file}: strict: unknown field(s) rewardz`);
  });
});
