import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "./helpers.js";

/**
 * A synchronous child process (node's spawn/exec/execFile *Sync calls) blocks the vitest worker's event
 * loop; on a slow machine its RPC to the main process times out ("Timeout calling onTaskUpdate")
 * and the run fails with every test green. Tests spawn asynchronously (test/helpers.ts `runCli`).
 */
// Spelled in pieces so this guard's own source does not match it.
const SYNC = "Sync";
const BLOCKING = new RegExp(`\\b(spawn${SYNC}|exec${SYNC}|execFile${SYNC})\\b`);

/** Every test file and test helper: test/** and src/**\/*.test.ts. */
function testFiles(): string[] {
  const files: string[] = [];
  const walk = (dir: string, all: boolean) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path, all);
      else if (/\.[cm]?[jt]s$/.test(entry.name) && (all || /\.test\.[cm]?[jt]s$/.test(entry.name)))
        files.push(path);
    }
  };
  walk(join(repoRoot, "test"), true);
  walk(join(repoRoot, "src"), false);
  return files;
}

describe("tests never block the event loop", () => {
  it("no test file calls a synchronous child-process function", () => {
    const files = testFiles();
    expect(files.length).toBeGreaterThan(10);
    const offenders = files
      .filter((file) => file !== join(repoRoot, "test/no-blocking.test.ts"))
      .flatMap((file) =>
        readFileSync(file, "utf8")
          .split("\n")
          .flatMap((line, i) =>
            BLOCKING.test(line) ? [`${relative(repoRoot, file)}:${i + 1}: ${line.trim()}`] : [],
          ),
      );
    expect(offenders, `use runCli/runNode from test/helpers.ts instead:\n${offenders.join("\n")}`).toEqual(
      [],
    );
  });
});
