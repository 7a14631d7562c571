/**
 * Bad input for the remote backend — unreachable URL, wrong dialect, not a model server, garbage,
 * a server closing mid-response or hanging, 503s — each one clear TillerError, nothing hanging,
 * AbortSignal respected. Faults are injected by a small loopback proxy in front of a real
 * llama-server (the network boundary); the model-resolution rule of `openModel` is checked too.
 */
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RemoteModel } from "../src/lm/http/remoteModel.js";
import { isServerUrl, openModel } from "../src/lm/open.js";
import { freePort, type RunningServer, startLlamaServer } from "./llamaServer.js";

type Fault =
  | { kind: "pass" }
  | { kind: "garbage" }
  | { kind: "hang" }
  | { kind: "close" }
  | { kind: "unavailable"; times: number }
  | { kind: "cut-stream"; afterBytes: number; times: number }
  /** Answers `status` to every /completion that carries a grammar (a build without them, or one failing on them). */
  | { kind: "refuse-grammar"; status: number };

/** A proxy to `upstream` that injects `fault` into POST /completion (everything else passes). */
class FaultProxy {
  fault: Fault = { kind: "pass" };
  completions = 0;
  private readonly server: Server;

  constructor(private readonly upstream: string) {
    this.server = createServer((req, res) => {
      if (req.url !== "/completion") return this.forward(req, res);
      this.completions++;
      const fault = this.fault;
      if (fault.kind === "garbage")
        return res.writeHead(200, { "content-type": "application/json" }).end("<html>");
      if (fault.kind === "hang") return; // never answers
      if (fault.kind === "close") {
        res.writeHead(200, { "content-type": "application/json", "content-length": "500" });
        res.write('{"completion_probabilities":[');
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      if (fault.kind === "unavailable" && fault.times > 0) {
        fault.times--;
        return res
          .writeHead(503, { "content-type": "application/json" })
          .end('{"error":{"message":"Loading model"}}');
      }
      if (fault.kind === "refuse-grammar") {
        const chunks: Buffer[] = [];
        req.on("data", (chunk: Buffer) => chunks.push(chunk));
        req.on("end", () => {
          const body = Buffer.concat(chunks);
          if (!("grammar" in JSON.parse(body.toString()))) return this.forward(req, res, undefined, body);
          res
            .writeHead(fault.status, { "content-type": "application/json" })
            .end('{"error":{"message":"failed to parse grammar"}}');
        });
        return;
      }
      if (fault.kind === "cut-stream" && fault.times > 0) {
        fault.times--;
        return this.forward(req, res, fault.afterBytes);
      }
      this.forward(req, res);
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((done) => this.server.listen(0, "127.0.0.1", done));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((done) => this.server.close(() => done()));
  }

  private forward(
    req: import("node:http").IncomingMessage,
    res: import("node:http").ServerResponse,
    cutAfter?: number,
    /** The request body, when it was read already. */
    body?: Buffer,
  ) {
    const upstream = request(
      `${this.upstream}${req.url}`,
      { method: req.method, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        let sent = 0;
        up.on("data", (chunk: Buffer) => {
          sent += chunk.length;
          res.write(chunk);
          if (cutAfter !== undefined && sent >= cutAfter) {
            up.destroy();
            res.socket?.destroy();
          }
        });
        up.on("end", () => res.end());
      },
    );
    upstream.on("error", () => res.socket?.destroy());
    if (body) upstream.end(body);
    else req.pipe(upstream);
  }
}

let server: RunningServer;
let proxy: FaultProxy;
let proxyUrl: string;

beforeAll(async () => {
  server = await startLlamaServer({ slots: 2 });
  proxy = new FaultProxy(server.url);
  proxyUrl = await proxy.listen();
});

afterAll(async () => {
  await proxy?.close();
  await server?.stop();
});

/** A model over the proxy with fast retries, for fault tests. */
function openThroughProxy(timeoutMs = 5_000): Promise<RemoteModel> {
  return RemoteModel.open([proxyUrl], { timeoutMs, retry: { baseDelayMs: 20, maxDelayMs: 100 } });
}

async function failure(promise: Promise<unknown>): Promise<{ code: string; message: string; name: string }> {
  const error = await promise.then(
    () => undefined,
    (e) => e,
  );
  expect(error, "expected a failure").toBeDefined();
  return error;
}

function expectOneLine(error: { message: string; name: string }): void {
  expect(error.name).toBe("TillerError");
  expect(error.message.split("\n")).toHaveLength(1);
}

describe("opening a server that is not there or not a model server", () => {
  it("unreachable URL: one clear error, fast", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const started = performance.now();
    const error = await failure(RemoteModel.open([url]));
    expect(error).toMatchObject({ code: "server-unreachable" });
    expect(error.message).toContain(url);
    expect(error.message).toContain("refused the connection");
    expectOneLine(error);
    // No retries for a server that is not there (generous bound: these machines are shared).
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it("wrong dialect: --backend vllm against a llama-server", async () => {
    const error = await failure(RemoteModel.open([server.url], { backend: "vllm" }));
    expect(error).toMatchObject({ code: "wrong-dialect" });
    expect(error.message).toContain("is a llama-server server");
    expectOneLine(error);
  });

  it("not a model server, or one answering garbage", async () => {
    for (const body of ['{"detail":"Not Found"}', "hello, I am not JSON"]) {
      const status = body.startsWith("{") ? 404 : 200;
      const plain = createServer((_req, res) => res.writeHead(status).end(body));
      await new Promise<void>((done) => plain.listen(0, "127.0.0.1", done));
      const url = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
      try {
        const error = await failure(RemoteModel.open([url]));
        expect(error).toMatchObject({ code: "unknown-server" });
        expect(error.message).toContain(url);
        expectOneLine(error);
      } finally {
        plain.close();
      }
    }
  });

  it("a server that is not HTTP at all", async () => {
    const { createServer: createTcp } = await import("node:net");
    const tcp = createTcp((socket) => socket.end("SSH-2.0-OpenSSH_9.6\r\n"));
    await new Promise<void>((done) => tcp.listen(0, "127.0.0.1", done));
    const url = `http://127.0.0.1:${(tcp.address() as AddressInfo).port}`;
    try {
      const error = await failure(RemoteModel.open([url]));
      expect(error.code).toMatch(/^server-/);
      expect(error.message).toContain(url);
      expectOneLine(error);
    } finally {
      tcp.close();
    }
  });
});

describe("faults after opening", () => {
  it("garbage from /completion: a bad-response error, not retried", async () => {
    const model = await openThroughProxy();
    try {
      proxy.fault = { kind: "garbage" };
      const before = proxy.completions;
      const error = await failure(model.nextTokenDistributions([[1, 403]], { topK: 2 }));
      expect(error).toMatchObject({ code: "server-bad-response" });
      expect(error.message).toContain("not JSON");
      expectOneLine(error);
      expect(proxy.completions - before).toBe(1);
    } finally {
      proxy.fault = { kind: "pass" };
      await model.dispose();
    }
  });

  it("a server closing mid-response: retried with backoff, then one clear error", async () => {
    const model = await openThroughProxy();
    try {
      proxy.fault = { kind: "close" };
      const before = proxy.completions;
      const error = await failure(model.nextTokenDistributions([[1, 403]], { topK: 2 }));
      expect(error).toMatchObject({ code: "server-closed" });
      expect(error.message).toContain("closed the connection mid-response");
      expect(error.message).toContain("after 4 tries");
      expectOneLine(error);
      expect(proxy.completions - before).toBe(4);
    } finally {
      proxy.fault = { kind: "pass" };
      await model.dispose();
    }
  });

  it("a hanging server: the per-request timeout ends each try", async () => {
    const model = await openThroughProxy(300);
    try {
      proxy.fault = { kind: "hang" };
      const started = performance.now();
      const error = await failure(model.nextTokenDistributions([[1, 403]], { topK: 2 }));
      expect(error).toMatchObject({ code: "server-timeout" });
      expect(error.message).toContain("no answer within 300 ms");
      expectOneLine(error);
      // Four 300 ms tries and short backoffs, far from the 120 s default (bound generous for shared machines).
      expect(performance.now() - started).toBeLessThan(10_000);
    } finally {
      proxy.fault = { kind: "pass" };
      await model.dispose();
    }
  });

  it("an AbortSignal ends a hanging call at once, without retries", async () => {
    const model = await openThroughProxy(60_000);
    try {
      proxy.fault = { kind: "hang" };
      const before = proxy.completions;
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error("user pressed Ctrl-C")), 100);
      const started = performance.now();
      await expect(
        model.nextTokenDistributions([[1, 403]], { topK: 2, signal: controller.signal }),
      ).rejects.toThrow("user pressed Ctrl-C");
      // At once, not after the 60 s request timeout (bound generous for shared machines).
      expect(performance.now() - started).toBeLessThan(10_000);
      expect(proxy.completions - before).toBe(1);
      await expect(
        model.rollouts([{ prefix: [1, 403] }], { maxTokens: 4, signal: controller.signal }),
      ).rejects.toThrow("user pressed Ctrl-C");
    } finally {
      proxy.fault = { kind: "pass" };
      await model.dispose();
    }
  });

  it("503 (busy, loading) is retried and then succeeds", async () => {
    const model = await openThroughProxy();
    try {
      proxy.fault = { kind: "unavailable", times: 2 };
      const before = model.stats.retries;
      const [distribution] = await model.nextTokenDistributions([[1, 403]], { topK: 2 });
      expect(distribution[0].token).toBe(407);
      expect(model.stats.retries - before).toBe(2);
    } finally {
      proxy.fault = { kind: "pass" };
      await model.dispose();
    }
  });

  it("a server that fails (500) or refuses (400) the one-request run grammar: scored one position at a time, same logprobs, no retries", async () => {
    const model = await openThroughProxy();
    try {
      const prefix = await model.tokenize("Once upon a time");
      const [greedy] = await model.rollouts([{ prefix }], { maxTokens: 12 });
      const request = { prefix, continuation: greedy.tokens };
      let before = model.stats;
      const [run] = await model.scoreContinuations([request]);
      expect(model.stats.scoreRequests - before.scoreRequests).toBe(1);
      for (const status of [500, 400]) {
        proxy.fault = { kind: "refuse-grammar", status };
        before = model.stats;
        const [fallback] = await model.scoreContinuations([request]);
        // The refused run, then one request per position; nothing retried, the server still in.
        expect(model.stats.scoreRequests - before.scoreRequests).toBe(greedy.tokens.length);
        expect(model.stats.retries).toBe(before.retries);
        // Not counted against the server. (Compared with the state before: a stale keep-alive
        // socket left by an earlier fault test can take the server out for a moment, until its
        // health probe brings it back.)
        expect(model.stats.endpoints[0].failures).toBe(before.endpoints[0].failures);
        if (before.endpoints[0].healthy) expect(model.stats.endpoints[0].healthy).toBe(true);
        const worst = Math.max(...fallback.logprobs.map((lp, i) => Math.abs(lp - run.logprobs[i])));
        expect(worst).toBeLessThan(1e-3);
      }
      // After a 400 (no grammars here), runs are not tried again.
      proxy.fault = { kind: "pass" };
      before = model.stats;
      await model.scoreContinuations([request]);
      expect(model.stats.scoreRequests - before.scoreRequests).toBe(greedy.tokens.length);
    } finally {
      proxy.fault = { kind: "pass" };
      await model.dispose();
    }
  });

  it("a stream cut mid-rollout is resumed where it stopped: same text as an uninterrupted run", async () => {
    const model = await openThroughProxy();
    const direct = await RemoteModel.open([server.url]);
    try {
      const prefix = await direct.tokenize("Once upon a time");
      const [expected] = await direct.rollouts([{ prefix }], { maxTokens: 120 });
      proxy.fault = { kind: "cut-stream", afterBytes: 6_000, times: 2 };
      const streamed: number[] = [];
      const [rollout] = await model.rollouts([{ prefix }], {
        maxTokens: 120,
        onToken: (_i, t) => streamed.push(t),
      });
      expect(rollout.tokens).toEqual(expected.tokens);
      expect(streamed).toEqual(expected.tokens); // each token streamed once, none repeated
      expect(model.stats.retries).toBeGreaterThanOrEqual(2);
    } finally {
      proxy.fault = { kind: "pass" };
      await model.dispose();
      await direct.dispose();
    }
  });
});

describe("openModel: which --model values are servers", () => {
  it("classifies URLs: a server unless the URL names a .gguf file", () => {
    expect(isServerUrl("http://127.0.0.1:8080")).toBe(true);
    expect(isServerUrl("https://gpu-3.example.com:8000/")).toBe(true);
    expect(isServerUrl("http://host:8080/v1")).toBe(true);
    expect(isServerUrl("https://huggingface.co/x/y/resolve/main/model-q4.gguf")).toBe(false);
    expect(isServerUrl("https://host/files/Model.GGUF?download=1")).toBe(false);
    expect(isServerUrl("hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf")).toBe(false);
    expect(isServerUrl("/models/stories.gguf")).toBe(false);
    expect(isServerUrl("ftp://host/model")).toBe(false);
  });

  it("opens a server URL (or several) as a remote model", async () => {
    const model = await openModel(server.url);
    try {
      expect(model).toBeInstanceOf(RemoteModel);
      expect(model.id).toBe("stories260K.gguf");
    } finally {
      await model.dispose();
    }
    const forced = await openModel([server.url], { backend: "llama-server" });
    await forced.dispose();
  });

  it("a URL naming a .gguf is still a download, not a server", async () => {
    const url = `http://127.0.0.1:${await freePort()}/stories.gguf`;
    const saved = process.env.TILLER_CONNECT_TIMEOUT_MS;
    process.env.TILLER_CONNECT_TIMEOUT_MS = "1000"; // nothing listens: give up on the "hub" quickly
    try {
      const error = await failure(openModel(url, { progress: false }));
      expect(error).toMatchObject({ code: "model-download-failed" });
    } finally {
      if (saved === undefined) delete process.env.TILLER_CONNECT_TIMEOUT_MS;
      else process.env.TILLER_CONNECT_TIMEOUT_MS = saved;
    }
  });

  it("rejects --backend with a file, mixed or several files, and unknown backends", async () => {
    await expect(openModel("/models/x.gguf", { backend: "vllm" })).rejects.toMatchObject({
      code: "bad-backend",
    });
    await expect(openModel(server.url, { backend: "ollama" })).rejects.toMatchObject({ code: "bad-backend" });
    await expect(openModel([server.url, "/models/x.gguf"])).rejects.toMatchObject({ code: "bad-model-spec" });
    await expect(openModel(["/a.gguf", "/b.gguf"])).rejects.toMatchObject({ code: "bad-model-spec" });
  });
});
