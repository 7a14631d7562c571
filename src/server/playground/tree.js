// The search tree: steps as columns, candidates as rows, the chosen path highlighted. Rendered as
// one HTML string (fast for hundreds of steps); connectors are small SVGs whose geometry follows
// from fixed row heights, so drawing needs no layout reads.
import { escapeHtml, fmt, visibleToken } from "./dom.js";

/** @typedef {import("./path.js").TraceStep} TraceStep */

const CELL = 64; // px: candidate box height (style.css .cand) + gap
const HEAD = 34; // px: column header height (style.css .col-head)
const LINK_W = 18;

export class SearchTree {
  /**
   * @param {HTMLElement} container
   * @param {HTMLElement} detail
   * @param {HTMLInputElement} collapseBox
   * @param {HTMLElement} summary
   */
  constructor(container, detail, collapseBox, summary) {
    this.container = container;
    this.detail = detail;
    this.collapseBox = collapseBox;
    this.summary = summary;
    /** @type {TraceStep[]} */
    this.steps = [];
    /** @type {number[]} */
    this.chosen = [];
    /** Steps whose collapsed candidates the user opened. */
    /** @type {Set<number>} */
    this.expanded = new Set();
    /** Whether the user set the collapse switch (else it follows the trace size). */
    this.collapseSetByUser = false;
    /** The focused cell, kept across re-renders: [step, visible row]. */
    this.focus = [0, 0];
    collapseBox.addEventListener("change", () => {
      this.collapseSetByUser = true;
      this.render();
    });
    container.addEventListener("keydown", (event) => this.onKey(event));
    container.addEventListener("click", (event) => this.onClick(event));
    container.addEventListener("mouseover", (event) => this.onPoint(event));
    container.addEventListener("focusin", (event) => this.onPoint(event));
  }

  /**
   * Shows a whole trace (a finished run, or the browser test's synthetic one).
   * @param {TraceStep[]} steps
   * @param {number[]} chosen
   * @returns {number} milliseconds spent building the DOM
   */
  show(steps, chosen) {
    this.steps = steps;
    this.chosen = chosen;
    this.expanded.clear();
    this.focus = [0, 0];
    const started = performance.now();
    this.render();
    return performance.now() - started;
  }

  /**
   * Adds a step while a run streams (appended without redrawing the others).
   * @param {TraceStep} step
   * @param {number} chosen
   */
  append(step, chosen) {
    this.steps.push(step);
    this.chosen.push(chosen);
    if (this.steps.length === 1 || this.collapsed() !== this.collapseBox.checked) {
      this.render();
      return;
    }
    this.container.insertAdjacentHTML("beforeend", this.columnHtml(this.steps.length - 1));
    this.showSummary();
  }

  clear() {
    this.show([], []);
    this.detail.textContent = "";
  }

  collapsed() {
    return this.collapseSetByUser ? this.collapseBox.checked : this.steps.length > 32;
  }

  render() {
    this.collapseBox.checked = this.collapsed();
    let html = "";
    for (let s = 0; s < this.steps.length; s++) html += this.columnHtml(s);
    this.container.innerHTML =
      html || '<p class="placeholder">Run a search strategy (deal, beam) with trace on to see its steps.</p>';
    this.showSummary();
    this.restoreFocus();
  }

  showSummary() {
    const candidates = this.steps.reduce((n, step) => n + step.candidates.length, 0);
    this.summary.textContent = this.steps.length
      ? `${this.steps.length} steps · ${candidates} candidates${this.collapsed() ? " · collapsed" : ""}`
      : "";
  }

  /**
   * Candidate indexes a column shows: all, or (collapsed) the kept and chosen ones.
   * @param {number} s
   */
  visible(s) {
    const { candidates } = this.steps[s];
    const all = candidates.map((_, i) => i);
    if (!this.collapsed() || this.expanded.has(s)) return all;
    return all.filter((i) => candidates[i].kept || i === this.chosen[s]);
  }

