/**
 * Exit statuses: 0 success, 1 environment failure (full disk, unwritable path; see
 * util/fsErrors.ts), 2 bad input (TillerError's default), 130 interrupted, 70 a bug.
 */
/** Exit status of a run stopped by SIGINT (128 + 2), as shells report it; used for SIGTERM too. */
export const ABORT_EXIT_CODE = 130;
