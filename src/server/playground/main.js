// The playground page: wires the settings panel, the run, and the four views together.
import { ApiFailure, callJson, setApiKey } from "./api.js";
import { readSide, runCompare } from "./compare.js";
import { button, byId, debounce, h } from "./dom.js";
import { downloadJson, downloadPng, downloadSvg } from "./exporter.js";
import { chosenPath } from "./path.js";
import { ProvenanceView } from "./provenance.js";
import { readSettings } from "./request.js";
import { RewardsEditor, shortMessage } from "./rewardsEditor.js";
import { Runner } from "./run.js";
import { StrategyForm } from "./strategyForm.js";
import { setUpTabs } from "./tabs.js";
import { SearchTree } from "./tree.js";
import { Validator } from "./validator.js";

/** @type {any} */
let capabilities = null;
let running = false;

const runButton = button("run");
const stopButton = button("stop");
const tree = new SearchTree(byId("tree"), byId("tree-detail"), byId("collapse"), byId("tree-summary"));
const provenance = new ProvenanceView(
  byId("provenance-text"),
  byId("span-detail"),
  byId("provenance-summary"),
);
const selectTab = setUpTabs(/** @type {HTMLElement} */ (document.querySelector('[role="tablist"]')));

const validator = new Validator(
  () => ({ rewards: editor.specs(), strategy: strategy.spec() }),
  (result) => {
    editor.show(result.rewards);
    byId("rewards-error").textContent = result.error ? shortMessage(result.error.message) : "";
    const strategyProblem =
      result.strategy && !result.strategy.ok ? (result.strategy.error?.message ?? "") : "";
    byId("strategy-error").textContent = strategyProblem;
    byId("strategy").setAttribute("aria-invalid", String(strategyProblem !== ""));
    updateRunButton();
  },
);
/** Set while the page fills the form in at start (one check follows, not one per field). */
let booting = true;
const editor = new RewardsEditor(byId("rewards"), () => {
  if (booting) return;
  runButton.disabled = true; // until the edit is checked
  validator.schedule();
});
const strategy = new StrategyForm(
  /** @type {HTMLSelectElement} */ (byId("strategy")),
  byId("strategy-params"),
  /** @type {HTMLOutputElement} */ (byId("strategy-spec")),
  () => {
    syncCompareA();
    if (booting) return;
    runButton.disabled = true;
    validator.schedule();
  },
);
const runner = new Runner({
  tree,
  provenance,
  hasIndex: () => Boolean(capabilities?.index),
  onState(on) {
    running = on;
    stopButton.disabled = !on;
    updateRunButton();
  },
});

function updateRunButton() {
  runButton.disabled = running || !validator.valid;
}

function settings() {
  return readSettings(editor.weightedSpecs(), strategy.spec());
}

// ---- settings panel ----

byId("add-reward").addEventListener("click", () => editor.add().input.focus());
for (const radio of document.querySelectorAll('input[name="mode"]'))
  radio.addEventListener("change", () => {
    const chat =
      /** @type {HTMLInputElement} */ (document.querySelector('input[name="mode"]:checked')).value === "chat";
    byId("system-row").hidden = !chat;
    byId("prompt-label").textContent = chat ? "User message" : "Prompt";
  });
byId("controls").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (running) return;
  runButton.disabled = true;
  // Marked at once, so a script waiting for "done" never reads the previous run's state while the
  // rewards are validated.
  document.body.dataset.run = "starting";
  if (!(await validator.ensure())) {
    document.body.dataset.run = "failed";
    updateRunButton();
    return;
  }
  await runner.run(settings());
});
stopButton.addEventListener("click", () => runner.stop());

// ---- exports ----

byId("export-trace").addEventListener("click", () => {
  const last = runner.last;
  if (!last) return;
  downloadJson("tiller-trace.json", {
    object: "tiller.playground.trace",
    request: last.request,
    text: last.text,
    steps: last.steps,
    tiller: last.tiller,
    reward_curve: last.curve,
    attribution: last.attribution,
  });
});
const chartSvg = () => /** @type {SVGSVGElement | null} */ (byId("chart").querySelector("svg"));
byId("export-svg").addEventListener("click", () => {
  const svg = chartSvg();
  if (svg) downloadSvg("tiller-rewards.svg", svg);
});
byId("export-png").addEventListener("click", () => {
  const svg = chartSvg();
  if (svg) downloadPng("tiller-rewards.png", svg);
});

byId("attribute").addEventListener("click", () => {
  if (runner.last) runner.attribute(runner.last);
});

// ---- compare ----

