// Compare: the same prompt and rewards decoded under two settings, side by side, with a table of
// each reward's value, the weighted score and the work done.
import { callJson } from "./api.js";
import { byId, escapeHtml, fmt } from "./dom.js";
import { requestFor } from "./request.js";

/** @typedef {import("./request.js").Settings} Settings */

/**
 * @typedef {{label: string, strategy: string, provenance: boolean}} Side
 * @typedef {{side: Side, text: string, tiller: any, maxBci: number | null, error: string | null}} Outcome
 */

/**
 * Decodes one side (not streamed: both run at once and the server batches them together).
 * @param {Settings} base
 * @param {Side} side
 * @param {boolean} hasIndex
 * @returns {Promise<Outcome>}
 */
async function decodeSide(base, side, hasIndex) {
  /** @type {Settings} */
  const settings = {
    ...base,
    strategy: side.strategy,
    provenance: side.provenance ? { veto: "hard" } : false,
    shield: false,
  };
  const { path, body } = requestFor(settings, { stream: false });
  body.alignment = { .../** @type {object} */ (body.alignment), trace: false };
  delete body.logprobs;
  delete body.top_logprobs;
  try {
    const reply = await callJson(path, body);
    const choice = reply.choices[0];
    const text = choice.text ?? choice.message?.content ?? "";
    let maxBci = null;
    if (hasIndex && text.trim())
      maxBci = (await callJson("/v1/provenance/attribute", { text, examples: 0 })).max_bci;
    return { side, text, tiller: reply.tiller, maxBci, error: null };
  } catch (error) {
    return { side, text: "", tiller: null, maxBci: null, error: /** @type {Error} */ (error).message };
  }
}

/**
 * Runs both sides and shows them.
 * @param {Settings} base
 * @param {[Side, Side]} sides
 * @param {boolean} hasIndex
 */
export async function runCompare(base, sides, hasIndex) {
  const state = byId("compare-state");
  state.textContent = "decoding both…";
  byId("compare-columns").replaceChildren();
  byId("compare-table").replaceChildren();
  const outcomes = await Promise.all(sides.map((side) => decodeSide(base, side, hasIndex)));
  state.textContent = "";
  byId("compare-columns").innerHTML = outcomes
    .map(
      (o) => `<article class="compare-column" aria-label="${escapeHtml(o.side.label)}">
<h3>${escapeHtml(o.side.label)} <code>${escapeHtml(o.side.strategy)}${o.side.provenance ? " + Prov-Decode" : ""}</code></h3>
${o.error ? `<p class="error" role="alert">${escapeHtml(o.error)}</p>` : `<p class="output"><span class="prompt">${escapeHtml(base.mode === "chat" ? "" : base.prompt)}</span>${escapeHtml(o.text)}</p>`}
</article>`,
    )
    .join("");
  byId("compare-table").innerHTML = tableHtml(outcomes, hasIndex);
  return outcomes;
}

/**
 * @param {Outcome[]} outcomes
 * @param {boolean} hasIndex
 */
function tableHtml(outcomes, hasIndex) {
  const names = [...new Set(outcomes.flatMap((o) => Object.keys(o.tiller?.rewards ?? {})))];
  /** @type {[string, (o: Outcome) => string, boolean][]} */
  const rows = [
    ...names.map(
      (name) =>
        /** @type {[string, (o: Outcome) => string, boolean]} */ ([
          name,
          (o) => fmt(o.tiller?.rewards?.[name], 3),
          true,
        ]),
    ),
  ];
  if (names.length) rows.push(["weighted sum", (o) => fmt(o.tiller?.score, 3), true]);
  rows.push(
    ["tokens", (o) => String(o.tiller?.choices?.[0]?.generated_tokens ?? "–"), false],
    ["evaluated tokens", (o) => String(o.tiller?.evaluated_tokens ?? "–"), false],
    ["decode ms", (o) => fmt(o.tiller?.choices?.[0]?.wall_ms, 0), false],
  );
  if (hasIndex) rows.push(["max BCI", (o) => fmt(o.maxBci, 1), false]);
  const head = outcomes.map((o) => `<th scope="col">${escapeHtml(o.side.label)}</th>`).join("");
  const body = rows
    .map(
      ([name, cell, isReward]) =>
        `<tr${isReward ? ' class="reward"' : ""}><th scope="row">${escapeHtml(name)}</th>${outcomes.map((o) => `<td>${cell(o)}</td>`).join("")}</tr>`,
    )
    .join("");
  return `<caption>Rewards and cost of each setting</caption><thead><tr><th scope="col">measure</th>${head}</tr></thead><tbody>${body}</tbody>`;
}

/**
 * Reads a side's settings from its fieldset.
 * @param {"a" | "b"} key
 * @returns {Side}
 */
export function readSide(key) {
  const input = /** @type {HTMLInputElement} */ (byId(`compare-${key}`));
  const prov = /** @type {HTMLInputElement} */ (byId(`compare-${key}-prov`));
  return {
    label: `Setting ${key.toUpperCase()}`,
    strategy: input.value.trim(),
    provenance: prov.checked && !prov.closest("[hidden]"),
  };
}
