// One run: streams a request, feeds the text and search steps to the views as they arrive, then
// fills in what needs the finished text (chosen path, reward curves, provenance).
import { callJson, streamEvents } from "./api.js";
import { lineChart } from "./chart.js";
import { button, byId, escapeHtml, fmt, h } from "./dom.js";
import { chosenPath } from "./path.js";
import { requestFor } from "./request.js";

/**
 * @typedef {import("./path.js").TraceStep} TraceStep
 * @typedef {import("./request.js").Settings} Settings
 * @typedef {{request: {path: string, body: Record<string, unknown>}, text: string, pieces: string[] | null,
 *   steps: TraceStep[], tiller: any, finishReason: string | null, curve: any, attribution: any}} RunRecord
 */

export class Runner {
  /**
   * @param {{tree: import("./tree.js").SearchTree, provenance: import("./provenance.js").ProvenanceView,
   *   hasIndex: () => boolean, onState: (running: boolean) => void}} views
   */
  constructor(views) {
    this.views = views;
    /** @type {AbortController | null} */
    this.controller = null;
    /** @type {RunRecord | null} */
    this.last = null;
    /** @type {{firstTextMs: number | null, firstStepMs: number | null, doneMs: number | null, treeMs: number | null}} */
    this.timing = { firstTextMs: null, firstStepMs: null, doneMs: null, treeMs: null };
  }

  stop() {
    this.controller?.abort();
  }

  /** @param {Settings} settings */
  async run(settings) {
    this.stop();
    const controller = new AbortController();
    this.controller = controller;
    const request = requestFor(settings, { stream: true });
    /** @type {RunRecord} */
    const record = {
      request,
      text: "",
      pieces: null,
      steps: [],
      tiller: null,
      finishReason: null,
      curve: null,
      attribution: null,
    };
    this.last = record;
    const started = performance.now();
    this.timing = { firstTextMs: null, firstStepMs: null, doneMs: null, treeMs: null };
    const state = byId("run-state");
    this.resetViews(settings);
    this.views.onState(true);
    // For scripts and the browser test: "running", then "done" once everything is shown, or "failed".
    document.body.dataset.run = "running";
    state.textContent = "running…";
    const generated = byId("output").querySelector(".gen");
    try {
      for await (const { event, data } of streamEvents(request.path, request.body, controller.signal)) {
        if (data === "[DONE]") break;
        if (data.error) throw new Error(data.error.message);
        if (event === "tiller.step") {
          this.timing.firstStepMs ??= performance.now() - started;
          const step = /** @type {TraceStep} */ (data.step);
          record.steps.push(step);
          this.views.tree.append(step, chosenPath([step], null)[0]);
          this.drawLiveChart(record.steps);
          continue;
        }
        const choice = data.choices?.[0];
        if (!choice) continue;
        const text = choice.text ?? choice.delta?.content ?? "";
        if (text) {
          this.timing.firstTextMs ??= performance.now() - started;
          record.text += text;
          if (generated) generated.textContent = record.text;
        }
        if (choice.finish_reason) {
          record.finishReason = choice.finish_reason;
          record.tiller = data.tiller ?? null;
          record.pieces = piecesOf(choice.logprobs);
        }
      }
      this.timing.doneMs = performance.now() - started;
      state.textContent = `done in ${(this.timing.doneMs / 1000).toFixed(1)} s`;
    } catch (error) {
      const message = controller.signal.aborted ? "stopped" : /** @type {Error} */ (error).message;
      state.textContent = "";
      byId("warnings").append(h("li", { class: "error", role: "alert", text: message }));
      this.views.onState(false);
      document.body.dataset.run = "failed";
      return record;
    }
    this.views.onState(false);
    await this.finish(record, settings);
    document.body.dataset.run = "done";
    return record;
  }

  /** @param {Settings} settings */
  resetViews(settings) {
    const output = byId("output");
    output.replaceChildren(
      h("span", { class: "prompt", text: settings.mode === "chat" ? "" : settings.prompt }),
      h("span", { class: "gen" }),
    );
    byId("warnings").replaceChildren();
    byId("run-info").replaceChildren();
    byId("reward-table").replaceChildren();
    byId("chart").replaceChildren();
    byId("chart-summary").textContent = "";
    this.views.tree.clear();
    this.views.provenance.clear(
      this.views.hasIndex() ? "Attributing once the run ends…" : "Needs a server started with --index.",
    );
    for (const id of ["export-trace", "export-svg", "export-png"]) button(id).disabled = true;
  }

  /**
   * The finished run: chosen path, run facts, reward curves, provenance.
   * @param {RunRecord} record
   * @param {Settings} settings
   */
  async finish(record, settings) {
    const choice = record.tiller?.choices?.[0];
    const steps = choice?.trace?.steps ?? record.steps;
    record.steps = steps;
    const chosen = chosenPath(steps, record.pieces ? { text: record.text, pieces: record.pieces } : null);
    this.timing.treeMs = this.views.tree.show(steps, chosen);
    button("export-trace").disabled = false;
    this.showInfo(record);
    this.drawLiveChart(steps);
    const jobs = [];
    if (settings.rewards.length) jobs.push(this.rewardCurve(record, settings));
    if (this.views.hasIndex()) jobs.push(this.attribute(record));
    await Promise.all(jobs);
  }

