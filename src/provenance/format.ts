/**
 * The on-disk layout of a trace index: a flat directory, described in ./FORMAT.md.
 *
 * All binary files are little-endian arrays with no framing; `header.json` says how long each
 * is and carries its sha256. The header is written last, so a directory without one was never
 * finished.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { z } from "zod";
import { TillerError } from "../errors.js";
import { writeFileAtomic } from "../util/atomicWrite.js";
import { TimeSlice } from "../util/cooperative.js";
import { fsError } from "../util/fsErrors.js";

export const FORMAT_NAME = "tiller-trace-index";
/** 2: bit-packed sa.bin (`saWidth` bits per entry), no docs.bin (documents found by separator). */
export const FORMAT_VERSION = 2;

export const HEADER_FILE = "header.json";
export const TOKENS_FILE = "tokens.bin";
export const UNIGRAMS_FILE = "unigrams.bin";
export const SA_FILE = "sa.bin";
export const DATA_FILES = [TOKENS_FILE, UNIGRAMS_FILE, SA_FILE] as const;

/** Separator token value for each token width: the largest value of the width, never a token id. */
export function separatorFor(tokenWidth: 2 | 4): number {
  return tokenWidth === 2 ? 0xffff : 0xffffffff;
}

/** u16 tokens when every id fits below the reserved separator 0xFFFF, else u32. */
export function tokenWidthFor(vocabularySize: number): 2 | 4 {
  return vocabularySize <= 0xffff ? 2 : 4;
}

