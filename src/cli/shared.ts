import type { EventEmitter } from "node:events";
import { type Command, InvalidArgumentError, Option } from "commander";
import { isTillerError } from "../errors.js";
import type { LoadModelOptions } from "../lm/load.js";
import type { ChatMode } from "../lm/prompt.js";
import type { LanguageModel } from "../lm/types.js";
import { describeSystemError, IO_EXIT_CODE, isSystemError } from "../util/fsErrors.js";
import { ABORT_EXIT_CODE } from "./exitCodes.js";
import { threadCount } from "./limits.js";
import { installInterruptHandlers, markFinished } from "./signals.js";

/** Parses the program; user errors print one line and exit non-zero, bugs print a stack. */
export async function runMain(program: Command): Promise<void> {
  exitQuietlyWhenStdoutCloses();
  installInterruptHandlers();
  try {
    await program.parseAsync(process.argv);
    markFinished();
  } catch (error) {
    reportAndExit(error);
  }
  // Exit now rather than when the event loop empties: natural exit closes the signal handlers
  // before native teardown (llama.cpp) ends, and a Ctrl-C in that window would kill a finished
  // run. So a command's action resolves only when the command is done (a server awaits its close).
  await new Promise<void>((resolve) => process.stdout.write("", () => resolve()));
  process.exit(process.exitCode ?? 0);
}

/**
 * A reader that stops early (`tiller generate … | head -c 10`) closes the pipe; the next write
 * fails with EPIPE, which Node raises as an unhandled 'error' event. That is not a failure of
 * tiller: stop quietly.
 */
export function exitQuietlyWhenStdoutCloses(): void {
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(0);
    // A full disk or a closed descriptor behind stdout (`tiller generate … > /dev/full`).
    process.stderr.write(`tiller: cannot write to standard output: ${describeSystemError(error)}\n`);
    process.exit(IO_EXIT_CODE);
  });
}

/**
 * An interrupted run (Ctrl-C aborts the command's AbortSignal): the DOMException "AbortError" that
 * `signal.throwIfAborted()` raises, or a TillerError with code "aborted".
 */
export function isAbortError(error: unknown): boolean {
  if (isTillerError(error)) return error.code === "aborted";
  return typeof error === "object" && error !== null && (error as { name?: unknown }).name === "AbortError";
}

export { ABORT_EXIT_CODE };

export function reportAndExit(error: unknown): never {
  if (isAbortError(error)) {
    // An aborted TillerError may say what was kept ("aborted; 3 of 8 runs saved in …").
    const detail = isTillerError(error) && error.message.startsWith("aborted;") ? error.message : "aborted";
    process.stderr.write(`tiller: ${detail}\n`);
    process.exit(ABORT_EXIT_CODE);
  }
  if (isTillerError(error)) {
    process.stderr.write(`tiller: ${error.message}\n`);
    process.exit(error.exitCode);
  }
  if (isSystemError(error)) {
    // No filesystem failure is a bug: one line naming what failed, never a stack trace.
    const where = error.path ? ` ${error.path}` : "";
    process.stderr.write(
      `tiller: cannot ${error.syscall ?? "access"}${where}: ${describeSystemError(error)}\n`,
    );
    process.exit(IO_EXIT_CODE);
  }
  process.stderr.write(
    `tiller: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(70);
}

/** Wraps a command action so its errors are reported the tiller way. */
export function action<A extends unknown[]>(
  fn: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (error) {
      reportAndExit(error);
    }
  };
}

export interface ModelCliOptions {
  /** One local model, or several server URLs (a fleet). */
  model?: string | string[];
  backend?: string;
  gpu?: boolean;
  threads?: number;
  contextSize?: number;
}

/** --model, --gpu/--no-gpu, --threads, --context-size. */
export function addModelOptions(command: Command): Command {
  return command
    .option(
      "-m, --model <path|hf:uri|url>",
      "GGUF file, hf:owner/repo/file.gguf, or a llama-server / vLLM URL (repeat for a fleet of servers; default: $TILLER_MODEL, else a small default model)",
      (value: string, previous: string | string[] | undefined) =>
        previous === undefined ? value : [...(Array.isArray(previous) ? previous : [previous]), value],
    )
    .addOption(
      new Option("--backend <dialect>", "server dialect for a URL --model (default: detected)").choices([
        "llama-server",
        "vllm",
      ]),
    )
    .option("--gpu", "require a GPU")
    .option("--no-gpu", "run on the CPU only")
    .option(
      "--threads <n>",
      "CPU threads, at most the CPU cores (default: measured fastest for this model)",
      threadCount,
    )
    .option("--context-size <tokens>", "tokens per sequence (prompt + output)", positiveInt);
}

export interface ChatCliOptions {
  system?: string;
  chat: ChatMode;
}

/** --system, --chat: how the prompt reaches the model (through its chat template or as plain text). */
export function addChatOptions(command: Command): Command {
  return command
    .option("--system <text>", "a system message (needs the model's chat template)")
    .addOption(
      new Option(
        "--chat <mode>",
        "apply the model's own chat template: auto (when the GGUF carries one), on (require it), off (plain prompt)",
      )
        .choices(["auto", "on", "off"])
        .default("auto"),
    );
}

export async function loadModelFromOptions(
  options: ModelCliOptions,
  extra: LoadModelOptions = {},
): Promise<LanguageModel> {
  // Imported here, not at the top: `tiller --help` and bad input need no llama.cpp.
  const { openModel } = await import("../lm/open.js");
  return openModel(options.model, {
    backend: options.backend,
    // commander sets gpu=true for --gpu, false for --no-gpu, and true by default for a
    // --no-* flag; only an explicit flag should force either way.
    gpu: gpuFlag(),
    threads: options.threads ?? "auto",
    contextSize: options.contextSize,
    ...extra,
  });
}

function gpuFlag(): boolean | "auto" {
  if (process.argv.includes("--no-gpu")) return false;
  if (process.argv.includes("--gpu")) return true;
  return "auto";
}

/**
 * Another name for `command`'s option `target` (e.g. an older one), hidden from --help. Its value
 * goes through the option's own parser and lands where the option's does, so a command's options
 * hold one field per concept and its messages name the flag --help shows.
 */
export function addAlias(command: Command, alias: string, target: string): Command {
  const option = command.options.find((o) => o.long === target);
  if (!option) throw new Error(`addAlias: ${command.name()} has no option ${target}`);
  const value = option.required ? " <value>" : option.optional ? " [value]" : "";
  const hidden = new Option(`${alias}${value}`).hideHelp();
  command.addOption(hidden);
  // Commander parses an option by emitting "option:<name>" on the command (an EventEmitter at
  // run time; its typings declare only `on`): re-emitting under the target's name parses the
  // alias's value exactly as the target's.
  const events = command as unknown as EventEmitter;
  command.on(`option:${hidden.name()}`, (arg?: string) => events.emit(`option:${option.name()}`, arg));
  return command;
}

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError(`expected an integer ≥ 0, got "${value}"`);
  return n;
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError(`expected a number > 0, got "${value}"`);
  return n;
}

export function finiteNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n))
    throw new InvalidArgumentError(`expected a number, got "${value}"`);
  return n;
}

export function anyInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`expected an integer, got "${value}"`);
  return n;
}
