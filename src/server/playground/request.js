// The form's settings as a /v1/completions or /v1/chat/completions request body.
import { byId } from "./dom.js";

/**
 * @typedef {{veto: string, tau?: number}} ProvenanceSetting
 * @typedef {{tau?: number, regenerate?: number}} ShieldSetting
 * @typedef {{model: string, mode: "completion" | "chat", system: string, prompt: string,
 *   maxTokens: number, temperature?: number, seed?: number, rewards: string[], strategy: string,
 *   provenance: false | ProvenanceSetting, shield: false | ShieldSetting}} Settings
 */

/**
 * A number field's value, or undefined when it is empty.
 * @param {string} id
 */
function numberField(id) {
  const value = /** @type {HTMLInputElement} */ (byId(id)).value.trim();
  return value === "" ? undefined : Number(value);
}

/** @param {string} id */
function checked(id) {
  const box = /** @type {HTMLInputElement} */ (byId(id));
  return box.checked && !box.closest("[hidden]");
}

/**
 * Reads the settings panel.
 * @param {string[]} rewards the weighted reward specs
 * @param {string} strategy
 * @returns {Settings}
 */
export function readSettings(rewards, strategy) {
  const mode = /** @type {HTMLInputElement} */ (document.querySelector('input[name="mode"]:checked')).value;
  return {
    model: /** @type {HTMLSelectElement} */ (byId("model")).value,
    mode: mode === "chat" ? "chat" : "completion",
    system: /** @type {HTMLTextAreaElement} */ (byId("system")).value,
    prompt: /** @type {HTMLTextAreaElement} */ (byId("prompt")).value,
    maxTokens: numberField("max-tokens") ?? 48,
    temperature: numberField("temperature"),
    seed: numberField("seed"),
    rewards,
    strategy,
    provenance: checked("prov-decode")
      ? { veto: /** @type {HTMLSelectElement} */ (byId("prov-mode")).value, tau: numberField("prov-tau") }
      : false,
    shield: checked("shield")
      ? { tau: numberField("shield-tau"), regenerate: numberField("shield-regenerate") }
      : false,
  };
}

/**
 * @param {Settings} s
 * @param {{stream: boolean}} options
 * @returns {{path: string, body: Record<string, unknown>}}
 */
export function requestFor(s, options) {
  /** @type {Record<string, unknown>} */
  const alignment = { strategy: s.strategy, trace: true };
  if (s.rewards.length) alignment.rewards = s.rewards;
  if (s.provenance) alignment.provenance = dropUndefined(s.provenance);
  if (s.shield) alignment.shield = dropUndefined(s.shield);
  /** @type {Record<string, unknown>} */
  const body = {
    model: s.model,
    max_tokens: s.maxTokens,
    stream: options.stream,
    alignment,
    ...(s.temperature !== undefined ? { temperature: s.temperature } : {}),
    ...(s.seed !== undefined ? { seed: s.seed } : {}),
  };
  if (s.mode === "chat") {
    const messages = [];
    if (s.system.trim()) messages.push({ role: "system", content: s.system });
    messages.push({ role: "user", content: s.prompt });
    // Per-token pieces place the search steps on the final text (the chosen path).
    return { path: "/v1/chat/completions", body: { ...body, messages, logprobs: true, top_logprobs: 0 } };
  }
  return { path: "/v1/completions", body: { ...body, prompt: s.prompt, logprobs: 0 } };
}

/**
 * @template {Record<string, unknown>} T
 * @param {T} value
 * @returns {T}
 */
function dropUndefined(value) {
  return /** @type {T} */ (Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)));
}
