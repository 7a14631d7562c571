/**
 * Ctrl-C and SIGTERM for every command. The first signal aborts the command's AbortSignal
 * ({@link commandSignal}); the command stops at its next check and exits 130 ("tiller: aborted").
 * If it has not exited within {@link INTERRUPT_GRACE_MS} (something that ignores the signal, such
 * as a reward promise that never settles), tiller exits 130 anyway; a second signal exits at once.
 *
 * Once a command's work is done and committed ({@link markFinished}: the index renamed into place,
 * the results printed), a signal no longer changes the outcome: the command completes and exits 0.
 * A command that stops gracefully on its own (a server finishing in-flight requests) registers
 * {@link onInterrupt}: the first signal calls it instead, with no deadline; a second exits 130.
 */
import { TillerError } from "../errors.js";
import { ABORT_EXIT_CODE } from "./exitCodes.js";

export const INTERRUPT_GRACE_MS = 900;

let controller = new AbortController();
let installed = false;
let finished = false;
let interrupted = false;
let watchdog: NodeJS.Timeout | undefined;
let gracefulStop: ((signal: NodeJS.Signals) => void) | undefined;

function exitAborted(): never {
  process.stderr.write("tiller: aborted\n");
  process.exit(ABORT_EXIT_CODE);
}

function onSignal(name: NodeJS.Signals): void {
  if (finished) {
    // Done already: let it finish; a second signal only hurries the exit.
    if (interrupted) process.exit(0);
    interrupted = true;
    return;
  }
  if (interrupted) exitAborted();
  interrupted = true;
  if (gracefulStop) {
    gracefulStop(name);
    return;
  }
  controller.abort(new TillerError(`aborted (${name})`, "aborted", ABORT_EXIT_CODE));
  watchdog = setTimeout(() => {
    if (!finished) exitAborted();
  }, INTERRUPT_GRACE_MS);
}

/** Installs the SIGINT/SIGTERM handlers (once, from runMain). */
export function installInterruptHandlers(): void {
  if (installed) return;
  installed = true;
  controller = new AbortController();
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
}

/**
 * The first SIGINT/SIGTERM calls `stop` (which must end the command, e.g. by resolving its action)
 * instead of aborting with a deadline; a second signal still exits at once with 130.
 */
export function onInterrupt(stop: (signal: NodeJS.Signals) => void): void {
  gracefulStop = stop;
}

/** Aborted by the first SIGINT/SIGTERM (never, when the handlers are not installed). */
export function commandSignal(): AbortSignal {
  return controller.signal;
}

/** The command's results are complete: later signals no longer turn its exit status into 130. */
export function markFinished(): void {
  finished = true;
  if (watchdog) clearTimeout(watchdog);
  watchdog = undefined;
}

/** Whether a signal arrived (even one ignored because the command had finished). */
export function wasInterrupted(): boolean {
  return interrupted;
}
