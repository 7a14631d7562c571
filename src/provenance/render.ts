/** Text rendering of attributed spans: token → character offsets, highlighting, excerpts. */
import type { LanguageModel, Token } from "../lm/types.js";
import type { AttributedSpan, Occurrence, TraceIndex } from "./trace-index.js";

/**
 * Character offset of each token's piece in the detokenized text, plus the text itself:
 * `text.slice(starts[i], starts[i + 1])` is token i (starts has tokens.length + 1 entries).
 */
export function tokenOffsets(
  model: LanguageModel,
  tokens: readonly Token[],
): { text: string; starts: number[] } {
  const starts: number[] = [0];
  let text = "";
  for (let i = 0; i < tokens.length; i++) {
    text += model.detokenize([tokens[i]], { context: tokens.slice(Math.max(0, i - 8), i) });
    starts.push(text.length);
  }
  return { text, starts };
}

/**
 * `text` with the characters covered by spans wrapped by `mark(piece, span)`. Overlapping spans
 * are merged for display and marked with the span of highest BCI among them.
 */
export function highlight(
  text: string,
  starts: readonly number[],
  spans: readonly AttributedSpan[],
  mark: (piece: string, span: AttributedSpan) => string,
): string {
  const groups: { start: number; end: number; span: AttributedSpan }[] = [];
  for (const s of [...spans].sort((a, b) => a.start - b.start)) {
    const last = groups.at(-1);
    if (last && s.start < last.end) {
      last.end = Math.max(last.end, s.end);
      if (s.bci > last.span.bci) last.span = s;
    } else groups.push({ start: s.start, end: s.end, span: s });
  }
  let out = "";
  let at = 0;
  for (const g of groups) {
    const a = starts[g.start];
    const b = starts[g.end];
    out += text.slice(at, a) + mark(text.slice(a, b), g.span);
    at = b;
  }
  return out + text.slice(at);
}

/** Source document text around an occurrence: `context` tokens either side, and the match inside. */
export function excerpt(
  index: TraceIndex,
  model: LanguageModel,
  occurrence: Occurrence,
  length: number,
  context = 12,
): { before: string; match: string; after: string; document: number; source?: string } {
  const doc = Array.from(index.documentTokens(occurrence.document));
  const a = Math.max(0, occurrence.offset - context);
  const b = Math.min(doc.length, occurrence.offset + length + context);
  const pre = doc.slice(a, occurrence.offset);
  const mid = doc.slice(occurrence.offset, occurrence.offset + length);
  const post = doc.slice(occurrence.offset + length, b);
  const before = pre.length ? model.detokenize(pre, { context: doc.slice(Math.max(0, a - 4), a) }) : "";
  const match = model.detokenize(mid, { context: pre.slice(-4) });
  const after = post.length ? model.detokenize(post, { context: mid.slice(-4) }) : "";
  const src = index.header.sources.find(
    (s) => occurrence.document >= s.firstDocument && occurrence.document < s.firstDocument + s.documents,
  );
  return {
    before: (a > 0 ? "…" : "") + before,
    match,
    after: after + (b < doc.length ? "…" : ""),
    document: occurrence.document,
    source: src?.path,
  };
}
