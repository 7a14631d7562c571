/**
 * Streaming corpus reading: text files → documents, never holding a whole file in memory.
 *
 * Document separators (`--doc-sep`):
 * - `blank-line` (default): one or more blank (whitespace-only) lines end a document;
 * - `line`: every non-empty line is a document;
 * - anything else is a regular expression: a line it matches ends a document and is dropped
 *   (e.g. `^<\|endoftext\|>$`).
 * The end of each file also ends a document. Lines inside a document are joined with "\n".
 */
import * as fs from "node:fs";
import * as readline from "node:readline";
import type { RE2JS } from "re2js";
import { TillerError } from "../errors.js";
import { compileRegex } from "../rewards/regex.js";

export type DocSeparator = { kind: "blank-line" } | { kind: "line" } | { kind: "regex"; regex: RE2JS };

/**
 * A separator regex is user input run on every line, so it runs on RE2 (re2js, linear time) like
 * the regex reward: no pattern can backtrack catastrophically.
 */
export function parseDocSeparator(spec: string | undefined): DocSeparator {
  if (spec === undefined || spec === "blank-line") return { kind: "blank-line" };
  if (spec === "line") return { kind: "line" };
  if (spec === "") throw new TillerError("--doc-sep: the separator regex is empty", "bad-doc-sep");
  try {
    return { kind: "regex", regex: compileRegex(spec) };
  } catch (e) {
    throw new TillerError(
      `--doc-sep: not blank-line, line, or a valid regular expression: ${(e as Error).message}`,
      "bad-doc-sep",
    );
  }
}

/**
 * Documents of one file, in order. `onBytes` is called with the bytes read so far (for progress).
 */
export async function* readDocuments(
  file: string,
  separator: DocSeparator,
  onBytes?: (bytesRead: number) => void,
): AsyncGenerator<string> {
  let stream: fs.ReadStream;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw new Error("not a regular file");
    stream = fs.createReadStream(file, { encoding: "utf8", highWaterMark: 1 << 20 });
  } catch (e) {
    throw new TillerError(`cannot read corpus file ${file}: ${(e as Error).message}`, "corpus-not-found");
  }
  const lines = readline.createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  let current: string[] = [];
  let lastReported = 0;
  for await (const line of lines) {
    if (onBytes && stream.bytesRead !== lastReported) {
      lastReported = stream.bytesRead;
      onBytes(lastReported);
    }
    let ends: boolean;
    let keep: boolean;
    switch (separator.kind) {
      case "blank-line":
        ends = line.trim() === "";
        keep = !ends;
        break;
      case "line":
        ends = true;
        keep = line.trim() !== "";
        break;
      case "regex":
        ends = separator.regex.test(line);
        keep = !ends;
        break;
    }
    if (keep) current.push(line);
    if (ends && current.length > 0) {
      yield current.join("\n");
      current = [];
    }
  }
  if (current.length > 0) yield current.join("\n");
  onBytes?.(stream.bytesRead);
}
