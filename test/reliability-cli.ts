/**
 * Spawning the built CLI asynchronously for the reliability tests: the event loop stays free
 * (never a blocking child-process call), so a test can send signals and time the exit.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { basename } from "node:path";
import { cliPath, testModelPath } from "./helpers.js";

export interface CliResult {
  /** Exit status, null when a signal killed the process. */
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Milliseconds from spawn to exit. */
  ms: number;
}

export interface RunningCli {
  child: ChildProcess;
  /** Output so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves when the process exits (or is killed after the timeout). */
  done: Promise<CliResult>;
  /** Resolves when `pattern` appears on stdout or stderr; rejects if the process exits first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  /** Text written to stdin, then closed ("" closes it at once). Default: stdin ignored. */
  input?: string;
  /** A file descriptor for stdout (e.g. one opened on /dev/full) instead of a pipe. */
  stdoutFd?: number;
  timeoutMs?: number;
  /** Run through another program first, e.g. ["unshare", "-m", "sh", "-c", script, "sh"]. */
  prefix?: readonly string[];
}

export function assertBuilt(): void {
  if (!existsSync(cliPath)) throw new Error(`${cliPath} not found: run \`npm run build\` first`);
}

/** Model flags every test run uses: the real stories model, on the CPU, one thread. */
export function modelArgs(): string[] {
  return ["--model", testModelPath(), "--threads", "1", "--no-gpu"];
}

export function spawnCli(args: readonly string[], options: SpawnOptions = {}): RunningCli {
  const started = Date.now();
  const command = options.prefix ? options.prefix[0] : process.execPath;
  const argv = options.prefix
    ? [...options.prefix.slice(1), process.execPath, cliPath, ...args]
    : [cliPath, ...args];
  const child = spawn(command, argv, {
    env: { ...(options.env ?? process.env), NO_COLOR: "1" },
    stdio: [options.input === undefined ? "ignore" : "pipe", options.stdoutFd ?? "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  const listeners: (() => void)[] = [];
  const notify = () => {
    for (const listener of [...listeners]) listener();
  };
  child.stdout?.on("data", (chunk) => {
    stdout += chunk;
    notify();
  });
  child.stderr?.on("data", (chunk) => {
    stderr += chunk;
    notify();
  });
  if (options.input !== undefined) child.stdin?.end(options.input);
  const timeout = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
  const done = new Promise<CliResult>((resolve) => {
    child.on("close", (status, signal) => {
      clearTimeout(timeout);
      notify();
      resolve({ status, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    done,
    waitFor(pattern, timeoutMs = 60_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (pattern.test(stdout) || pattern.test(stderr)) {
            finish();
            resolve();
          } else if (child.exitCode !== null || child.signalCode !== null) {
            finish();
            reject(new Error(`exited before ${pattern}: ${stderr}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`no ${pattern} within ${timeoutMs} ms; stderr: ${stderr}`));
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          const at = listeners.indexOf(check);
          if (at >= 0) listeners.splice(at, 1);
        };
        listeners.push(check);
        check();
      });
    },
  };
}

/** Runs the CLI to completion. */
export function runCliAsync(args: readonly string[], options: SpawnOptions = {}): Promise<CliResult> {
  return spawnCli(args, options).done;
}

/**
 * Resolves once the process has mapped the model file: start-up is over (tiller's signal handlers
 * are installed before anything is loaded) and the run is about to start. A signal sent while
 * Node itself is still starting would kill the process with the default action.
 */
export async function modelLoaded(running: RunningCli, timeoutMs = 90_000): Promise<void> {
  const pid = running.child.pid;
  const model = basename(testModelPath());
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (running.child.exitCode !== null)
      throw new Error(`exited before loading the model: ${running.stderr}`);
    try {
      if (readFileSync(`/proc/${pid}/maps`, "utf8").includes(model)) return;
    } catch {
      // not started yet
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`the model was not loaded within ${timeoutMs} ms`);
}

/** Sends `signal` and resolves with the result and the milliseconds from the signal to the exit. */
export async function interrupt(
  running: RunningCli,
  signal: NodeJS.Signals,
): Promise<CliResult & { afterSignalMs: number }> {
  const sent = Date.now();
  running.child.kill(signal);
  const result = await running.done;
  return { ...result, afterSignalMs: Date.now() - sent };
}

/** stderr is one `tiller: …` line (no stack trace). */
export function oneLine(stderr: string): boolean {
  return /^tiller: [^\n]+\n$/.test(stderr) && !/\n\s+at /.test(stderr);
}
