/**
 * A query text's tokenizations as they can occur in the corpus. A tokenizer marks a word by what
 * precedes it: SentencePiece writes "once" at the start of a text or after a space as "▁on ce",
 * but after a newline as "on ce"; GPT-style BPE writes it as "once" after a newline and " once"
 * after a word. The corpus was tokenized document by document, so the same phrase is stored in
 * several forms, and looking up only the plain tokenization of a query misses every occurrence
 * in the other forms (e.g. "once upon a time" at the start of a line).
 *
 * The forms are found by tokenizing the query after an anchor ("x\n", "x ") and removing the
 * anchor's own tokens; a form is kept only when the anchor's tokens are an exact prefix (so no
 * token straddles the boundary). Duplicates are dropped; the plain tokenization comes first.
 */
import type { LanguageModel, Token } from "../lm/types.js";
import type { TraceIndex } from "./trace-index.js";

/** Texts a query may follow in the corpus: a line break, and a word then a space. */
const ANCHORS = [
  { before: "x\n", join: "" },
  { before: "x", join: " " },
] as const;

export async function queryForms(index: TraceIndex, model: LanguageModel, text: string): Promise<Token[][]> {
  const forms: Token[][] = [await index.tokenizeQuery(model, text)];
  if (text === "") return forms;
  for (const anchor of ANCHORS) {
    const prefix = await index.tokenizeQuery(model, anchor.before);
    const whole = await index.tokenizeQuery(model, `${anchor.before}${anchor.join}${text}`);
    if (whole.length <= prefix.length || prefix.some((token, i) => whole[i] !== token)) continue;
    forms.push(whole.slice(prefix.length));
  }
  const seen = new Set<string>();
  return forms.filter((form) => {
    const key = form.join(",");
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export interface FormCount {
  tokens: Token[];
  count: number;
}

/** Occurrences of a text in every form: the per-form counts, and the form found most often. */
export function countForms(
  index: TraceIndex,
  forms: readonly Token[][],
): { forms: FormCount[]; best: Token[] } {
  const counts = forms.map((tokens) => ({ tokens, count: index.count(tokens) }));
  const best = counts.reduce((a, b) => (b.count > a.count ? b : a), counts[0]);
  return { forms: counts, best: best.tokens };
}
