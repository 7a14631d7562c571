/**
 * An append-only JSON Lines log that survives crashes: each record is one line, written with a
 * single write call and flushed to disk (fdatasync) before `append` returns, so a record that
 * was reported done is on disk. A crash can only leave a torn last line (no trailing newline);
 * {@link readAppendLog} reports it and {@link AppendLog.open} cuts it off before appending.
 */
import * as fs from "node:fs";
import { TillerError } from "../errors.js";
import { fsError } from "./fsErrors.js";

export interface AppendLogContents<T> {
  records: T[];
  /** Bytes of a torn last line (a write cut short by a crash), 0 when the file ends cleanly. */
  tornBytes: number;
  /** Length of the file up to the end of its last complete line. */
  soundBytes: number;
}

/** Reads the complete records of `file` (missing file: none). A corrupt complete line is an error. */
export function readAppendLog<T>(file: string): AppendLogContents<T> {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT")
      return { records: [], tornBytes: 0, soundBytes: 0 };
    throw fsError("read", file, error);
  }
  const end = text.lastIndexOf("\n") + 1;
  const sound = text.slice(0, end);
  const records: T[] = [];
  const lines = sound.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() === "") continue;
    try {
      records.push(JSON.parse(lines[i]) as T);
    } catch {
      throw new TillerError(
        `${file}:${i + 1} is not a JSON record; the file was edited or is not tiller's (move it away to start over)`,
        "corrupt-log",
      );
    }
  }
  return {
    records,
    tornBytes: Buffer.byteLength(text) - Buffer.byteLength(sound),
    soundBytes: Buffer.byteLength(sound),
  };
}

export class AppendLog {
  private constructor(
    readonly file: string,
    private fd: number | undefined,
  ) {}

  /**
   * Opens `file` for appending (created if missing). A torn last line is cut off first, so the
   * next record starts on a line of its own.
   */
  static open(file: string, options: { truncate?: boolean } = {}): AppendLog {
    try {
      if (options.truncate) fs.rmSync(file, { force: true });
      else {
        const { tornBytes, soundBytes } = readAppendLog(file);
        if (tornBytes > 0) fs.truncateSync(file, soundBytes);
      }
      return new AppendLog(file, fs.openSync(file, "a"));
    } catch (error) {
      throw fsError("write", file, error);
    }
  }

  /** Appends one record as a line and waits until it is on disk. */
  append(record: unknown): void {
    if (this.fd === undefined) throw new Error(`append log ${this.file} is closed`);
    const line = Buffer.from(`${JSON.stringify(record)}\n`, "utf8");
    try {
      let offset = 0;
      while (offset < line.length) offset += fs.writeSync(this.fd, line, offset, line.length - offset);
      fs.fdatasyncSync(this.fd);
    } catch (error) {
      throw fsError("write", this.file, error);
    }
  }

  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    try {
      fs.closeSync(fd);
    } catch {
      // Every record was already flushed by append.
    }
  }
}
