import { describe, expect, it } from "vitest";
import { TillerError } from "../errors.js";
import { compileRegex, regexReward } from "./regex.js";
import { input } from "./testInput.js";

describe("regexReward", () => {
  it("must: 1 on a match anywhere, else 0", () => {
    const r = regexReward("\\bdog\\b", "must");
    expect(r.score(input("a dog barks"))).toBe(1);
    expect(r.score(input("a dogma"))).toBe(0);
    expect(regexReward("(?i)^once upon", "must").score(input("Once upon a time"))).toBe(1);
  });

  it("not: -1 on a match, else 0", () => {
    const r = regexReward("[0-9]+", "not");
    expect(r.score(input("call 555"))).toBe(-1);
    expect(r.score(input("no digits"))).toBe(0);
  });

  it("runs catastrophic patterns in linear time", () => {
    const text = `${"a".repeat(50_000)}b`;
    const start = performance.now();
    expect(regexReward("(a+)+$", "must").score(input(text))).toBe(0);
    expect(regexReward("(a|a)*c", "not").score(input(text))).toBe(0);
    expect(regexReward("(a|aa)+$", "must").score(input(`${"a".repeat(30)}b`))).toBe(0);
    expect(performance.now() - start).toBeLessThan(2_000);
  });

  it("reports invalid patterns with the engine's complaint", () => {
    expect(() => compileRegex("(a")).toThrow(TillerError);
    expect(() => compileRegex("(a")).toThrow(/invalid regex "\(a": .*missing closing \)/);
    expect(() => compileRegex("[z-a]")).toThrow(/invalid character class range/);
  });

  it("says when a feature is unsupported by RE2", () => {
    expect(() => compileRegex("(a)\\1")).toThrow(/backreferences .* not supported .*RE2/);
    expect(() => compileRegex("foo(?=bar)")).toThrow(/lookaround .* not supported/);
    expect(() => compileRegex("(?<!x)y")).toThrow(/lookaround .* not supported/);
    expect(() => compileRegex("(?>a)")).toThrow(/atomic groups/);
    try {
      compileRegex("(a)\\1");
    } catch (error) {
      expect((error as TillerError).code).toBe("bad-regex");
    }
  });
});
