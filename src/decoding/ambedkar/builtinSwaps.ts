/**
 * The swap maps tiller ships (data/swaps/*.json) and the one loader for a name or a path:
 * `gender` (English), `religion` and `caste` (India, the groups the AMBEDKAR paper names).
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { TillerError } from "../../errors.js";
import { readSwapMap, type SwapMap } from "./swapMap.js";

export const BUILTIN_SWAPS = {
  gender: "gender-en.json",
  religion: "religion-in.json",
  caste: "caste-in.json",
} as const;

export type BuiltinSwapName = keyof typeof BUILTIN_SWAPS;

/** data/ sits three levels above this file both in src/decoding/ambedkar and dist/decoding/ambedkar. */
function dataPath(relative: string): string {
  return fileURLToPath(new URL(`../../../data/${relative}`, import.meta.url));
}

/** Path of a shipped swap map. */
export function builtinSwapPath(name: BuiltinSwapName): string {
  return dataPath(`swaps/${BUILTIN_SWAPS[name]}`);
}

/** A built-in map by name (`gender`, `religion`, `caste`), else a swap file by path. */
export function loadSwapMap(nameOrPath: string): SwapMap {
  if (Object.hasOwn(BUILTIN_SWAPS, nameOrPath))
    return readSwapMap(builtinSwapPath(nameOrPath as BuiltinSwapName));
  if (!existsSync(nameOrPath))
    throw new TillerError(
      `swap file not found: ${nameOrPath} (give a path, or a built-in map: ${Object.keys(BUILTIN_SWAPS).join(", ")})`,
      "swap-file-not-found",
    );
  return readSwapMap(nameOrPath);
}

/** Path of the shipped constitution: a plain-language summary of Articles 14–17 of the Constitution of India. */
export function builtinConstitutionPath(): string {
  return dataPath("constitution/india-articles-14-17.txt");
}

/** Reads a constitution file (the verifier's instruction); missing or empty is a TillerError. */
export function readConstitution(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw new TillerError(`constitution file not found: ${path}`, "constitution-not-found");
  }
  if (text.trim() === "") throw new TillerError(`constitution file ${path} is empty`, "bad-constitution");
  return text.trim();
}