  /** @param {number} s */
  columnHtml(s) {
    const step = this.steps[s];
    const rows = this.visible(s);
    const hidden = step.candidates.filter((c, i) => !c.kept && i !== this.chosen[s]).length;
    let toggle = "";
    if (this.collapsed() && hidden > 0)
      toggle = this.expanded.has(s)
        ? `<button type="button" class="more" data-expand="${s}" aria-expanded="true" aria-label="Collapse step ${step.step}">−</button>`
        : `<button type="button" class="more" data-expand="${s}" aria-expanded="false" aria-label="Show ${hidden} more candidates of step ${step.step}">+${hidden}</button>`;
    let cells = "";
    rows.forEach((c, r) => {
      cells += this.cellHtml(s, c, r);
    });
    if (step.candidates.length === 0)
      cells = `<div class="note">${escapeHtml(step.note ?? "no candidates")}</div>`;
    return `<div class="col" role="row" aria-label="step ${step.step}">${this.linkSvg(s, rows)}<div class="col-body"><div class="col-head" role="rowheader">step ${step.step} <small>@${step.prefixLength}</small>${toggle}</div>${cells}</div></div>`;
  }

  /**
   * @param {number} s
   * @param {number} c candidate index
   * @param {number} r visible row
   */
  cellHtml(s, c, r) {
    const cand = this.steps[s].candidates[c];
    const chosen = this.chosen[s] === c;
    const classes = ["cand"];
    if (cand.kept) classes.push("kept");
    if (chosen) classes.push("chosen");
    if (cand.vetoed) classes.push("vetoed");
    if (cand.lexical) classes.push("lexical");
    const flags = [
      chosen && "chosen",
      cand.kept && "kept",
      cand.vetoed && "vetoed",
      cand.lexical && "lexical",
    ]
      .filter(Boolean)
      .join(", ");
    const label = `step ${this.steps[s].step}, token ${JSON.stringify(cand.text)}, logprob ${fmt(cand.logprob)}, reward ${fmt(cand.reward)}, score ${fmt(cand.score)}${flags ? `, ${flags}` : ""}`;
    const tags = `${cand.lexical ? '<b class="tag lex">lex</b>' : ""}${cand.vetoed ? '<b class="tag veto">veto</b>' : ""}`;
    return `<div class="${classes.join(" ")}" role="gridcell" tabindex="-1" data-s="${s}" data-c="${c}" data-r="${r}" aria-label="${escapeHtml(label)}"><span class="tok">${escapeHtml(visibleToken(cand.text))}</span><span class="nums">lp ${fmt(cand.logprob)} · r ${fmt(cand.reward)}</span><span class="nums">s ${fmt(cand.score, 1)}${tags}</span></div>`;
  }

  /**
   * The connector from the previous step's chosen box to this step's boxes.
   * @param {number} s
   * @param {number[]} rows
   */
  linkSvg(s, rows) {
    if (s === 0 || rows.length === 0)
      return `<svg class="link" width="${LINK_W}" height="1" aria-hidden="true"></svg>`;
    const parentRow = this.visible(s - 1).indexOf(this.chosen[s - 1]);
    const y = (/** @type {number} */ r) => HEAD + r * CELL + (CELL - 6) / 2;
    const from = y(Math.max(parentRow, 0));
    const height = HEAD + rows.length * CELL;
    let lines = "";
    rows.forEach((c, r) => {
      const on = this.chosen[s] === c && parentRow >= 0;
      lines += `<path d="M0 ${from}C${LINK_W / 2} ${from} ${LINK_W / 2} ${y(r)} ${LINK_W} ${y(r)}" class="${on ? "on" : ""}"/>`;
    });
    return `<svg class="link" width="${LINK_W}" height="${height}" aria-hidden="true">${lines}</svg>`;
  }

  /** @param {Event} event */
  cellOf(event) {
    const target = /** @type {HTMLElement} */ (event.target);
    return /** @type {HTMLElement | null} */ (target.closest?.(".cand"));
  }

