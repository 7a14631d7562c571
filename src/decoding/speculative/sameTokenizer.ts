import { TillerError } from "../../errors.js";
import type { LanguageModel } from "../../lm/types.js";
import { tokenizerFingerprint } from "../../provenance/fingerprint.js";

/**
 * Throws unless `draft` tokenizes exactly as `target`: drafted token ids are verified by the
 * target as its own ids, so a draft model with another vocabulary (or the same words under other
 * ids) would propose nonsense. tiller has no token mapping between vocabularies.
 */
export async function checkSameTokenizer(target: LanguageModel, draft: LanguageModel): Promise<void> {
  const [a, b] = await Promise.all([tokenizerFingerprint(target), tokenizerFingerprint(draft)]);
  if (target.vocabularySize !== draft.vocabularySize || a !== b)
    throw new TillerError(
      `draft model ${draft.id} tokenizes differently from target ${target.id} (${draft.vocabularySize} vs ${target.vocabularySize} tokens, fingerprint ${b} vs ${a}); speculative decoding needs a draft with the same tokenizer`,
      "draft-tokenizer-mismatch",
    );
}
