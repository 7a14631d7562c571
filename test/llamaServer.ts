import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { resolve } from "node:path";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { repoRoot, testModelPath } from "./helpers.js";
import { testModelsPath } from "./models.js";

/** The llama.cpp server the remote-backend tests run: $TILLER_LLAMA_SERVER, else ../shared/bin/llama-server. */
export function llamaServerPath(): string {
  const path = resolve(repoRoot, process.env.TILLER_LLAMA_SERVER ?? "../shared/bin/llama-server");
  if (!existsSync(path))
    throw new Error(
      `llama-server not found at ${path}; build it with ../shared/tools/build-llama-server.sh or set TILLER_LLAMA_SERVER`,
    );
  return path;
}

/** A test-model twin from testModelsDir() (made by ../shared/tools/make-test-models.sh), failing loudly if absent. */
export function twinModelPath(name: string): string {
  return testModelsPath(name);
}

export interface RunningServer {
  url: string;
  port: number;
  pid: number;
  /** Stops the server (SIGTERM, then SIGKILL) and waits for it to exit. */
  stop(): Promise<void>;
  /** Kills it at once (SIGKILL), as a crash would. */
  kill(): Promise<void>;
}

export interface StartOptions {
  /** GGUF file. Defaults to the stories test model. */
  model?: string;
  /**
   * Run with f32 KV cache and no flash attention, the numerics of `loadExactModel` (the defaults,
   * f16 KV and flash attention, round logprobs ~1e-3 differently from the in-process default).
   * Defaults to true.
   */
  exact?: boolean;
  /** Parallel slots (-np). Defaults to 4. */
  slots?: number;
  /** Listen on this port. Defaults to a free one. */
  port?: number;
}

/** A port nothing listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => done(port));
    });
  });
}

/** Servers started by this process and not stopped yet: killed if the process exits first. */
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/**
 * Starts a real llama-server on loopback (one thread, the stories model, a few slots) and waits
 * until GET /health answers 200. Without a fixed port it takes a free one, and tries another (3
 * tries) if the server cannot bind it — another process may take a port between the check and
 * the bind. A server still running when this process exits is killed then.
 */
export async function startLlamaServer(options: StartOptions = {}): Promise<RunningServer> {
  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (await freePort());
    try {
      return await startOn(port, options);
    } catch (error) {
      if (options.port !== undefined || attempt >= 3 || !(error instanceof PortTaken)) throw error;
    }
  }
}

/** The server exited at start because its port was taken. */
class PortTaken extends Error {}

async function startOn(port: number, options: StartOptions): Promise<RunningServer> {
  const binary = llamaServerPath();
  const args = [
    ...["-m", options.model ?? testModelPath(), "-t", "1", "-np", String(options.slots ?? 4)],
    ...["--host", "127.0.0.1", "--port", String(port), "--no-webui", "--no-warmup"],
    ...(options.exact === false ? [] : ["-fa", "off", "-ctk", "f32", "-ctv", "f32"]),
  ];
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  let log = "";
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-4000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<number | null>((done) =>
    child.once("exit", (code) => {
      running.delete(child);
      done(code);
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      const message = `llama-server exited with ${child.exitCode}: ${log}`;
      throw /bind|address already in use/i.test(log) ? new PortTaken(message) : new Error(message);
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`llama-server on port ${port} did not become healthy in 30 s: ${log}`);
    }
    try {
      if ((await fetch(`${url}/health`)).ok) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const end = async (signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  };
  return { url, port, pid: child.pid as number, stop: () => end("SIGTERM"), kill: () => end("SIGKILL") };
}

/**
 * The in-process backend (a real LlamaCppModel) with the numerics of `startLlamaServer({ exact })`:
 * f32 KV cache, no flash attention, one thread. Then the two backends agree to float rounding
 * (~1e-5 in logprob), so a test can tell a transport mistake from build-to-build rounding.
 */
export async function loadExactModel(sequences = 4): Promise<LlamaCppModel> {
  const path = testModelPath();
  const llama = await getLlama({
    gpu: false,
    build: "never",
    logLevel: LlamaLogLevel.error,
    progressLogs: false,
  });
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  const createContext = () =>
    model.createContext({
      contextSize: 2048,
      sequences,
      threads: 1,
      flashAttention: false,
      experimentalKvCacheKeyType: "F32",
      experimentalKvCacheValueType: "F32",
    });
  const context = await createContext();
  const pool = Array.from({ length: sequences }, () => context.getSequence());
  return new LlamaCppModel("stories260K.gguf", path, model, context, pool, 1, 2048, createContext);
}
