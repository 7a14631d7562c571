import type { Token } from "../../lm/types.js";

/** Tokens turned into key characters per `String.fromCharCode` call (its argument list is bounded). */
const KEY_CHUNK = 4096;

/**
 * Token ids as a map key: two UTF-16 code units per token (unsigned 32-bit integer ids), faster
 * to build and hash than `join(",")` (~45 % with the map insert), which a step does many times
 * over the whole text. Fixed width: a key's length is twice its tokens', so a key that starts with
 * another's extends its tokens.
 */
export function tokenKey(tokens: readonly Token[]): string {
  let key = "";
  for (let start = 0; start < tokens.length; start += KEY_CHUNK) {
    const units: number[] = [];
    const end = Math.min(tokens.length, start + KEY_CHUNK);
    for (let i = start; i < end; i++) units.push(tokens[i] >>> 16, tokens[i] & 0xffff);
    key += String.fromCharCode(...units);
  }
  return key;
}
