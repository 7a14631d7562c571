// The rewards editor: one row per reward spec (the CLI grammar), each with a weight slider.
import { h } from "./dom.js";

/**
 * @typedef {{spec: string, ok: boolean, name?: string, weight?: number | null,
 *   error?: {message: string, code: string | null}}} RewardCheck
 */

/** A reward row's parts. */
class RewardRow {
  /**
   * @param {number} id
   * @param {string} spec
   * @param {number} weight
   * @param {() => void} onChange
   * @param {(row: RewardRow) => void} onRemove
   */
  constructor(id, spec, weight, onChange, onRemove) {
    const base = `reward-${id}`;
    this.input = /** @type {HTMLInputElement} */ (
      h("input", {
        id: base,
        class: "reward-spec",
        type: "text",
        spellcheck: "false",
        autocomplete: "off",
        value: spec,
        placeholder: "keywords:dog,ball",
        "aria-describedby": `${base}-error`,
      })
    );
    this.slider = /** @type {HTMLInputElement} */ (
      h("input", { id: `${base}-weight`, type: "range", min: -5, max: 5, step: 0.1, value: weight })
    );
    this.shown = h("output", { for: `${base}-weight`, class: "weight-value" });
    this.error = h("p", { id: `${base}-error`, class: "error" });
    this.label = h("label", { for: base, class: "visually-hidden" });
    this.remove = h("button", { type: "button", class: "icon" }, ["×"]);
    this.element = h("div", { class: "reward-row" }, [
      this.label,
      this.input,
      this.slider,
      this.shown,
      this.remove,
      this.error,
    ]);
    /** The weight the spec's own `W*` prefix sets, which the slider then shows and cannot change. */
    /** @type {number | null} */
    this.prefixWeight = null;
    this.input.addEventListener("input", onChange);
    this.slider.addEventListener("input", () => {
      this.showWeight();
      onChange();
    });
    this.remove.addEventListener("click", () => onRemove(this));
    this.showWeight();
  }

  /** @param {number} position */
  number(position) {
    this.label.textContent = `Reward ${position} spec`;
    this.slider.setAttribute("aria-label", `Reward ${position} weight`);
    this.remove.setAttribute("aria-label", `Remove reward ${position}`);
  }

  showWeight() {
    const value = this.prefixWeight ?? Number(this.slider.value);
    this.shown.textContent = value.toFixed(1);
    this.slider.disabled = this.prefixWeight !== null;
    this.slider.title = this.prefixWeight !== null ? "set by the spec's W* prefix" : "";
  }

  /** The spec as sent: the slider's weight as a `W*` prefix unless the spec has its own or it is 1. */
  weighted() {
    const spec = this.input.value.trim();
    const weight = Number(this.slider.value);
    return this.prefixWeight !== null || weight === 1 ? spec : `${weight}*${spec}`;
  }

  /** @param {RewardCheck | undefined} check */
  show(check) {
    const bad = check !== undefined && !check.ok;
    this.input.setAttribute("aria-invalid", String(bad));
    this.error.textContent = bad ? shortMessage(check?.error?.message ?? "") : "";
    this.prefixWeight = check?.ok ? (check.weight ?? null) : null;
    this.showWeight();
  }
}

export class RewardsEditor {
  /**
   * @param {HTMLElement} container
   * @param {() => void} onChange called after every edit (validation listens)
   */
  constructor(container, onChange) {
    this.container = container;
    this.onChange = onChange;
    /** @type {RewardRow[]} */
    this.rows = [];
    this.nextId = 0;
  }

  /**
   * @param {string} [spec]
   * @param {number} [weight]
   */
  add(spec = "", weight = 1) {
    const row = new RewardRow(this.nextId++, spec, weight, this.onChange, (r) => this.removeRow(r));
    this.rows.push(row);
    this.container.append(row.element);
    this.renumber();
    this.onChange();
    return row;
  }

  /** @param {RewardRow} row */
  removeRow(row) {
    this.rows = this.rows.filter((r) => r !== row);
    row.element.remove();
    this.renumber();
    this.rows.at(-1)?.input.focus();
    this.onChange();
  }

  renumber() {
    this.rows.forEach((row, i) => {
      row.number(i + 1);
    });
  }

  /** Rows with a spec, in order. */
  filled() {
    return this.rows.filter((row) => row.input.value.trim() !== "");
  }

  /** The specs as typed (validation checks these). */
  specs() {
    return this.filled().map((row) => row.input.value.trim());
  }

  /** The specs with their slider weights, as a request sends them. */
  weightedSpecs() {
    return this.filled().map((row) => row.weighted());
  }

  /** @param {RewardCheck[]} checks one per filled row, in order */
  show(checks) {
    const filled = this.filled();
    for (const row of this.rows) row.show(checks[filled.indexOf(row)]);
  }
}

/**
 * A spec error without the list of valid forms the server appends (the page lists them).
 * @param {string} message
 */
export function shortMessage(message) {
  const cut = message.indexOf("; valid forms:");
  return cut < 0 ? message : `${message.slice(0, cut)} (see Valid forms below)`;
}
