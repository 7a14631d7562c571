/**
 * Resource limits, derived from the model and the machine rather than fixed:
 * - hard limits: `--threads` ≤ CPU cores; beam width and DeAL's k ≤ the model's vocabulary (a
 *   wider search has nothing left to add); what a run keeps in memory ≤ half the JS heap;
 * - a cost estimate: a run estimated to take longer than {@link confirmMinutes} (30 minutes, or
 *   $TILLER_CONFIRM_MINUTES) is refused before it starts unless `--yes` confirms it.
 * Input file sizes are capped in util/inputFiles.ts.
 */
import * as fs from "node:fs";
import { getHeapStatistics } from "node:v8";
import { InvalidArgumentError } from "commander";
import { DEAL_DEFAULTS, DEAL_RAW } from "../decoding/deal/options.js";
import { checkSpecWidth, checkThreads } from "../decoding/limits.js";
import type { StrategySpec } from "../decoding/registry.js";
import { TillerError } from "../errors.js";
import type { LanguageModel } from "../lm/types.js";

/** `--threads` parser: a positive integer no larger than this machine's CPU cores (the library's rule). */
export function threadCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  try {
    checkThreads(n);
  } catch (error) {
    throw new InvalidArgumentError(error instanceof Error ? error.message : String(error));
  }
  return n;
}

const num = (spec: StrategySpec, key: string, fallback: number): number =>
  typeof spec.params[key] === "number" ? (spec.params[key] as number) : fallback;

/** Upper estimate of the tokens a strategy evaluates to write `maxTokens` tokens. */
export function strategyTokens(spec: StrategySpec, maxTokens: number): number {
  switch (spec.name) {
    case "beam":
      return num(spec, "width", 4) * maxTokens;
    case "bon":
    case "won":
      return num(spec, "n", 4) * maxTokens;
    case "deal":
      return (
        num(spec, "b", DEAL_DEFAULTS.beams) *
        num(
          spec,
          "k",
          spec.params.raw === true || spec.params.paper === true ? DEAL_RAW.k : DEAL_DEFAULTS.k,
        ) *
        (num(
          spec,
          "l",
          spec.params.raw === true || spec.params.paper === true
            ? DEAL_RAW.lookahead
            : DEAL_DEFAULTS.lookahead,
        ) +
          1) *
        maxTokens
      );
    default:
      return maxTokens;
  }
}

/** Checks the parameters that cannot exceed the model's vocabulary (beam width, DeAL's k). */
export function checkSearchWidth(spec: StrategySpec, model: LanguageModel): void {
  checkSpecWidth(spec, model);
}

/** Rough seconds per evaluated token on the CPU: fixed overhead plus one pass over the weights. */
export function secondsPerToken(model: LanguageModel): number {
  const path = (model as { path?: unknown }).path;
  let bytes = 0;
  if (typeof path === "string") {
    try {
      bytes = fs.statSync(path).size;
    } catch {
      bytes = 0;
    }
  }
  return 1.5e-3 + bytes / 4e9;
}

/** Minutes a run may be estimated to take before it needs `--yes` ($TILLER_CONFIRM_MINUTES, default 30). */
export function confirmMinutes(): number {
  const raw = process.env.TILLER_CONFIRM_MINUTES;
  const value = raw === undefined || raw.trim() === "" ? 30 : Number(raw);
  return Number.isFinite(value) && value > 0 ? value : 30;
}

function duration(seconds: number): string {
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${Math.round(seconds / 86400)} days`;
}

export interface CostEstimate {
  /** What the run does, for the message ("bon:n=100000 on 1 prompt, 128 tokens"). */
  what: string;
  seconds: number;
  /** What to lower to make it cheaper ("n, --max-tokens"). */
  lower: string;
}

/** Refuses a run estimated to take longer than {@link confirmMinutes} unless `yes`. */
export function confirmCost(estimate: CostEstimate, yes: boolean | undefined): void {
  if (yes || estimate.seconds <= confirmMinutes() * 60) return;
  throw new TillerError(
    `${estimate.what} is estimated to take about ${duration(estimate.seconds)} here (more than ${confirmMinutes()} min); pass --yes to run it anyway, or lower ${estimate.lower}`,
    "needs-confirmation",
  );
}

/** Tokens → estimated seconds on `model`. */
export function tokenCost(model: LanguageModel, tokens: number): number {
  return tokens * secondsPerToken(model);
}

/** Refuses a run that would keep more than half the JS heap in memory. */
export function checkMemory(bytes: number, what: string, lower: string): void {
  const ceiling = getHeapStatistics().heap_size_limit / 2;
  if (bytes > ceiling)
    throw new TillerError(
      `${what} would hold about ${(bytes / 2 ** 30).toFixed(1)} GiB in memory, more than the ${(ceiling / 2 ** 30).toFixed(1)} GiB available to it; lower ${lower}`,
      "over-limit",
    );
}

/** Bytes a kept sample of `tokens` tokens takes in memory (ids, logprob, text, object overhead). */
export const BYTES_PER_KEPT_TOKEN = 48;
