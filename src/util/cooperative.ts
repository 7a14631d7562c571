/**
 * Long synchronous loops (bootstrap resampling, index writing, corpus splitting) must not hold
 * the event loop: a SIGINT/SIGTERM handler only runs when the loop gives way. A loop asks
 * `slice.due` every iteration (one clock read) and, when due, `await slice.yield()`, which lets
 * pending events run (setImmediate) and throws the abort error when the signal has fired.
 */
import { TillerError } from "../errors.js";

/** Milliseconds a loop may run between yields (so an abort is seen well within a second). */
export const DEFAULT_SLICE_MS = 25;

/** The error an aborted operation rejects with: the signal's TillerError reason, or a generic one. */
export function abortError(signal: AbortSignal): TillerError {
  const reason = signal.reason;
  if (reason instanceof TillerError) return reason;
  return new TillerError("aborted", "aborted", 130);
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

export class TimeSlice {
  private last = performance.now();

  constructor(
    private readonly signal?: AbortSignal,
    private readonly sliceMs = DEFAULT_SLICE_MS,
  ) {}

  /** True once the loop has run for a slice without yielding. */
  get due(): boolean {
    return performance.now() - this.last >= this.sliceMs;
  }

  /** Gives way to pending events, then throws if the signal fired meanwhile. */
  async yield(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.last = performance.now();
    throwIfAborted(this.signal);
  }

  /** `yield()` when due; a no-op otherwise (still throws promptly once aborted). */
  async maybeYield(): Promise<void> {
    if (this.due) await this.yield();
    else throwIfAborted(this.signal);
  }
}

/**
 * A long computation written as a generator that yields every few thousand iterations: the same
 * code runs straight through ({@link runSteps}) or cooperatively ({@link runStepsCooperatively}).
 */
export type Steps = Generator<void, void, void>;

/** Runs `steps` to the end without giving way. */
export function runSteps(steps: Steps): void {
  while (!steps.next().done);
}

/** Runs `steps`, giving way to pending events every slice; throws the abort error once `signal` fires. */
export async function runStepsCooperatively(steps: Steps, signal?: AbortSignal): Promise<void> {
  const slice = new TimeSlice(signal);
  throwIfAborted(signal);
  while (!steps.next().done) await slice.maybeYield();
}
