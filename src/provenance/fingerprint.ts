/** Model identity stored in an index, so a query with another tokenizer is refused. */
import { createHash } from "node:crypto";
import * as path from "node:path";
import type { LanguageModel } from "../lm/types.js";

/** A fixed text exercising words, casing, digits, punctuation, whitespace and non-ASCII. */
export const FINGERPRINT_TEXT =
  'Once upon a time, Lily said: "Tiller\'s fingerprint — 0123456789!"\n\tÄÖÜ café naïve 日本語 🙂 end.';

/** The model an index was built with, as its header records it. */
export interface ModelIdentity {
  id: string;
  fileName: string;
  spec?: string;
  tokenizerFingerprint: string;
}

/** First 16 hex digits of sha256 over the vocabulary size and the tokens of FINGERPRINT_TEXT. */
export async function tokenizerFingerprint(model: LanguageModel): Promise<string> {
  const tokens = await model.tokenize(FINGERPRINT_TEXT, { addBos: false });
  return createHash("sha256")
    .update(JSON.stringify({ vocabularySize: model.vocabularySize, tokens }))
    .digest("hex")
    .slice(0, 16);
}

export async function modelIdentity(model: LanguageModel, spec?: string): Promise<ModelIdentity> {
  return {
    id: model.id,
    fileName: path.basename(spec ?? model.id),
    spec,
    tokenizerFingerprint: await tokenizerFingerprint(model),
  };
}