  /** @param {Event} event */
  onPoint(event) {
    const cell = this.cellOf(event);
    if (cell) this.describe(Number(cell.dataset.s), Number(cell.dataset.c));
  }

  /** @param {MouseEvent} event */
  onClick(event) {
    const target = /** @type {HTMLElement} */ (event.target);
    const more = /** @type {HTMLElement | null} */ (target.closest(".more"));
    if (more) {
      this.toggle(Number(more.dataset.expand));
      return;
    }
    const cell = this.cellOf(event);
    if (cell) this.moveTo(Number(cell.dataset.s), Number(cell.dataset.r));
  }

  /** @param {number} s */
  toggle(s) {
    if (this.expanded.has(s)) this.expanded.delete(s);
    else this.expanded.add(s);
    this.focus = [s, 0];
    this.render();
    /** @type {HTMLElement | null} */ (this.container.querySelector(`[data-expand="${s}"]`))?.focus();
  }

  /**
   * Shows a candidate's numbers and the lookahead text it was judged with.
   * @param {number} s
   * @param {number} c
   */
  describe(s, c) {
    const step = this.steps[s];
    const cand = step?.candidates[c];
    if (!cand) return;
    const flags = [
      this.chosen[s] === c ? "chosen path" : "",
      cand.kept ? "kept" : "dropped",
      cand.vetoed ? "vetoed (copies the corpus)" : "",
      cand.lexical ? "lexical (spells a wanted word)" : "",
    ].filter(Boolean);
    this.detail.innerHTML = `<p><strong>Step ${step.step}</strong> (after ${step.prefixLength} tokens) · candidate ${c + 1} of ${step.candidates.length}: ${flags.join(", ")}</p>
<p>logprob ${fmt(cand.logprob, 3)} · reward ${fmt(cand.reward, 3)} · score ${fmt(cand.score, 3)}</p>
<p class="lookahead">Lookahead: <mark>${escapeHtml(cand.text)}</mark><span>${escapeHtml(cand.rollout ?? "")}</span></p>`;
  }

  /** @param {KeyboardEvent} event */
  onKey(event) {
    const cell = this.cellOf(event);
    if (!cell) return;
    const s = Number(cell.dataset.s);
    const r = Number(cell.dataset.r);
    /** @type {Record<string, [number, number]>} */
    const moves = {
      ArrowRight: [s + 1, r],
      ArrowLeft: [s - 1, r],
      ArrowDown: [s, r + 1],
      ArrowUp: [s, r - 1],
      Home: [0, 0],
      End: [this.steps.length - 1, 0],
    };
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      if (this.collapsed()) this.toggle(s);
      return;
    }
    const move = moves[event.key];
    if (!move) return;
    event.preventDefault();
    this.moveTo(...move);
  }

  /**
   * Focuses the cell at a step and visible row (clamped), making it the one Tab reaches.
   * @param {number} s
   * @param {number} r
   */
  moveTo(s, r) {
    const step = Math.max(0, Math.min(this.steps.length - 1, s));
    const rows = this.visible(step).length;
    this.focus = [step, Math.max(0, Math.min(rows - 1, r))];
    this.restoreFocus(true);
  }

  /** @param {boolean} [move] also move the keyboard focus there */
  restoreFocus(move = false) {
    const [s, r] = this.focus;
    const previous = this.container.querySelector('.cand[tabindex="0"]');
    previous?.setAttribute("tabindex", "-1");
    const cell =
      /** @type {HTMLElement | null} */ (
        this.container.querySelector(`.cand[data-s="${s}"][data-r="${r}"]`)
      ) ?? /** @type {HTMLElement | null} */ (this.container.querySelector(".cand"));
    if (!cell) return;
    cell.setAttribute("tabindex", "0");
    if (move) {
      cell.focus();
      cell.scrollIntoView({ block: "nearest", inline: "nearest" });
    }
  }
}
