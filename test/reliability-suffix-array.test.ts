/**
 * Issue 9, class 4: suffix-array construction (seconds on a large corpus) gives way to the event
 * loop and checks its signal, so SIGINT during an index build stops it within a second, before
 * anything is written; the cooperative construction gives the same array as the straight one.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { suffixArray, suffixArrayAsync } from "../src/provenance/sais.js";
import { repoRoot } from "./helpers.js";

let tmp: string;
beforeAll(() => {
  const builder = path.join(repoRoot, "dist/provenance/builder.js");
  if (!fs.existsSync(builder)) throw new Error(`${builder} not found: run \`npm run build\` first`);
  tmp = fs.mkdtempSync(path.join(tmpdir(), "tiller-sais-"));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Pseudo-random tokens (a fixed LCG), so the corpus has no structure to make SA-IS quick. */
function tokens(n: number, vocabulary: number, seed = 12345): Uint16Array {
  const out = new Uint16Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = (x >>> 16) % vocabulary;
  }
  return out;
}

describe("suffix-array construction is interruptible", () => {
  it("the cooperative construction equals the straight one and stops on its signal", async () => {
    const text = tokens(100_000, 300);
    const cooperative = await suffixArrayAsync(text, 300);
    const straight = suffixArray(text, 300);
    expect(cooperative.length).toBe(straight.length);
    expect(cooperative.every((v, i) => v === straight[i])).toBe(true);
    const controller = new AbortController();
    const building = suffixArrayAsync(tokens(3_000_000, 512), 512, controller.signal);
    setTimeout(() => controller.abort(), 20);
    await expect(building).rejects.toMatchObject({ code: "aborted" });
  });

  it("SIGINT during an index build's suffix-array phase exits within a second, nothing written", async () => {
    const out = path.join(tmp, "idx");
    const builderUrl = pathToFileURL(path.join(repoRoot, "dist/provenance/builder.js")).href;
    // A real IndexBuilder.write in a child process (as `tiller index build` runs it) whose SIGINT
    // handler aborts the build; it reports each phase on stdout.
    const script = `
const { IndexBuilder } = await import(${JSON.stringify(builderUrl)});
const builder = new IndexBuilder({ vocabularySize: 512, model: { id: "m", fileName: "m.gguf", tokenizerFingerprint: "f" } });
let x = 12345;
for (let d = 0; d < 6000; d++) {
  const doc = new Array(500);
  for (let i = 0; i < 500; i++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; doc[i] = (x >>> 16) % 512; }
  builder.addDocument(doc);
}
const controller = new AbortController();
process.on("SIGINT", () => controller.abort());
try {
  await builder.write(${JSON.stringify(out)}, { signal: controller.signal, onPhase: (p) => process.stdout.write(p + "\\n") });
  process.stdout.write("written\\n");
} catch (error) {
  process.stdout.write((error.code ?? "error") + "\\n");
  process.exit(130);
}`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const phase = new Promise<void>((resolve) =>
      child.stdout.on("data", (d) => {
        stdout += d;
        if (stdout.includes("suffix-array\n")) resolve();
      }),
    );
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    await Promise.race([phase, exited]);
    expect(stdout, stderr).toContain("suffix-array\n");
    // 3M tokens take SA-IS seconds; the signal lands well inside the construction.
    await new Promise((r) => setTimeout(r, 100));
    const signalled = performance.now();
    child.kill("SIGINT");
    const code = await exited;
    expect(performance.now() - signalled).toBeLessThan(1000);
    expect(code, stderr).toBe(130);
    // Stopped during the construction: the write phase never started.
    expect(stdout).toBe("suffix-array\naborted\n");
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(tmp).filter((f) => f.startsWith(".idx."))).toEqual([]);
  }, 60_000);
});
