/**
 * Whole-file writes that never leave a half-written file: the bytes go to a temporary file in
 * the same folder, are flushed to disk (fsync), and the temporary file is renamed over the
 * target (atomic on POSIX), then the folder entry is flushed. A reader sees the old file or the
 * new one, never a mix; a full disk or a crash leaves the old file untouched.
 *
 * A target that exists and is not a regular file (a device such as /dev/stdout, a FIFO) is
 * written in place: renaming over it would replace the device node.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fsError } from "./fsErrors.js";

/** Temporary files are named `.NAME.tmp-PID-RANDOM` beside their target. */
export function tempPathFor(file: string): string {
  const random = Math.random().toString(36).slice(2, 10);
  return path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${random}`);
}

/** The real path of `file` when it is a symlink to a file (so the link survives), else `file`. */
function resolveTarget(file: string): string {
  try {
    return fs.realpathSync(file);
  } catch {
    return file;
  }
}

function writeAll(fd: number, data: Uint8Array): void {
  let offset = 0;
  while (offset < data.length) offset += fs.writeSync(fd, data, offset, data.length - offset);
}

function fsyncFolder(folder: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(folder, "r");
    fs.fsyncSync(fd);
  } catch {
    // Some file systems cannot fsync a folder; the rename is still atomic.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Writes `data` to `file` atomically; any failure is one TillerError naming `file` (exit 1). */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  const target = resolveTarget(file);
  let existing: fs.Stats | undefined;
  try {
    existing = fs.statSync(target);
  } catch {
    existing = undefined;
  }
  if (existing && !existing.isFile()) {
    if (existing.isDirectory()) throw fsError("write", file, Object.assign(new Error(), { code: "EISDIR" }));
    writeInPlace(file, target, bytes);
    return;
  }
  const temp = tempPathFor(target);
  let fd: number | undefined;
  try {
    fd = fs.openSync(temp, "wx", existing ? existing.mode & 0o777 : 0o644);
    writeAll(fd, bytes);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(temp, target);
  } catch (error) {
    discard(fd, temp);
    throw fsError("write", file, error);
  }
  fsyncFolder(path.dirname(target));
}

/** Best-effort cleanup after a failed write: the error being reported is the write's, not this. */
function discard(fd: number | undefined, temp: string): void {
  try {
    if (fd !== undefined) fs.closeSync(fd);
  } catch {
    // already closed or never opened
  }
  try {
    fs.rmSync(temp, { force: true });
  } catch {
    // e.g. ENOTDIR: the temp file was never created
  }
}

function writeInPlace(file: string, target: string, bytes: Uint8Array): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(target, "w");
    writeAll(fd, bytes);
  } catch (error) {
    throw fsError("write", file, error);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
