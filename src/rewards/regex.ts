import { RE2JS } from "re2js";
import { TillerError } from "../errors.js";
import type { Reward, RewardInput } from "./types.js";

/**
 * Regex reward. Patterns are user input, so they run on re2js, a linear-time port of RE2: no
 * pattern can backtrack catastrophically (`(a+)+$` on "aaaa…b" is as fast as any other). Syntax
 * is RE2's (https://github.com/google/re2/wiki/Syntax): no backreferences, no lookaround; flags
 * go inline, e.g. `(?i)` for case-insensitive. The pattern is searched anywhere in the text.
 *
 * - "must": 1 when the text matches, else 0.
 * - "not": −1 when the text matches, else 0.
 */
export type RegexMode = "must" | "not";

/** Compiles an RE2 pattern, turning the engine's complaint into a TillerError. */
export function compileRegex(pattern: string): RE2JS {
  try {
    return RE2JS.compile(pattern);
  } catch (error) {
    const complaint = error instanceof Error ? error.message : String(error);
    const unsupported = unsupportedFeature(pattern);
    const reason = unsupported
      ? `${unsupported} are not supported (tiller uses the linear-time RE2 engine; ${complaint})`
      : complaint;
    throw new TillerError(`invalid regex ${JSON.stringify(pattern)}: ${reason}`, "bad-regex");
  }
}

/** Names the Perl feature RE2 lacks that a rejected pattern uses, if any. */
function unsupportedFeature(pattern: string): string | undefined {
  if (/\(\?<?[=!]/.test(pattern)) return "lookaround assertions ((?=…), (?!…), (?<=…), (?<!…))";
  if (/\\[1-9]|\\k<|\\g\{?\d/.test(pattern)) return "backreferences (\\1, \\k<name>)";
  if (/\(\?>|[*+?}]\+/.test(pattern)) return "atomic groups and possessive quantifiers";
  return undefined;
}

export function regexReward(pattern: string, mode: RegexMode, options: { name?: string } = {}): Reward {
  const re = compileRegex(pattern);
  return {
    name: options.name ?? "regex",
    description:
      mode === "must"
        ? `1 if the text matches /${pattern}/, else 0`
        : `-1 if the text matches /${pattern}/, else 0`,
    score(input: RewardInput): number {
      const matched = re.test(input.text);
      if (mode === "must") return matched ? 1 : 0;
      return matched ? -1 : 0;
    },
  };
}
