import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { TillerError } from "../src/errors.js";
import { loadModel } from "../src/lm/load.js";
import { cacheDir, DEFAULT_MODEL_URI, resolveModelPath } from "../src/lm/resolve.js";
import { testModelPath } from "./helpers.js";

const ENV_KEYS = ["TILLER_CACHE_DIR", "TILLER_CONNECT_TIMEOUT_MS", "TILLER_MODEL", "XDG_CACHE_HOME"] as const;
const savedEnv = Object.fromEntries(ENV_KEYS.map((key) => [key, process.env[key]]));
let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "tiller-resolve-"));
});

afterEach(() => {
  for (const key of ENV_KEYS) {
    if (savedEnv[key] === undefined) delete process.env[key];
    else process.env[key] = savedEnv[key];
  }
});

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

async function failure(promise: Promise<unknown>): Promise<TillerError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TillerError);
  const tillerError = error as TillerError;
  expect(tillerError.message).not.toContain("\n");
  return tillerError;
}

describe("cacheDir", () => {
  it("honours TILLER_CACHE_DIR, then XDG_CACHE_HOME", async () => {
    process.env.TILLER_CACHE_DIR = join(tmp, "cache");
    expect(cacheDir()).toBe(join(tmp, "cache"));
    delete process.env.TILLER_CACHE_DIR;
    process.env.XDG_CACHE_HOME = join(tmp, "xdg");
    expect(cacheDir()).toBe(join(tmp, "xdg", "tiller"));
  });
});

describe("resolveModelPath", () => {
  it("returns an existing local GGUF as an absolute path", async () => {
    expect(await resolveModelPath(testModelPath())).toBe(testModelPath());
  });

  it("falls back to $TILLER_MODEL when no spec is given", async () => {
    process.env.TILLER_MODEL = testModelPath();
    expect(await resolveModelPath(undefined)).toBe(testModelPath());
    process.env.TILLER_MODEL = join(tmp, "from-env.gguf");
    const error = await failure(resolveModelPath(undefined));
    expect(error.code).toBe("model-not-found");
    expect(error.message).toContain(join(tmp, "from-env.gguf"));
  });

  it("fails fast on an unreachable hub with model-download-failed naming the URI", async () => {
    process.env.TILLER_CONNECT_TIMEOUT_MS = "1500";
    process.env.TILLER_CACHE_DIR = join(tmp, "hub-cache");
    const uri = "hf:owner/repo/file.gguf";
    const started = performance.now();
    const error = await failure(resolveModelPath(uri, { progress: false }));
    expect(performance.now() - started).toBeLessThan(15_000);
    expect(error.code).toBe("model-download-failed");
    expect(error.message).toContain(uri);
    expect(error.message).toContain("--model");
  });

  it("says to pass --model when the default model cannot be downloaded", async () => {
    process.env.TILLER_CONNECT_TIMEOUT_MS = "1500";
    process.env.TILLER_CACHE_DIR = join(tmp, "default-cache");
    delete process.env.TILLER_MODEL;
    const error = await failure(resolveModelPath(undefined, { progress: false }));
    expect(error.code).toBe("model-download-failed");
    expect(error.message).toContain(DEFAULT_MODEL_URI);
    expect(error.message).toMatch(/pass --model/);
  });

  it("names a missing file", async () => {
    const path = join(tmp, "missing.gguf");
    const error = await failure(resolveModelPath(path));
    expect(error.code).toBe("model-not-found");
    expect(error.message).toContain(path);
  });

  it("rejects a file that is not a GGUF", async () => {
    const path = join(tmp, "notes.txt");
    writeFileSync(path, "these are not the weights you are looking for\n");
    const error = await failure(resolveModelPath(path));
    expect(error.code).toBe("model-not-gguf");
    expect(error.message).toContain(path);
    // The loader checks it too, before llama.cpp sees it.
    expect((await failure(loadModel(path, { gpu: false, threads: 1 }))).code).toBe("model-not-gguf");
  });

  it("rejects a directory", async () => {
    const error = await failure(resolveModelPath(tmp));
    expect(error.code).toBe("model-not-a-file");
    expect(error.message).toContain(tmp);
  });
});

describe("loadModel", () => {
  it("fails with a one-line error naming the path on a truncated GGUF", async () => {
    const head = Buffer.alloc(100);
    const fd = openSync(testModelPath(), "r");
    try {
      readSync(fd, head, 0, 100, 0);
    } finally {
      closeSync(fd);
    }
    const path = join(tmp, "truncated.gguf");
    writeFileSync(path, head);
    const error = await failure(loadModel(path, { gpu: false, threads: 1 }));
    expect(error.code).toBe("model-load-failed");
    expect(error.message).toContain(path);
    expect(error.message).toMatch(/truncated or corrupt/);
  });
});
