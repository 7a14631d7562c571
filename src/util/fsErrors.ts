/**
 * Filesystem failures as one line the user can act on: "cannot write out/summary.json: no space
 * left on device". Every path tiller writes or reads goes through {@link fsError} so no errno ever
 * reaches the user as a stack trace.
 */
import { TillerError } from "../errors.js";

/** Exit status of an environment failure (full disk, unwritable path), as opposed to bad input (2). */
export const IO_EXIT_CODE = 1;

const REASONS: Record<string, string> = {
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  ENOTDIR: "a part of the path is a file, not a folder",
  EISDIR: "it is a folder",
  ENOENT: "no such file or folder",
  EEXIST: "it already exists",
  ENOTEMPTY: "the folder is not empty",
  EMFILE: "too many open files",
  ENAMETOOLONG: "the name is too long",
  EIO: "input/output error",
  EFBIG: "the file is too large",
  EPIPE: "the reader closed the pipe",
  EBADF: "not open for writing",
  ELOOP: "too many symbolic links",
  EXDEV: "crosses file systems",
  ERR_FS_EISDIR: "it is a folder",
  ERR_FS_FILE_TOO_LARGE: "the file is too large",
};

/** A Node system error: an errno code such as "ENOSPC", or one of Node's own fs codes (ERR_FS_…). */
export function isSystemError(error: unknown): error is NodeJS.ErrnoException {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return error instanceof Error && typeof code === "string" && /^(E[A-Z0-9]+|ERR_FS_[A-Z_]+)$/.test(code);
}

/** A short reason for a system error ("no space left on device"), or its message. */
export function describeSystemError(error: unknown): string {
  if (isSystemError(error)) return REASONS[error.code as string] ?? `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

/**
 * A system error as "cannot <verb> <path>: <reason>", a TillerError (exit 1). Anything else
 * (a TillerError, an abort, a bug) is returned unchanged, so it is reported as what it is.
 */
export function fsError(verb: string, path: string, error: unknown, code = "io-error"): Error {
  if (isSystemError(error))
    return new TillerError(`cannot ${verb} ${path}: ${describeSystemError(error)}`, code, IO_EXIT_CODE);
  return error instanceof Error ? error : new Error(String(error));
}

/** Runs `fn`, turning any filesystem error into {@link fsError}. */
export function guardFs<T>(verb: string, path: string, fn: () => T, code?: string): T {
  try {
    return fn();
  } catch (error) {
    throw fsError(verb, path, error, code);
  }
}