const fileEntry = z.object({
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

export const headerSchema = z.object({
  format: z.literal(FORMAT_NAME),
  version: z.number().int(),
  tokenWidth: z.union([z.literal(2), z.literal(4)]),
  separator: z.number().int(),
  vocabularySize: z.number().int().positive(),
  /** Length of tokens.bin in tokens: corpus tokens plus one separator after every document. */
  tokens: z.number().int().nonnegative(),
  /** Corpus tokens (separators excluded) = length of sa.bin in entries. */
  corpusTokens: z.number().int().nonnegative(),
  documents: z.number().int().nonnegative(),
  /** Bits per sa.bin entry: ⌈log2 tokens⌉ (at least 1), so every position in tokens.bin fits. */
  saWidth: z.number().int().min(1).max(32),
  model: z.object({
    id: z.string(),
    fileName: z.string(),
    /** Model path or spec as given at build time (used when a query names no model). */
    spec: z.string().optional(),
    tokenizerFingerprint: z.string(),
  }),
  build: z.object({
    docSep: z.string(),
    lowercase: z.boolean(),
    createdAt: z.string(),
    tiller: z.string(),
  }),
  sources: z.array(
    z.object({
      path: z.string(),
      bytes: z.number().int().nonnegative(),
      firstDocument: z.number().int(),
      documents: z.number().int(),
    }),
  ),
  files: z.record(z.string(), fileEntry),
});

export type IndexHeader = z.infer<typeof headerSchema>;

export function assertLittleEndian(): void {
  if (os.endianness() !== "LE") {
    throw new TillerError("trace indexes are little-endian; this machine is big-endian", "index-endianness");
  }
}

/** Bytes of a typed array as a Buffer view (no copy). */
export function bytesOf(array: ArrayBufferView): Buffer {
  return Buffer.from(array.buffer, array.byteOffset, array.byteLength);
}

const CHUNK = 64 * 1024 * 1024;
/** Bytes written and hashed between yields to the event loop (a few ms of work). */
const WRITE_SLICE = 8 * 1024 * 1024;

/**
 * Write `data` to `file` in slices (no 2 GiB limit), fsync it, and return its sha256. Between
 * slices it gives way to the event loop and stops when `signal` fires, so a signal interrupts a
 * large write within milliseconds.
 */
export async function writeBinary(
  file: string,
  data: ArrayBufferView,
  signal?: AbortSignal,
): Promise<{ bytes: number; sha256: string }> {
  const bytes = bytesOf(data);
  const hash = createHash("sha256");
  const slice = new TimeSlice(signal);
  const fd = fs.openSync(file, "w");
  try {
    for (let off = 0; off < bytes.length; off += WRITE_SLICE) {
      await slice.maybeYield();
      const piece = bytes.subarray(off, Math.min(bytes.length, off + WRITE_SLICE));
      hash.update(piece);
      let written = 0;
      while (written < piece.length) written += fs.writeSync(fd, piece, written, piece.length - written);
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return { bytes: bytes.length, sha256: hash.digest("hex") };
}

/**
 * Read `file` fully into `target` (exactly `target.byteLength` bytes), hashing as it goes when
 * `verify`; returns the hex digest or undefined.
 */
export function readBinaryInto(file: string, target: ArrayBufferView, verify: boolean): string | undefined {
  const bytes = bytesOf(target);
  const hash = verify ? createHash("sha256") : undefined;
  const fd = fs.openSync(file, "r");
  try {
    let off = 0;
    while (off < bytes.length) {
      const got = fs.readSync(fd, bytes, off, Math.min(CHUNK, bytes.length - off), off);
      if (got === 0) break;
      hash?.update(bytes.subarray(off, off + got));
      off += got;
    }
    if (off !== bytes.length) {
      throw new TillerError(
        `index file ${file} is truncated (${off} of ${bytes.length} bytes)`,
        "index-truncated",
      );
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash?.digest("hex");
}

export function sha256OfString(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * What is at `out`: nothing (or an empty folder), a tiller trace index (its header parses), or
 * something else — which a build must never replace.
 */
export function targetKind(out: string): "absent" | "empty" | "index" | "other" {
  let entries: string[];
  try {
    if (!fs.statSync(out).isDirectory()) return "other";
    entries = fs.readdirSync(out);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return "absent";
    throw fsError("use index folder", out, error, "index-out-not-empty");
  }
  if (entries.length === 0) return "empty";
  try {
    readHeader(out);
    return "index";
  } catch {
    return "other";
  }
}

/** Throws unless a build may write `out`: it is absent, an empty folder, or a tiller trace index. */
export function checkIndexTarget(out: string): void {
  if (targetKind(out) === "other")
    throw new TillerError(
      `refusing to overwrite ${out}: it is not empty and is not a tiller trace index (no valid ${HEADER_FILE}); choose another --out`,
      "index-out-not-empty",
    );
}

/**
 * Move a finished staging directory into place at `out`. An existing `out` is replaced only when
 * it is an empty folder or a tiller trace index whose header validates; anything else is left
 * alone. The old index is renamed aside first and removed after the new one is in place.
 */
export function commitDirectory(staging: string, out: string): void {
  const kind = targetKind(out);
  if (kind === "other") {
    fs.rmSync(staging, { recursive: true, force: true });
    checkIndexTarget(out);
  }
  if (kind === "absent") {
    fs.renameSync(staging, out);
    return;
  }
  const old = `${path.join(path.dirname(path.resolve(out)), `.${path.basename(out)}.old-${process.pid}-`)}${Date.now()}`;
  fs.renameSync(out, old);
  fs.renameSync(staging, out);
  fs.rmSync(old, { recursive: true, force: true });
}

/**
 * A fresh staging directory beside `out` (same filesystem, so the final rename is atomic), named
 * `.NAME.tmp-PID-XXXXXX`. Staging folders of builds whose process is gone (killed, crashed) are
 * removed first, with leftovers of an interrupted replacement (`.NAME.old-PID-…`).
 */
export function makeStaging(out: string): string {
  const parent = path.dirname(path.resolve(out));
  fs.mkdirSync(parent, { recursive: true });
  removeStaleStaging(out);
  return fs.mkdtempSync(path.join(parent, `.${path.basename(out)}.tmp-${process.pid}-`));
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Removes `.NAME.tmp-*` / `.NAME.old-*` folders beside `out` left by builds that are no longer running. */
export function removeStaleStaging(out: string): string[] {
  const parent = path.dirname(path.resolve(out));
  const name = path.basename(out);
  const removed: string[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync(parent);
  } catch {
    return removed;
  }
  for (const entry of entries) {
    const match = /^\.(.+)\.(tmp|old)-(?:(\d+)-)?/.exec(entry);
    if (!match || match[1] !== name) continue;
    const pid = match[3] === undefined ? undefined : Number(match[3]);
    if (pid !== undefined && pid !== process.pid && processAlive(pid)) continue; // a build in progress
    if (pid === process.pid) continue;
    try {
      fs.rmSync(path.join(parent, entry), { recursive: true, force: true });
      removed.push(entry);
    } catch {
      // Best effort: a leftover we cannot remove does not stop this build.
    }
  }
  return removed;
}

/** Write the header atomically (temp file + fsync + rename) into `dir`. */
export function writeHeader(dir: string, header: IndexHeader): void {
  writeFileAtomic(path.join(dir, HEADER_FILE), `${JSON.stringify(header, null, 2)}\n`);
}

/** Read and validate the header of the index at `dir`, with a clear error for each failure. */
export function readHeader(dir: string): IndexHeader {
  if (!fs.existsSync(dir))
    throw new TillerError(`no trace index at ${dir} (directory not found)`, "index-not-found");
  if (!fs.statSync(dir).isDirectory()) throw new TillerError(`${dir} is not a directory`, "index-not-found");
  const file = path.join(dir, HEADER_FILE);
  if (!fs.existsSync(file)) {
    throw new TillerError(
      `${dir} is not a trace index (no ${HEADER_FILE}; was the build interrupted?)`,
      "index-not-found",
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new TillerError(`${file} is not valid JSON (${(e as Error).message})`, "index-corrupt");
  }
  const r = raw as { format?: unknown; version?: unknown };
  if (r?.format !== FORMAT_NAME)
    throw new TillerError(
      `${dir} is not a tiller trace index (format ${JSON.stringify(r?.format)})`,
      "index-foreign",
    );
  if (r.version !== FORMAT_VERSION) {
    const older = typeof r.version === "number" && r.version < FORMAT_VERSION;
    throw new TillerError(
      `trace index ${dir} has format version ${String(r.version)}${older ? " (older)" : ""}; this tiller reads version ${FORMAT_VERSION} — rebuild it with \`tiller index build\``,
      "index-version",
    );
  }
  const parsed = headerSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new TillerError(
      `${file} is malformed: ${issue?.path.join(".")}: ${issue?.message}`,
      "index-corrupt",
    );
  }
  return parsed.data;
}
