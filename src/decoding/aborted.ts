/**
 * One abort behaviour for every strategy: an aborted decode rejects with a {@link DecodeAbortedError}
 * (a TillerError with code "aborted") that carries what was decoded so far, whether the strategy
 * stopped early and returned its partial output (greedy, sampling) or threw (beam, DeAL, Best-of-N),
 * and whether the signal fired before it started.
 */
import { TillerError } from "../errors.js";
import type { Token } from "../lm/types.js";

/** Milliseconds an aborted decode is given to stop by itself before the caller is answered anyway. */
export const ABORT_GRACE_MS = 250;

/** What an aborted decode had produced when it stopped. */
export interface PartialResult {
  /** The text decoded so far (what a strategy had committed: streamed or returned). */
  text: string;
  /** Its tokens (re-tokenized from `text` for a strategy that threw instead of returning them). */
  tokens: Token[];
}

export class DecodeAbortedError extends TillerError {
  constructor(
    message: string,
    /** What was decoded before the abort. */
    readonly partial: PartialResult,
  ) {
    // 130: the exit status of an interrupted run (128 + SIGINT), as the CLI reports it.
    super(message, "aborted", 130);
  }
}

/** The error for a decode aborted by `signal`: the signal's own TillerError message, or "aborted". */
export function decodeAborted(signal: AbortSignal, partial: PartialResult): DecodeAbortedError {
  const reason = signal.reason;
  const message = reason instanceof TillerError && reason.code === "aborted" ? reason.message : "aborted";
  return new DecodeAbortedError(message, partial);
}

/**
 * Waits for `work`; once `signal` fires, gives it {@link ABORT_GRACE_MS} to settle by itself (so a
 * strategy that honours the signal frees its model first) and then rejects with `onAbort()`'s
 * error, so work that ignores the signal (a reward promise that never settles) cannot hang the
 * caller. Without a signal it is `work`.
 */
export async function untilAborted<T>(
  work: Promise<T>,
  signal: AbortSignal | undefined,
  onAbort: () => Error,
): Promise<T> {
  if (!signal) return work;
  let timer: NodeJS.Timeout | undefined;
  let listener: (() => void) | undefined;
  const abandoned = new Promise<never>((_, reject) => {
    const giveUp = () => {
      timer = setTimeout(() => reject(onAbort()), ABORT_GRACE_MS);
    };
    if (signal.aborted) giveUp();
    else {
      listener = giveUp;
      signal.addEventListener("abort", giveUp, { once: true });
    }
  });
  // The loser of the race must not surface as an unhandled rejection.
  abandoned.catch(() => {});
  try {
    return await Promise.race([work, abandoned]);
  } finally {
    clearTimeout(timer);
    if (listener) signal.removeEventListener("abort", listener);
  }
}
