/** Building an index from corpus files with a model's tokenizer (what `tiller index build` runs). */
import * as fs from "node:fs";
import { z } from "zod";
import { TillerError } from "../errors.js";
import type { LanguageModel } from "../lm/types.js";
import { TimeSlice } from "../util/cooperative.js";
import { checkModel, fields, parseOptions } from "../util/options.js";
import { type BuildPhase, IndexBuilder } from "./builder.js";
import { parseDocSeparator, readDocuments } from "./corpus.js";
import { modelIdentity } from "./fingerprint.js";
import { checkIndexTarget, type IndexHeader } from "./format.js";

export interface BuildIndexOptions {
  /** `blank-line` (default), `line`, or a regular expression matching separator lines. */
  docSep?: string;
  /** Lowercase documents before tokenizing (queries are then lowercased too). */
  lowercase?: boolean;
  /** Model path/spec recorded in the header (used when a query names no model). */
  modelSpec?: string;
  /** Progress: bytes of corpus read so far out of the total. */
  onProgress?: (bytesRead: number, totalBytes: number, tokens: number) => void;
  onPhase?: (phase: BuildPhase) => void;
  /** Stops the build (tokenizing or writing); nothing is left at `out` and no staging folder stays. */
  signal?: AbortSignal;
}

const buildIndexOptionsSchema = z
  .object({
    docSep: z.string().min(1).optional(),
    lowercase: z.boolean().optional(),
    modelSpec: z.string().optional(),
    onProgress: fields.callback<NonNullable<BuildIndexOptions["onProgress"]>>().optional(),
    onPhase: fields.callback<NonNullable<BuildIndexOptions["onPhase"]>>().optional(),
    signal: fields.signal.optional(),
  })
  .strict();

export interface BuildIndexResult {
  header: IndexHeader;
  /** Seconds spent tokenizing (streaming), building the suffix array and writing. */
  seconds: { tokenize: number; suffixArrayAndWrite: number };
}

/** Tokenize `files` document by document and write the index to `out` (atomically). */
export async function buildIndex(
  model: LanguageModel,
  files: readonly string[],
  out: string,
  options: BuildIndexOptions = {},
): Promise<BuildIndexResult> {
  checkModel("buildIndex", model);
  parseOptions("buildIndex", buildIndexOptionsSchema, options);
  if (!Array.isArray(files) || files.some((f) => typeof f !== "string"))
    throw new TillerError("buildIndex: files must be an array of corpus file paths", "bad-options");
  if (typeof out !== "string" || out === "")
    throw new TillerError("buildIndex: out must be the index folder's path", "bad-options");
  if (files.length === 0) throw new TillerError("no corpus files given", "corpus-not-found");
  // Before any work: a folder that is neither empty nor an index is never replaced.
  checkIndexTarget(out);
  const sizes = files.map((f) => {
    try {
      const st = fs.statSync(f);
      if (!st.isFile()) throw new Error("not a regular file");
      return st.size;
    } catch (e) {
      throw new TillerError(`cannot read corpus file ${f}: ${(e as Error).message}`, "corpus-not-found");
    }
  });
  const total = sizes.reduce((a, b) => a + b, 0);
  const separator = parseDocSeparator(options.docSep);
  const builder = new IndexBuilder({
    vocabularySize: model.vocabularySize,
    model: await modelIdentity(model, options.modelSpec),
    docSep: options.docSep ?? "blank-line",
    lowercase: options.lowercase ?? false,
    initialCapacity: Math.max(1 << 16, Math.ceil(total / 2)),
  });
  const t0 = performance.now();
  const slice = new TimeSlice(options.signal);
  let done = 0;
  for (let f = 0; f < files.length; f++) {
    builder.beginSource(files[f], sizes[f]);
    for await (const doc of readDocuments(files[f], separator, (b) =>
      options.onProgress?.(done + b, total, builder.corpusTokens),
    )) {
      await slice.maybeYield();
      const text = options.lowercase ? doc.toLowerCase() : doc;
      builder.addDocument(await model.tokenize(text, { addBos: false }));
    }
    done += sizes[f];
    options.onProgress?.(done, total, builder.corpusTokens);
  }
  if (builder.corpusTokens === 0)
    throw new TillerError("the corpus has no tokens (empty files?)", "corpus-empty");
  const t1 = performance.now();
  const header = await builder.write(out, { onPhase: options.onPhase, signal: options.signal });
  const t2 = performance.now();
  return { header, seconds: { tokenize: (t1 - t0) / 1000, suffixArrayAndWrite: (t2 - t1) / 1000 } };
}