  /** @param {RunRecord} record */
  showInfo(record) {
    const tiller = record.tiller;
    const choice = tiller?.choices?.[0];
    const warnings = byId("warnings");
    for (const warning of tiller?.warnings ?? []) warnings.append(h("li", { text: warning }));
    /** @type {[string, string][]} */
    const facts = [
      ["strategy", tiller?.strategy ?? "–"],
      ["tokens", String(choice?.generated_tokens ?? "–")],
      ["evaluated", String(choice?.evaluated_tokens ?? "–")],
      ["stop", `${choice?.stop_reason ?? "–"} (${record.finishReason ?? "–"})`],
      ["decode", `${fmt(choice?.wall_ms, 0)} ms`],
    ];
    if (choice?.shield)
      facts.push([
        "TraceShield",
        `${choice.shield.refused ? "refused" : "passed"} after ${choice.shield.attempts.length} attempt(s)`,
      ]);
    byId("run-info").replaceChildren(
      ...facts.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })]),
    );
    const rewards = Object.entries(tiller?.rewards ?? {});
    const rows = rewards.map(
      ([name, value]) =>
        `<tr><th scope="row">${escapeHtml(name)}</th><td>${fmt(/** @type {number} */ (value), 3)}</td></tr>`,
    );
    if (rewards.length)
      rows.push(`<tr class="total"><th scope="row">weighted sum</th><td>${fmt(tiller?.score, 3)}</td></tr>`);
    byId("reward-table").innerHTML = rows.length
      ? `<caption>Rewards of the final text</caption><thead><tr><th scope="col">reward</th><th scope="col">value</th></tr></thead><tbody>${rows.join("")}</tbody>`
      : "";
  }

  /**
   * The chart before the curves arrive: the chosen candidate's reward (judged with its
   * lookahead) at each step.
   * @param {TraceStep[]} steps
   */
  drawLiveChart(steps) {
    const chosen = chosenPath(steps, null);
    const points = steps.flatMap((step, i) => {
      const c = step.candidates[chosen[i]];
      return c && c.reward !== undefined ? [{ x: step.prefixLength, y: c.reward }] : [];
    });
    if (points.length === 0) return;
    byId("chart").innerHTML = lineChart([{ name: "reward of the kept candidate + lookahead", points }], {
      title: "Reward at each search step",
      xLabel: "tokens committed",
      yLabel: "reward",
    });
    byId("chart-summary").textContent = "Search-time reward (the heuristic each step ranked by).";
    this.enableChartExport();
  }

  /**
   * Each reward's value along the final text.
   * @param {RunRecord} record
   * @param {Settings} settings
   */
  async rewardCurve(record, settings) {
    if (!record.text) return;
    try {
      const curve = await callJson("/v1/tiller/rewards/along", {
        prompt: settings.prompt,
        text: record.text,
        rewards: settings.rewards,
        points: 48,
      });
      record.curve = curve;
      /** @type {import("./chart.js").Series[]} */
      const series = curve.names.map((/** @type {string} */ name) => ({
        name,
        points: curve.points.map((/** @type {any} */ p) => ({ x: p.tokens, y: p.values[name] })),
      }));
      if (curve.names.length > 1)
        series.push({
          name: "weighted sum",
          dashed: true,
          points: curve.points.map((/** @type {any} */ p) => ({ x: p.tokens, y: p.total })),
        });
      byId("chart").innerHTML = lineChart(series, {
        title: "Rewards along the committed text",
        xLabel: "tokens of the output",
        yLabel: "reward value",
      });
      byId("chart-summary").textContent =
        `Each reward on the first n tokens of the output (${curve.tokens} tokens).`;
      this.enableChartExport();
    } catch (error) {
      byId("chart-summary").textContent = `Reward curve failed: ${/** @type {Error} */ (error).message}`;
    }
  }

  enableChartExport() {
    button("export-svg").disabled = false;
    button("export-png").disabled = false;
  }

  /**
   * The output's corpus spans, for the provenance view.
   * @param {RunRecord} record
   */
  async attribute(record) {
    button("attribute").disabled = false;
    if (!record.text.trim()) {
      this.views.provenance.clear("The output is empty.");
      return;
    }
    try {
      const number = (/** @type {string} */ id) => {
        const value = /** @type {HTMLInputElement} */ (byId(id)).value.trim();
        return value === "" ? undefined : Number(value);
      };
      record.attribution = await callJson("/v1/provenance/attribute", {
        text: record.text,
        examples: 3,
        min_len: number("attr-min-len"),
        max_count: number("attr-max-count"),
      });
      this.views.provenance.show(record.attribution, record.text);
    } catch (error) {
      this.views.provenance.clear(`Attribution failed: ${/** @type {Error} */ (error).message}`);
    }
  }
}

/**
 * Each generated token's text from a final chunk's logprobs (completion or chat shape).
 * @param {any} logprobs
 * @returns {string[] | null}
 */
function piecesOf(logprobs) {
  if (!logprobs) return null;
  if (Array.isArray(logprobs.tokens)) return logprobs.tokens;
  if (Array.isArray(logprobs.content)) return logprobs.content.map((/** @type {any} */ c) => c.token);
  return null;
}
