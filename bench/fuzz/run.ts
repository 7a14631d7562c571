/**
 * Running fuzz cases and judging them. A CLI case is a crash when it dies of a signal, exits with
 * a status other than 0/1/2/130 (130 only for an interrupted case), or prints a stack trace; a
 * hang when it does not exit within its bound. A library case is a crash when it throws anything
 * but a TillerError. Controls must succeed.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Fixtures } from "./fixtures.js";
import type { FuzzCase, FuzzResult, Verdict } from "./types.js";

const STACK = /\n\s+at |internal error/;

/** Milliseconds a signalled run may take to exit before it counts as a hang. */
export const ABORT_BOUND_MS = 5_000;

function judgeCli(c: FuzzCase, status: number | null, signal: string | null, stderr: string): Verdict {
  if (signal) return "crash";
  if (status === null || ![0, 1, 2, 130].includes(status)) return "crash";
  if (STACK.test(stderr)) return "crash";
  if (status === 130 && !c.interrupt) return "crash"; // 130 means interrupted, and nothing was
  if (c.interrupt) return status === 0 || status === 130 ? "ok" : "control-failed";
  if (c.control && status !== 0) return "control-failed";
  return "ok";
}

/** Waits until the process has mapped the model file (start-up over, handlers installed). */
async function modelMapped(pid: number, model: string, until: number): Promise<boolean> {
  const name = path.basename(model);
  while (Date.now() < until) {
    try {
      if (fs.readFileSync(`/proc/${pid}/maps`, "utf8").includes(name)) return true;
    } catch {
      return false; // exited
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

export function runCliCase(c: FuzzCase, fx: Fixtures): Promise<FuzzResult> {
  const started = Date.now();
  const full = c.stdoutToFull ? fs.openSync("/dev/full", "w") : undefined;
  const child = spawn(process.execPath, [fx.cli, ...c.args], {
    env: { ...process.env, NO_COLOR: "1", TILLER_CACHE_DIR: path.join(fx.dir, "cache") },
    stdio: [c.input === undefined ? "ignore" : "pipe", full ?? "pipe", "pipe"],
  });
  if (full !== undefined) fs.closeSync(full);
  if (c.input !== undefined) child.stdin?.end(c.input);
  let stderr = "";
  let stopped = false;
  child.stdout?.resume();
  child.stderr?.on("data", (d) => {
    stderr += d;
    // A server runs until told to stop: SIGTERM once it listens; it must stop cleanly (exit 0).
    if (c.server && !stopped && /tiller: serving /.test(stderr)) {
      stopped = true;
      child.kill("SIGTERM");
    }
  });
  let hung = false;
  let signalledAt: number | undefined;
  const kill = setTimeout(() => {
    hung = true;
    child.kill("SIGKILL");
  }, c.timeoutMs);
  if (c.interrupt) {
    const { signal, afterMs } = c.interrupt;
    void modelMapped(child.pid as number, fx.model, started + c.timeoutMs).then(async (mapped) => {
      if (!mapped || child.exitCode !== null) return;
      await new Promise((r) => setTimeout(r, afterMs));
      if (child.exitCode !== null) return;
      signalledAt = Date.now();
      child.kill(signal);
      setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) {
          hung = true;
          child.kill("SIGKILL");
        }
      }, ABORT_BOUND_MS);
    });
  }
  return new Promise((resolve) => {
    child.on("close", (status, signal) => {
      clearTimeout(kill);
      const verdict: Verdict = hung ? "hang" : judgeCli(c, status, signal, stderr);
      resolve({
        case: c,
        verdict,
        detail: `${signal ?? status}: ${stderr.trim().split("\n").slice(-3).join(" | ").slice(0, 300)}`,
        ms: Date.now() - started,
        abortMs: signalledAt === undefined ? undefined : Date.now() - signalledAt,
        status,
      });
    });
  });
}

/**
 * Runs library cases in one child (restarted after a hang, from the next case). `onResult` gets
 * each case's result as it finishes.
 */
export async function runLibraryCases(
  cases: FuzzCase[],
  fx: Fixtures,
  repo: string,
  onResult: (result: FuzzResult) => void,
): Promise<void> {
  let remaining = [...cases];
  const fixturesFile = path.join(fx.dir, "fixtures.json");
  fs.writeFileSync(fixturesFile, JSON.stringify(fx));
  while (remaining.length > 0) {
    const casesFile = path.join(fx.dir, `lib-cases-${remaining[0].id}.json`);
    fs.writeFileSync(casesFile, JSON.stringify(remaining));
    const done = await runLibraryBatch(remaining, casesFile, fixturesFile, repo, onResult);
    remaining = remaining.slice(done);
  }
}

/** One runner process; resolves with how many cases it settled (a hang or crash ends it). */
function runLibraryBatch(
  cases: FuzzCase[],
  casesFile: string,
  fixturesFile: string,
  repo: string,
  onResult: (result: FuzzResult) => void,
): Promise<number> {
  const byId = new Map(cases.map((c) => [c.id, c]));
  const runner = path.join(repo, "bench/fuzz/library-runner.mjs");
  const child = spawn(process.execPath, [runner, repo, casesFile, fixturesFile], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let settled = 0;
  let current: { id: number; at: number } | undefined;
  let buffer = "";
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const watchdog = setInterval(() => {
    const c = current && byId.get(current.id);
    if (current && c && Date.now() - current.at > c.timeoutMs + 5_000) child.kill("SIGKILL");
  }, 500);
  child.stdout.on("data", (d) => {
    buffer += d;
    for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
      const line = JSON.parse(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
      if ("start" in line) {
        current = { id: line.start, at: Date.now() };
        continue;
      }
      const c = byId.get(line.id) as FuzzCase;
      const verdict: Verdict =
        line.outcome === "hang"
          ? "hang"
          : line.outcome === "error"
            ? "crash"
            : c.control && line.outcome !== "resolved"
              ? "control-failed"
              : "ok";
      onResult({
        case: c,
        verdict,
        detail: `${line.outcome} ${line.detail}`,
        ms: Date.now() - (current?.at ?? Date.now()),
      });
      current = undefined;
      settled++;
    }
  });
  return new Promise((resolve) => {
    child.on("close", (status, signal) => {
      clearInterval(watchdog);
      if (settled < cases.length) {
        // The case in progress never finished: a synchronous hang (killed) or a process crash.
        const c = current ? byId.get(current.id) : cases[settled];
        if (c)
          onResult({
            case: c,
            verdict: signal === "SIGKILL" ? "hang" : "crash",
            detail: `runner ${signal ?? status}: ${stderr.slice(-400)}`,
            ms: 0,
          });
        resolve(settled + 1);
      } else resolve(settled);
    });
  });
}
