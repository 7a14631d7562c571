import { TillerError } from "../errors.js";
import { BUILTIN_STRATEGIES } from "./builtins.js";
import type { StrategyDefinition, StrategyDeps, StrategySpec } from "./definition.js";
import type { Strategy } from "./strategy.js";

export type { RewardedDeps, StrategyDefinition, StrategyDeps, StrategySpec } from "./definition.js";

/** Every strategy a spec can name: the built-ins (builtins.ts), then what library users add. */
const registry = new Map<string, StrategyDefinition>(BUILTIN_STRATEGIES.map((d) => [d.name, d]));

/** Adds a strategy to the registry; a name already taken is an error. */
export function registerStrategy(definition: StrategyDefinition): void {
  if (registry.has(definition.name))
    throw new TillerError(
      `a strategy named "${definition.name}" is already registered`,
      "duplicate-strategy",
    );
  registry.set(definition.name, definition);
}

export function strategyNames(): string[] {
  return [...registry.keys()];
}

/** Every registered strategy with its parameters (name → one-line meaning), for UIs and help. */
export function strategyCatalog(): { name: string; params: Record<string, string>; needsReward: boolean }[] {
  return [...registry.values()].map((d) => ({
    name: d.name,
    params: { ...d.params },
    needsReward: d.needsReward === true,
  }));
}

/** One entry per strategy with its parameters, for help and error messages. */
export function strategyHelp(): string {
  return [...registry.values()]
    .map((d) => {
      const keys = Object.keys(d.params);
      return keys.length ? `${d.name}:${keys.map((k) => `${k}=…`).join(",")}` : d.name;
    })
    .join(" | ");
}

/**
 * Parses `NAME[:key=value,…]`: the name must be registered, every key one of its parameters, set
 * at most once. A bare key means true; values that read as numbers are numbers.
 */
export function parseStrategySpec(text: string): StrategySpec {
  const trimmed = text.trim();
  const colon = trimmed.indexOf(":");
  const name = (colon < 0 ? trimmed : trimmed.slice(0, colon)).trim();
  const definition = registry.get(name);
  if (!definition)
    throw new TillerError(
      `unknown strategy "${name}" in "${text}"; valid: ${strategyHelp()}`,
      "unknown-strategy",
    );
  const params: StrategySpec["params"] = {};
  const rest = colon < 0 ? "" : trimmed.slice(colon + 1);
  for (const part of rest
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = part.indexOf("=");
    const key = (eq < 0 ? part : part.slice(0, eq)).trim();
    if (!Object.hasOwn(definition.params, key)) {
      const valid = Object.entries(definition.params).map(([k, v]) => `${k} (${v})`);
      throw new TillerError(
        `strategy "${name}" has no parameter "${key}"; ${valid.length ? `valid: ${valid.join(", ")}` : "it takes none"}`,
        "bad-strategy-param",
      );
    }
    if (Object.hasOwn(params, key))
      throw new TillerError(`strategy "${name}" sets "${key}" twice in "${trimmed}"`, "bad-strategy-param");
    params[key] = parseValue(eq < 0 ? "true" : part.slice(eq + 1).trim());
  }
  return { name, params, label: trimmed };
}

function parseValue(raw: string): number | string | boolean {
  if (raw === "true") return true;
  if (raw === "false") return false;
  const number = Number(raw);
  return raw !== "" && Number.isFinite(number) ? number : raw;
}

/** Splits a comma-separated list of specs where commas inside `name:…` params belong to the spec. */
export function parseStrategyList(text: string): StrategySpec[] {
  const specs: string[] = [];
  for (const piece of text.split(",")) {
    // A piece that starts with a strategy name starts a new spec; anything else (`l=8`) is a
    // parameter of the spec before it.
    const head = piece.trim().split(":")[0].trim();
    if (specs.length === 0 || registry.has(head)) specs.push(piece.trim());
    else specs[specs.length - 1] += `,${piece.trim()}`;
  }
  return specs.filter(Boolean).map(parseStrategySpec);
}

/** Builds the strategy a spec names; a reward-guided one without a reward is an error. */
export function createStrategy(spec: StrategySpec | string, deps: StrategyDeps = {}): Strategy {
  const parsed = typeof spec === "string" ? parseStrategySpec(spec) : spec;
  const definition = registry.get(parsed.name);
  if (!definition)
    throw new TillerError(`unknown strategy "${parsed.name}"; valid: ${strategyHelp()}`, "unknown-strategy");
  if (!definition.needsReward) return definition.create(parsed, deps);
  const { reward } = deps;
  if (!reward)
    throw new TillerError(
      `strategy "${parsed.name}" steers by a reward; give at least one --reward`,
      "no-reward",
    );
  return definition.create(parsed, { ...deps, reward });
}