let compareAEdited = false;
function syncCompareA() {
  if (!compareAEdited) /** @type {HTMLInputElement} */ (byId("compare-a")).value = strategy.spec();
}
const checkCompare = debounce(async () => {
  let ok = true;
  for (const key of /** @type {const} */ (["a", "b"])) {
    const side = readSide(key);
    const result = await callJson("/v1/tiller/validate", {
      rewards: editor.specs(),
      strategy: side.strategy,
    });
    const problem = result.strategy?.ok ? "" : (result.strategy?.error?.message ?? "");
    byId(`compare-${key}-error`).textContent = problem;
    byId(`compare-${key}`).setAttribute("aria-invalid", String(problem !== ""));
    ok &&= problem === "";
  }
  button("compare-run").disabled = !ok;
}, 150);
byId("compare-a").addEventListener("input", () => {
  compareAEdited = true;
  checkCompare();
});
byId("compare-b").addEventListener("input", () => checkCompare());
byId("compare-run").addEventListener("click", async () => {
  const compareButton = button("compare-run");
  compareButton.disabled = true;
  try {
    await runCompare(settings(), [readSide("a"), readSide("b")], Boolean(capabilities?.index));
  } finally {
    compareButton.disabled = false;
  }
});

// ---- start ----

/** Loads what the server offers; asks for the API key when the server wants one. */
async function boot() {
  const status = byId("server-status");
  try {
    capabilities = await callJson("/v1/tiller/capabilities");
  } catch (error) {
    if (error instanceof ApiFailure && error.status === 401) {
      status.textContent = "This server needs an API key.";
      byId("key-form").hidden = false;
      byId("api-key").focus();
      return;
    }
    status.textContent = `Cannot reach the server: ${/** @type {Error} */ (error).message}`;
    return;
  }
  byId("key-form").hidden = true;
  const c = capabilities;
  status.textContent = `${c.model}${c.index ? ` · index ${c.index.documents.toLocaleString()} documents, ${c.index.tokens.toLocaleString()} tokens` : " · no corpus index"}`;
  byId("model").replaceChildren(
    ...[c.model, ...c.profiles].map((/** @type {string} */ name, /** @type {number} */ i) =>
      h("option", { value: name, text: i === 0 ? name : `${name} (profile)` }),
    ),
  );
  byId("reward-forms").replaceChildren(
    ...c.reward_forms.map((/** @type {string} */ form) => h("li", {}, [h("code", { text: form })])),
  );
  showChatMode(c.chat);
  byId("provenance-controls").hidden = !c.index;
  for (const element of document.querySelectorAll(".prov-only"))
    if (element instanceof HTMLElement) element.hidden = !c.index;
  byId("prov-tau").setAttribute("placeholder", String(c.provenance_defaults.tau));
  byId("shield-tau").setAttribute("placeholder", String(c.shield_defaults.tau));
  showRoleModels(c.models);
  byId("max-tokens").setAttribute("max", String(c.limits.max_tokens));
  if (editor.rows.length === 0) {
    editor.add("keywords:ball,tree");
    editor.add("sentiment", 0.5);
  }
  strategy.load(c.strategies, "deal");
  booting = false;
  await validator.check();
  updateRunButton();
  checkCompare();
  document.body.dataset.ready = "true";
  performance.mark("tiller-ready");
}

/**
 * Chat needs the model's chat template: without one the Chat choice is off, and says why.
 * @param {boolean} available
 */
function showChatMode(available) {
  const chat = /** @type {HTMLInputElement} */ (document.querySelector('input[name="mode"][value="chat"]'));
  chat.disabled = !available;
  byId("chat-note").hidden = available;
  if (!available && chat.checked) {
    /** @type {HTMLInputElement} */ (
      document.querySelector('input[name="mode"][value="completion"]')
    ).click();
  }
}

/** @param {{draft: string | null, verifier: string | null}} models */
function showRoleModels(models) {
  byId("role-models").hidden = !models.draft && !models.verifier;
  for (const role of /** @type {const} */ (["draft", "verifier"])) {
    byId(`${role}-row`).hidden = !models[role];
    if (models[role]) byId(`${role}-model`).replaceChildren(h("option", { text: models[role] ?? "" }));
  }
}

byId("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  setApiKey(/** @type {HTMLInputElement} */ (byId("api-key")).value.trim());
  boot();
});

/**
 * For scripting and the browser test: draw a trace without running a model, timed.
 * @param {import("./path.js").TraceStep[]} steps
 */
async function renderTrace(steps) {
  selectTab(button("tab-tree"));
  const started = performance.now();
  const buildMs = tree.show(steps, chosenPath(steps, null));
  void byId("tree").offsetHeight; // force style and layout
  const layoutMs = performance.now() - started;
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  return { buildMs, layoutMs, paintMs: performance.now() - started };
}

Object.assign(window, { tillerPlayground: { renderTrace, runner, tree, strategy, editor, selectTab } });
boot();
