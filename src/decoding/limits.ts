/**
 * Hard limits that follow from the model and the machine, enforced by the library itself (the
 * CLI and the server check the same rules up front, with their own wording of the fix):
 * a beam width or DeAL's k above the vocabulary has nothing left to add, and more threads than
 * CPU cores only slow llama.cpp down.
 */
import { availableParallelism } from "node:os";
import { TillerError } from "../errors.js";
import type { LanguageModel } from "../lm/types.js";
import type { StrategySpec } from "./definition.js";

/** The strategy parameter bounded by the vocabulary, per strategy. */
export const VOCABULARY_BOUNDED: Record<string, string> = { beam: "width", deal: "k" };

/** Throws "over-limit" when `value` (a search width) exceeds the model's vocabulary. */
export function checkSearchWidth(
  strategy: string,
  key: string,
  value: number,
  model: Pick<LanguageModel, "id" | "vocabularySize">,
): void {
  const V = model.vocabularySize;
  if (V > 0 && value > V)
    throw new TillerError(
      `${strategy}: ${key}=${value} exceeds the vocabulary of ${model.id} (${V} tokens); use at most ${V}`,
      "over-limit",
    );
}

/** {@link checkSearchWidth} for a parsed spec (beam's width, DeAL's k; others have no such bound). */
export function checkSpecWidth(
  spec: StrategySpec,
  model: Pick<LanguageModel, "id" | "vocabularySize">,
): void {
  const key = VOCABULARY_BOUNDED[spec.name];
  const value = key === undefined ? undefined : spec.params[key];
  if (typeof value === "number") checkSearchWidth(spec.name, key, value, model);
}

/** Throws unless `threads` is a positive integer no larger than this machine's CPU cores. */
export function checkThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 1)
    throw new TillerError(`threads must be a positive integer, got ${threads}`, "bad-options");
  const cores = availableParallelism();
  if (threads > cores)
    throw new TillerError(
      `${threads} threads, but this machine has ${cores} CPU core${cores === 1 ? "" : "s"}; use at most ${cores}`,
      "over-limit",
    );
}
