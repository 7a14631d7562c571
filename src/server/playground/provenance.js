// The provenance view: the output with its verbatim corpus spans highlighted (brighter = higher
// BCI, i.e. rarer in the corpus), and a span's count, BCI and source documents on click.
import { escapeHtml, fmt } from "./dom.js";

/**
 * @typedef {{document: number, offset: number, source: string | null, excerpt: string, match: string}} SpanDocument
 * @typedef {{start: number, end: number, text: string, char_start: number, char_end: number,
 *   count: number, bci: number, over_tau: boolean, documents: SpanDocument[]}} Span
 * @typedef {{verdict: string, max_bci: number, tau: number, text: string, spans: Span[]}} Attribution
 */

export class ProvenanceView {
  /**
   * @param {HTMLElement} textBox
   * @param {HTMLElement} detail
   * @param {HTMLElement} summary
   */
  constructor(textBox, detail, summary) {
    this.textBox = textBox;
    this.detail = detail;
    this.summary = summary;
    /** @type {Span[][]} spans covering each highlighted piece */
    this.pieces = [];
    textBox.addEventListener("click", (event) => this.open(event));
    textBox.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        this.open(event);
      }
    });
  }

  /** @param {string} message */
  clear(message) {
    this.summary.textContent = message;
    this.textBox.textContent = "";
    this.detail.textContent = "";
    this.pieces = [];
  }

  /**
   * @param {Attribution} attribution
   * @param {string} output the generated text (shown instead of the index's normalised text
   *   when it differs only in case, so the offsets still hold)
   */
  show(attribution, output) {
    // Show the output itself where the index's text is the output normalised (lowercased, a
    // leading space dropped): the span offsets then shift by where it starts.
    const at = output.toLowerCase().indexOf(attribution.text.toLowerCase());
    const text = at < 0 ? attribution.text : output;
    const shift = Math.max(at, 0);
    const spans = attribution.spans.map((span) => ({
      ...span,
      char_start: span.char_start + shift,
      char_end: span.char_end + shift,
    }));
    const cuts = new Set([0, text.length]);
    for (const span of spans) cuts.add(span.char_start).add(span.char_end);
    const bounds = [...cuts].sort((a, b) => a - b);
    const top = Math.max(attribution.max_bci, 1e-9);
    this.pieces = [];
    let html = "";
    for (let i = 0; i + 1 < bounds.length; i++) {
      const [a, b] = [bounds[i], bounds[i + 1]];
      const piece = escapeHtml(text.slice(a, b));
      const covering = spans
        .filter((s) => s.char_start <= a && s.char_end >= b)
        .sort((x, y) => y.bci - x.bci);
      if (covering.length === 0) {
        html += piece;
        continue;
      }
      const best = covering[0];
      const level = 0.2 + (0.8 * Math.max(0, best.bci)) / top;
      const label = `corpus span, count ${best.count}, BCI ${fmt(best.bci, 1)}${best.over_tau ? ", over τ" : ""}`;
      html += `<mark class="span${best.over_tau ? " over" : ""}" style="--level:${level.toFixed(2)}" tabindex="0" role="button" data-piece="${this.pieces.length}" aria-label="${escapeHtml(label)}">${piece}</mark>`;
      this.pieces.push(covering);
    }
    this.textBox.innerHTML = html || '<span class="placeholder">(empty output)</span>';
    this.detail.textContent = attribution.spans.length ? "Click a highlighted span to see its sources." : "";
    this.summary.textContent = `${attribution.spans.length} verbatim corpus span(s) · max BCI ${fmt(attribution.max_bci, 1)} · τ ${fmt(attribution.tau, 0)} · TraceShield: ${attribution.verdict}`;
  }

  /** @param {Event} event */
  open(event) {
    const mark = /** @type {HTMLElement | null} */ (
      /** @type {HTMLElement} */ (event.target).closest("mark.span")
    );
    if (!mark) return;
    for (const m of this.textBox.querySelectorAll("mark.selected")) m.classList.remove("selected");
    mark.classList.add("selected");
    const spans = this.pieces[Number(mark.dataset.piece)] ?? [];
    this.detail.innerHTML = spans.map((span) => spanHtml(span)).join("");
  }
}

/** @param {Span} span */
function spanHtml(span) {
  const documents = span.documents
    .map((d) => {
      const at = d.excerpt.indexOf(d.match);
      const excerpt =
        at < 0
          ? escapeHtml(d.excerpt)
          : `${escapeHtml(d.excerpt.slice(0, at))}<mark>${escapeHtml(d.match)}</mark>${escapeHtml(d.excerpt.slice(at + d.match.length))}`;
      const source = d.source ? ` · ${escapeHtml(d.source.split(/[\\/]/).pop() ?? d.source)}` : "";
      return `<li class="doc"><p class="doc-head">document #${d.document}${source} · token ${d.offset}</p><blockquote>${excerpt}</blockquote></li>`;
    })
    .join("");
  return `<section class="span-info"><h3>“${escapeHtml(span.text)}”</h3>
<p>count ${span.count} · BCI ${fmt(span.bci, 2)}${span.over_tau ? " · <strong>over τ</strong>" : ""} · tokens ${span.start}–${span.end}</p>
<ol class="docs">${documents || "<li>no excerpt</li>"}</ol></section>`;
}
