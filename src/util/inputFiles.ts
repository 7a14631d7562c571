/**
 * Reading user-named input files (task files, lexicons, texts to check) with a size cap, so a
 * device such as /dev/zero or a huge file is a one-line error instead of an out-of-memory crash.
 * The cap is {@link inputByteLimit}: 64 MiB, or $TILLER_MAX_INPUT_MB.
 */
import * as fs from "node:fs";
import { TillerError } from "../errors.js";
import { fsError } from "./fsErrors.js";

const DEFAULT_LIMIT_MB = 64;

/** Largest input file tiller reads whole, in bytes ($TILLER_MAX_INPUT_MB, default 64 MiB). */
export function inputByteLimit(): number {
  const raw = process.env.TILLER_MAX_INPUT_MB;
  const mb = raw === undefined || raw.trim() === "" ? DEFAULT_LIMIT_MB : Number(raw);
  if (!Number.isFinite(mb) || mb <= 0)
    throw new TillerError(`TILLER_MAX_INPUT_MB must be a number of MiB > 0, got "${raw}"`, "bad-env");
  return Math.floor(mb * 1024 * 1024);
}

function tooLarge(what: string, file: string, limit: number): TillerError {
  return new TillerError(
    `${what} ${file} is larger than ${Math.round(limit / 1024 / 1024)} MiB, the input size limit (raise it with TILLER_MAX_INPUT_MB)`,
    "input-too-large",
  );
}

/**
 * The text of `file` (UTF-8). Regular files are checked against the cap before reading; pipes
 * and devices are read up to the cap. A folder, a missing file or an oversized one is a
 * TillerError naming `what` and the path (`notFoundCode` for a missing file).
 */
export function readInputText(
  file: string,
  what: string,
  options: { notFoundCode?: string; limit?: number } = {},
): string {
  const limit = options.limit ?? inputByteLimit();
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT")
      throw new TillerError(`${what} not found: ${file}`, options.notFoundCode ?? "input-not-found");
    throw fsError(`read ${what}`, file, error, options.notFoundCode ?? "input-not-found");
  }
  try {
    const stat = fs.fstatSync(fd);
    if (stat.isDirectory())
      throw new TillerError(
        `${what} ${file} is a folder, not a file`,
        options.notFoundCode ?? "input-not-found",
      );
    if (stat.isFile() && stat.size > limit) throw tooLarge(what, file, limit);
    const chunks: Buffer[] = [];
    let total = 0;
    const chunk = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const got = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (got === 0) break;
      total += got;
      if (total > limit) throw tooLarge(what, file, limit);
      chunks.push(Buffer.from(chunk.subarray(0, got)));
    }
    return Buffer.concat(chunks, total).toString("utf8");
  } catch (error) {
    throw fsError(`read ${what}`, file, error, options.notFoundCode ?? "input-not-found");
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads a stream (stdin) up to the cap; more than the cap is a TillerError. */
export async function readInputStream(stream: NodeJS.ReadableStream, what: string): Promise<string> {
  const limit = inputByteLimit();
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const buffer = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer);
    total += buffer.length;
    if (total > limit) throw tooLarge(what, "(stdin)", limit);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks, total).toString("utf8");
}
