import { TillerError } from "../errors.js";
import type { Reward, RewardInput } from "../rewards/types.js";
import { scoreAll } from "../rewards/types.js";

/**
 * InfAlign's transforms Φ of a calibrated reward u ∈ [0, 1] (PAPERS.md §2):
 * - `identity`: u — optimal for the plain win rate;
 * - `log`: log u — reproduces the Best-of-N distribution (u is floored at `LOG_FLOOR` so a
 *   sample worse than every reference sample scores log(1e-6) ≈ −13.8, not −∞);
 * - `exp:t` (t > 0): exp(t·u) — for Best-of-N win rate;
 * - `negexp:t` (t > 0): −exp(−t·u) — for worst-of-N win rate.
 * All are increasing in u (log: non-decreasing, flat below the floor).
 */
export type TransformKind = "identity" | "log" | "exp" | "negexp";

export interface Transform {
  readonly kind: TransformKind;
  /** t for exp / negexp. */
  readonly t?: number;
  /** As written: "identity", "log", "exp:5", "negexp:2". */
  readonly label: string;
  apply(u: number): number;
}

export const LOG_FLOOR = 1e-6;

export const TRANSFORM_FORMS = "identity | log | exp:T | negexp:T (T > 0)";

export function transform(kind: TransformKind, t?: number): Transform {
  switch (kind) {
    case "identity":
      return { kind, label: "identity", apply: (u) => u };
    case "log":
      return { kind, label: "log", apply: (u) => Math.log(Math.max(u, LOG_FLOOR)) };
    case "exp":
    case "negexp": {
      if (t === undefined || !Number.isFinite(t) || t <= 0)
        throw new TillerError(
          `transform ${kind} needs a temperature t > 0 (e.g. ${kind}:5), got ${t === undefined ? "none" : t}`,
          "bad-transform",
        );
      return kind === "exp"
        ? { kind, t, label: `exp:${t}`, apply: (u) => Math.exp(t * u) }
        : { kind, t, label: `negexp:${t}`, apply: (u) => -Math.exp(-t * u) };
    }
    default:
      throw new TillerError(
        `unknown transform "${String(kind)}"; valid: ${TRANSFORM_FORMS}`,
        "unknown-transform",
      );
  }
}

/** Parses "identity" (also "id", "none"), "log", "exp:5", "negexp:2.5". */
export function parseTransform(text: string): Transform {
  const trimmed = text.trim();
  const colon = trimmed.indexOf(":");
  const name = (colon < 0 ? trimmed : trimmed.slice(0, colon)).trim().toLowerCase();
  const arg = colon < 0 ? undefined : trimmed.slice(colon + 1).trim();
  const bad = (problem: string, code = "bad-transform") =>
    new TillerError(`bad transform ${JSON.stringify(text)}: ${problem}; valid: ${TRANSFORM_FORMS}`, code);
  switch (name) {
    case "identity":
    case "id":
    case "none":
    case "log":
      if (arg !== undefined) throw bad(`${name} takes no argument`);
      return transform(name === "log" ? "log" : "identity");
    case "exp":
    case "negexp": {
      if (arg === undefined || arg === "") throw bad(`${name} needs t, e.g. ${name}:5`);
      const t = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?$/i.test(arg) ? Number(arg) : Number.NaN;
      if (!Number.isFinite(t)) throw bad(`t must be a number, got ${JSON.stringify(arg)}`);
      if (t <= 0) throw bad(`t must be > 0, got ${t}`);
      return transform(name, t);
    }
    default:
      throw bad(`unknown transform ${JSON.stringify(name)}`, "unknown-transform");
  }
}

/** Φ(r): the reward with a transform applied to its value. A Reward again, usable anywhere. */
export function transformed(
  reward: Reward,
  phi: Transform | string,
  options: { name?: string } = {},
): Reward {
  const t = typeof phi === "string" ? parseTransform(phi) : phi;
  if (t.kind === "identity" && !options.name) return reward;
  const result: Reward = {
    name: options.name ?? `${t.label}(${reward.name})`,
    description: `${t.label} of ${reward.name}`,
    score(input: RewardInput): number | Promise<number> {
      const value = reward.score(input);
      return typeof value === "number" ? t.apply(value) : value.then(t.apply);
    },
    async scoreBatch(inputs: readonly RewardInput[]): Promise<number[]> {
      return (await scoreAll(reward, inputs)).map(t.apply);
    },
  };
  if (reward.saturated) result.saturated = (input) => reward.saturated?.(input) ?? false;
  if (reward.wantedWords) result.wantedWords = (input) => reward.wantedWords?.(input) ?? [];
  return result;
}

/** −r: the reward with its sign flipped (`won` with r picks what `bon` with −r picks). */
export function negated(reward: Reward): Reward {
  return {
    name: `-${reward.name}`,
    description: `minus ${reward.name}`,
    score(input: RewardInput): number | Promise<number> {
      const value = reward.score(input);
      return typeof value === "number" ? -value : value.then((v) => -v);
    },
    async scoreBatch(inputs: readonly RewardInput[]): Promise<number[]> {
      return (await scoreAll(reward, inputs)).map((v) => -v);
    },
  };
}
