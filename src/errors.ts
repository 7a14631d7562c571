/**
 * The one error type tiller raises for problems the user can fix (bad input, missing files,
 * unreachable hub). The CLI prints `message` on one line and exits with `exitCode`; anything
 * that is not a TillerError is a bug and is printed with its stack.
 */
export class TillerError extends Error {
  override readonly name = "TillerError";
  constructor(
    message: string,
    /** A stable, machine-readable reason, e.g. "model-not-found", "bad-reward-spec". */
    readonly code: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

export function isTillerError(error: unknown): error is TillerError {
  return error instanceof TillerError;
}
