// The strategy picker: a strategy from the server's registry and its parameters, as a spec string.
import { h } from "./dom.js";

/** @typedef {{name: string, params: Record<string, string>, needs_reward: boolean}} StrategyInfo */

/** Parameters whose description says they are switches get a true/false picker. */
const BOOLEAN = /true\/false|^true:/;
/** Parameters shown before "More parameters". */
const MAIN_PARAMS = 4;

export class StrategyForm {
  /**
   * @param {HTMLSelectElement} select
   * @param {HTMLElement} paramsBox
   * @param {HTMLOutputElement} specOut
   * @param {() => void} onChange
   */
  constructor(select, paramsBox, specOut, onChange) {
    this.select = select;
    this.paramsBox = paramsBox;
    this.specOut = specOut;
    this.onChange = onChange;
    /** @type {StrategyInfo[]} */
    this.catalog = [];
    /** @type {Map<string, HTMLInputElement | HTMLSelectElement>} */
    this.fields = new Map();
    select.addEventListener("change", () => {
      this.showParams();
      this.changed();
    });
  }

  /**
   * @param {StrategyInfo[]} catalog
   * @param {string} initial a strategy name
   */
  load(catalog, initial) {
    this.catalog = catalog;
    this.select.replaceChildren(...catalog.map((s) => h("option", { value: s.name, text: s.name })));
    this.select.value = catalog.some((s) => s.name === initial) ? initial : (catalog[0]?.name ?? "");
    this.showParams();
    this.changed();
  }

  /**
   * Sets a parameter's field (the test and the compare view use it).
   * @param {Record<string, string>} values
   */
  setParams(values) {
    for (const [key, value] of Object.entries(values)) {
      const field = this.fields.get(key);
      if (field) field.value = value;
    }
    this.changed();
  }

  showParams() {
    const info = this.catalog.find((s) => s.name === this.select.value);
    this.fields.clear();
    const rows = Object.entries(info?.params ?? {}).map(([key, meaning]) => {
      const id = `param-${key}`;
      /** @type {HTMLInputElement | HTMLSelectElement} */
      const field = BOOLEAN.test(meaning)
        ? /** @type {HTMLSelectElement} */ (
            h("select", { id, "aria-describedby": `${id}-hint` }, [
              h("option", { value: "", text: "default" }),
              h("option", { value: "true", text: "true" }),
              h("option", { value: "false", text: "false" }),
            ])
          )
        : /** @type {HTMLInputElement} */ (
            h("input", {
              id,
              type: "text",
              inputmode: "decimal",
              placeholder: "default",
              autocomplete: "off",
              "aria-describedby": `${id}-hint`,
            })
          );
      field.addEventListener(field instanceof HTMLSelectElement ? "change" : "input", () => this.changed());
      this.fields.set(key, field);
      return h("div", { class: "param" }, [
        h("label", { for: id, text: key }),
        field,
        h("span", { id: `${id}-hint`, class: "hint", text: meaning }),
      ]);
    });
    // The first few parameters are the strategy's main knobs; the rest fold away.
    const more = rows.slice(MAIN_PARAMS);
    this.paramsBox.replaceChildren(
      ...rows.slice(0, MAIN_PARAMS),
      ...(more.length
        ? [
            h("details", { class: "more-params" }, [
              h("summary", { text: `More parameters (${more.length})` }),
              ...more,
            ]),
          ]
        : []),
    );
  }

  changed() {
    this.specOut.value = this.spec();
    this.onChange();
  }

  /** `name[:key=value,…]` with the parameters that were filled in. */
  spec() {
    const set = [...this.fields.entries()]
      .map(([key, field]) => [key, field.value.trim()])
      .filter(([, value]) => value !== "")
      .map(([key, value]) => `${key}=${value}`);
    return set.length ? `${this.select.value}:${set.join(",")}` : this.select.value;
  }
}
