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
 * Longest document, in characters. A corpus document is tokenized in one call that cannot be
 * interrupted, and a file without the expected separators would otherwise become one giant
 * document (or a binary file one giant line).
 */
export const MAX_DOCUMENT_CHARS = 16 * 1024 * 1024;

/**
 * Documents of one file, in order. `onBytes` is called with the bytes read so far (for progress).
 * A file with NUL bytes is not text; a document longer than {@link MAX_DOCUMENT_CHARS} is refused
 * before it is held whole — each a one-line error naming the file.
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
  let current: string[] = [];
  let size = 0;
  let reported = 0;
  try {
    for await (const line of lines(stream, file)) {
      if (onBytes && stream.bytesRead !== reported) {
        reported = stream.bytesRead;
        onBytes(reported);
      }
      const { ends, keep } = classify(line, separator);
      if (keep) {
        current.push(line);
        size += line.length + 1;
        if (size > MAX_DOCUMENT_CHARS) throw tooLong(file, separator);
      }
      if (ends && current.length > 0) {
        yield current.join("\n");
        current = [];
        size = 0;
      }
    }
  } finally {
    stream.destroy();
  }
  if (current.length > 0) yield current.join("\n");
  onBytes?.(stream.bytesRead);
}

function tooLong(file: string, separator: DocSeparator): TillerError {
  return new TillerError(
    `corpus file ${file}: a document is longer than ${MAX_DOCUMENT_CHARS / 1024 / 1024} Mi characters (separator: ${separator.kind}); split the file into documents with --doc-sep line or a separator regex`,
    "corpus-document-too-long",
  );
}

/** Whether a line ends the current document, and whether it belongs to it. */
function classify(line: string, separator: DocSeparator): { ends: boolean; keep: boolean } {
  switch (separator.kind) {
    case "blank-line": {
      const blank = line.trim() === "";
      return { ends: blank, keep: !blank };
    }
    case "line":
      return { ends: true, keep: line.trim() !== "" };
    case "regex": {
      const matched = separator.regex.test(line);
      return { ends: matched, keep: !matched };
    }
  }
}

/**
 * The lines of a text stream (LF or CRLF), never holding more than one line plus one chunk: a
 * line longer than {@link MAX_DOCUMENT_CHARS} or a NUL byte (a binary file) is an error.
 */
async function* lines(stream: AsyncIterable<string | Buffer>, file: string): AsyncGenerator<string> {
  let partial = "";
  for await (const chunk of stream) {
    const text = String(chunk);
    if (text.includes("\u0000"))
      throw new TillerError(`corpus file ${file} holds NUL bytes: it is not a text file`, "corpus-not-text");
    const pieces = (partial + text).split("\n");
    partial = pieces.pop() ?? "";
    if (partial.length > MAX_DOCUMENT_CHARS)
      throw new TillerError(
        `corpus file ${file}: a line is longer than ${MAX_DOCUMENT_CHARS / 1024 / 1024} Mi characters; is it a text file?`,
        "corpus-document-too-long",
      );
    for (const piece of pieces) yield piece.endsWith("\r") ? piece.slice(0, -1) : piece;
  }
  if (partial !== "") yield partial.endsWith("\r") ? partial.slice(0, -1) : partial;
}
